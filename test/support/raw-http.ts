import net from 'node:net';
import { expect } from 'vitest';
import { eventually } from './kafka.js';
import { http, type NodeProc } from './nodes.js';

/**
 * HTTP/1.1 over a bare socket, one request per connection: for requests fetch() will not send (bytes that are
 * not UTF-8 in the path, dot segments, headers repeated or malformed, a Content-Length that lies) and for
 * seeing exactly the bytes the server answers with.
 */

export interface RawRequest {
  method: string;
  path: string;
  /** Name/value pairs, sent in order; repeat a name to send it twice. Values are written as latin1 bytes. */
  headers?: Array<[string, string]>;
  body?: string | Buffer;
  /** Leave out the Content-Length the body would get (to send your own, or none). */
  noContentLength?: boolean;
  timeoutMs?: number;
}

export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: a test reads the fields it asserts
  json: any;
}

export function rawRequest(port: number, req: RawRequest): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const body =
      req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body);
    let head = `${req.method} ${req.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`;
    for (const [k, v] of req.headers ?? []) head += `${k}: ${v}\r\n`;
    if (body !== undefined && !req.noContentLength) head += `Content-Length: ${body.length}\r\n`;
    head += '\r\n';
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `no complete answer to ${req.method} ${req.path.slice(0, 80)} in ${req.timeoutMs ?? 60_000} ms`,
        ),
      );
    }, req.timeoutMs ?? 60_000);
    socket.on('data', (c) => chunks.push(c));
    // The server may close before reading everything sent (a refused header flood): the answer still counts.
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        reject(
          new Error(
            `no HTTP answer to ${req.method} ${req.path.slice(0, 80)}: ${JSON.stringify(all.toString('latin1').slice(0, 200))}`,
          ),
        );
        return;
      }
      const lines = all.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0]!.split(' ')[1]);
      const headers = new Map<string, string>();
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
      }
      let payload: Buffer = all.subarray(end + 4);
      if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') payload = dechunk(payload);
      const text = payload.toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      resolve({ status, headers, text, json });
    });
    socket.write(
      body === undefined ? Buffer.from(head, 'latin1') : Buffer.concat([Buffer.from(head, 'latin1'), body]),
    );
  });
}

function dechunk(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  while (i < b.length) {
    const eol = b.indexOf('\r\n', i);
    const size = Number.parseInt(b.subarray(i, eol).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(b.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** Percent-encodes every UTF-16 code unit sequence of `s` as its UTF-8 bytes; a lone surrogate as its WTF-8 bytes. */
export function percentEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (/^[A-Za-z0-9_~-]$/.test(ch)) {
      out += ch;
      continue;
    }
    const bytes =
      cp >= 0xd800 && cp <= 0xdfff
        ? [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)]
        : [...Buffer.from(ch, 'utf8')];
    for (const b of bytes) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The node's per-partition digests and applied offsets, as one comparable string. */
export async function digestOf(node: NodeProc): Promise<string> {
  const r = await http('GET', `${node.url}/v1/digest`);
  expect(r.status).toBe(200);
  return JSON.stringify(r.body.partitions);
}

/** Decodes a Lagoon-Session token's partition → offset map (the test's own reading of the format). */
export function sessionOffsets(token: string): Map<number, number> {
  const payload = Buffer.from(token.slice('s1.'.length), 'base64url').toString('latin1');
  const body = payload.slice(payload.indexOf('|') + 1);
  return new Map(body === '' ? [] : body.split(',').map((e) => e.split(':').map(Number) as [number, number]));
}

/** Waits until the node's replica has applied everything the session token has seen, on every partition. */
export async function waitApplied(node: NodeProc, token: string | null | undefined): Promise<void> {
  if (!token) return;
  const want = sessionOffsets(token);
  await eventually(
    `replica applied ${token}`,
    async () => {
      const r = await http('GET', `${node.url}/v1/digest`);
      const applied = new Map<number, number>(
        (r.body.partitions as Array<{ partition: number; appliedOffset: number }>).map((p) => [
          p.partition,
          p.appliedOffset,
        ]),
      );
      for (const [p, o] of want) if ((applied.get(p) ?? 0) < o) return undefined;
      return true;
    },
    60_000,
    50,
  );
}
