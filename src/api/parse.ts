import type { z } from 'zod';
import { badRequest } from './problem.js';
import { UNDECODABLE } from './query.js';

/** Per schema: what it makes of an empty query (its defaults), or null if it refuses one. */
const emptyDefaults = new WeakMap<z.ZodType, object | null>();

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
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
  if (input === null || input === undefined || (typeof input === 'object' && !hasKeys(input))) {
    let d = emptyDefaults.get(schema);
    if (d === undefined) {
      const r0 = schema.safeParse({});
      d = r0.success && typeof r0.data === 'object' && r0.data !== null ? r0.data : null;
      emptyDefaults.set(schema, d);
    }
    if (d !== null) return { ...d } as z.infer<S>;
  }
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message }));
  throw badRequest(code, issues.map((i) => `${i.field || 'query'}: ${i.message}`).join('; '), { issues });
}
