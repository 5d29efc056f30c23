/**
 * An in-process stand-in for a cluster, as a `fetch`: each request goes to a handler that answers like a node
 * would, or fails the way a network does (refused: never sent; reset: lost after sending; hang: no answer).
 */

export interface FakeRequest {
  node: string;
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Headers;
  body: unknown;
  at: number;
}

export type FakeAnswer = Response | 'refuse' | 'reset' | 'hang';

export function fakeFetch(handler: (req: FakeRequest) => FakeAnswer | Promise<FakeAnswer>) {
  const calls: FakeRequest[] = [];
  const fetchFn = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const req: FakeRequest = {
      node: url.origin,
      method: init?.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: new Headers(init?.headers),
      body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
      at: Date.now(),
    };
    calls.push(req);
    const answer = await handler(req);
    if (answer === 'refuse') throw netError('ECONNREFUSED');
    if (answer === 'reset') throw netError('UND_ERR_SOCKET');
    if (answer === 'hang') {
      return new Promise<Response>((_, reject) => {
        const signal = init?.signal;
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    }
    return answer;
  }) as typeof fetch;
  return { fetch: fetchFn, calls };
}

function netError(code: string): TypeError {
  return new TypeError('fetch failed', { cause: Object.assign(new Error(code), { code }) });
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
  });
}

export function problem(
  status: number,
  code: string,
  opts: { retryable?: boolean; definite?: boolean; headers?: Record<string, string> } & Record<
    string,
    unknown
  > = {},
): Response {
  const { retryable = false, definite = true, headers = {}, ...details } = opts;
  return new Response(
    JSON.stringify({
      type: `https://lagoon.dev/problems/${code}`,
      title: 'x',
      status,
      detail: `${code} (fake)`,
      code,
      retryable,
      definite,
      ...details,
    }),
    { status, headers: { 'content-type': 'application/problem+json; charset=utf-8', ...headers } },
  );
}

/** A session token as the server writes it (topic tag, partition:offset pairs). */
export function token(offsets: Record<number, number>, tag = 'abcdef01'): string {
  const body = Object.entries(offsets)
    .map(([p, o]) => [Number(p), o] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([p, o]) => `${p}:${o}`)
    .join(',');
  return `s1.${Buffer.from(`${tag}|${body}`, 'latin1').toString('base64url')}`;
}

export const item = (key: string, value: unknown, version = '0-1') => ({
  key,
  value,
  version,
  updatedAt: 1_700_000_000_000,
});

export const written = (key: string, version = '0-1', status = 'applied') => {
  const [partition, offset] = version.split('-').map(Number);
  return { key, version, partition, offset, status };
};

export const readHeaders = (node: string, extra: Record<string, string> = {}) => ({
  'lagoon-served-by': node,
  'lagoon-lag-records': '0',
  'lagoon-staleness-ms': '0',
  'lagoon-consistency': 'eventual',
  ...extra,
});
