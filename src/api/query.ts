/**
 * A strict query-string parser for the router. Node's `querystring` (fastify's default) turns bytes that are not
 * UTF-8 (`%FF`), encoded lone surrogates (`%ED%A0%80`) and broken escapes (`%`, `%ZZ`) into replacement
 * characters or leaves them as they were, so a scan prefix or cursor would silently become another string. This
 * parser decodes every name and value with decodeURIComponent (`+` is a space, as in forms) and marks the names
 * it could not decode; `parseWith` then refuses the request (400 invalid_query). It never throws: the router
 * calls it outside any error handling.
 */

/** Names of the parameters whose name or value is not valid percent-encoded UTF-8. */
export const UNDECODABLE = Symbol('lagoon.undecodable-query');

export type ParsedQuery = Record<string, string | string[]> & { [UNDECODABLE]?: string[] };

const MAX_PARAMS = 1000;

function decode(s: string): string | undefined {
  const plus = s.includes('+') ? s.replace(/\+/g, ' ') : s;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return undefined;
  }
}

export function strictQuerystring(qs: string): ParsedQuery {
  const out: ParsedQuery = Object.create(null);
  if (qs.length === 0) return out;
  const bad: string[] = [];
  let n = 0;
  for (const pair of qs.split('&')) {
    if (pair === '') continue;
    if (++n > MAX_PARAMS) {
      bad.push(`more than ${MAX_PARAMS} parameters`);
      break;
    }
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? '' : pair.slice(eq + 1);
    const name = decode(rawName);
    const value = decode(rawValue);
    if (name === undefined || value === undefined) {
      bad.push(name ?? rawName.slice(0, 64));
      continue;
    }
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  if (bad.length > 0) Object.defineProperty(out, UNDECODABLE, { value: bad, enumerable: false });
  return out;
}
