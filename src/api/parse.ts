import type { z } from 'zod';
import { badRequest } from './problem.js';

/** Validates a query/params object with a zod schema; a failure is a 400 with a stable code. */
export function parseWith<S extends z.ZodType>(
  schema: S,
  input: unknown,
  code = 'invalid_query',
): z.infer<S> {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message }));
  throw badRequest(code, issues.map((i) => `${i.field || 'query'}: ${i.message}`).join('; '), { issues });
}
