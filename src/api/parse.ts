import type { z } from 'zod';
import { badRequest } from './problem.js';
import { UNDECODABLE } from './query.js';

const defaults = new WeakMap<z.ZodType, { ok: unknown } | { error: unknown }>();

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return Object.getOwnPropertySymbols(o).length === 0;
}

/** Validates a query/params object with a zod schema; a failure is a 400 with a stable code. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  input: unknown,
  code = 'invalid_query',
): z.infer<S> {
  const undecodable =
    input !== null && typeof input === 'object'
      ? (input as { [UNDECODABLE]?: string[] })[UNDECODABLE]
      : undefined;
  if (undecodable !== undefined && undecodable.length > 0) {
    throw badRequest(
      'invalid_query',
      `query: not valid percent-encoded UTF-8: ${undecodable.map((n) => JSON.stringify(n)).join(', ')}`,
      { issues: undecodable.map((field) => ({ field, message: 'not valid percent-encoded UTF-8' })) },
    );
  }
  // No parameters at all (most reads): the schema's defaults, parsed once per schema and copied.
  if (input === null || input === undefined || (typeof input === 'object' && isEmpty(input))) {
    let d = defaults.get(schema);
    if (d === undefined) {
      const r0 = schema.safeParse({});
      d = r0.success ? { ok: r0.data } : { error: r0.error };
      defaults.set(schema, d);
    }
    if ('ok' in d) return (typeof d.ok === 'object' && d.ok !== null ? { ...d.ok } : d.ok) as z.infer<S>;
  }
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message }));
  throw badRequest(code, issues.map((i) => `${i.field || 'query'}: ${i.message}`).join('; '), { issues });
}
