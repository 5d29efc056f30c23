import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type {
  FastifyError,
  FastifyHttpOptions,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
} from 'fastify';
import type { NodeConfig } from '../config.js';
import { parseJsonValue } from '../core/record.js';
import { LagoonError } from '../errors.js';
import { sendProblem, toProblem } from './problem.js';
import { strictQuerystring } from './query.js';

/**
 * What the HTTP server accepts before any route sees a request, and how long a client may take. Every refusal is
 * problem+json with a stable code, including the ones Node's HTTP parser makes before fastify has a request
 * (malformed HTTP, header floods, slow senders): see `clientError`.
 *
 * | limit | value | beyond it |
 * |---|---|---|
 * | headers, total size | 16 KiB (`maxHeaderSize`, Node's default) | 431 `headers_too_large`, connection closed |
 * | headers, count | 128 | 431 `too_many_headers` |
 * | all headers received | 10 s after the request began (`headersTimeout`) | 408 `request_timeout`, connection closed |
 * | whole request received (headers + body) | 30 s (`requestTimeout`) | 408 `request_timeout`, connection closed |
 * | socket idle (no byte either way) | the longest wait a request may ask for + 30 s (`connectionTimeout`): 150 s with the defaults | connection closed |
 * | idle keep-alive connection | 30 s (`keepAliveTimeout`); clients are told 20 s (`Keep-Alive: timeout=20`) | connection closed |
 * | body | LAGOON_MAX_VALUE_BYTES (PUT), 4 × that, at least 4 MiB (POST /v1/batch) | 413 `value_too_large` |
 *
 * Node checks the header and request deadlines every second (`connectionsCheckingInterval`), so a slow sender
 * is cut off within a second of its deadline. The request deadline covers receiving the request only: a read or
 * write that waits for the replica (up to its `timeoutMs`) is not cut short by it.
 */
export const HTTP_LIMITS = {
  maxHeaderBytes: 16 * 1024,
  maxHeaders: 128,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 30_000,
  /** What the `Keep-Alive` header advertises: well under keepAliveTimeoutMs (see advertiseKeepAlive). */
  keepAliveAdvertisedS: 20,
  checkIntervalMs: 1000,
  /** Added to the longest wait a request can ask for to give the socket's idle timeout. */
  idleMarginMs: 30_000,
} as const;

/** Longest a query's `timeoutMs` may be (src/api/schemas.ts). */
const MAX_REQUEST_WAIT_MS = 60_000;

/**
 * The socket idle timeout: longer than anything a handler may wait without writing a byte — a write's deadline
 * plus the wait for its verdict — so that it only ever cuts off a peer that stopped reading or sending.
 */
export function idleTimeoutMs(config: Pick<NodeConfig, 'writeTimeoutMs' | 'readTimeoutMs'>): number {
  return (
    Math.max(MAX_REQUEST_WAIT_MS, config.writeTimeoutMs) +
    Math.max(MAX_REQUEST_WAIT_MS, config.readTimeoutMs) +
    HTTP_LIMITS.idleMarginMs
  );
}

/** Fastify options for the limits above, the strict query parser and problem+json for framework errors. */
export function serverLimits(config: NodeConfig): Partial<FastifyHttpOptions<Server>> {
  return {
    connectionTimeout: idleTimeoutMs(config),
    requestTimeout: HTTP_LIMITS.requestTimeoutMs,
    keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs,
    http: {
      headersTimeout: HTTP_LIMITS.headersTimeoutMs,
      requestTimeout: HTTP_LIMITS.requestTimeoutMs,
      connectionsCheckingInterval: HTTP_LIMITS.checkIntervalMs,
      maxHeaderSize: HTTP_LIMITS.maxHeaderBytes,
    },
    frameworkErrors,
    clientErrorHandler: clientError,
  };
}

/** Router options: the strict query-string parser (see query.ts). */
export const routerLimits = { querystringParser: strictQuerystring };

/** The code a malformed path gets: the part of it that could not be decoded is a key, a version or a batch id. */
function pathCode(url: string): [string, string] {
  const path = url.split('?')[0] ?? '';
  if (path.startsWith('/v1/kv/')) return ['invalid_key', 'key'];
  if (path.startsWith('/v1/writes/')) return ['invalid_version', 'write version or id'];
  if (path.startsWith('/v1/batches/')) return ['invalid_batch_id', 'batch id'];
  return ['invalid_url', 'path'];
}

/**
 * Errors the router raises before a route runs: a path segment that is not valid percent-encoded UTF-8 (`%FF`,
 * an encoded lone surrogate `%ED%A0%80`, a broken escape `%ZZ`), or a path parameter longer than any valid one.
 */
function frameworkErrors(error: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const [code, what] = pathCode(req.url);
  if (error.code === 'FST_ERR_BAD_URL') {
    sendProblem(
      reply,
      new LagoonError(code, `The ${what} in the URL is not valid percent-encoded UTF-8`, { status: 400 }),
      req.url.split('?')[0],
    );
    return;
  }
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    sendProblem(
      reply,
      new LagoonError(
        code,
        code === 'invalid_key' ? 'The key is longer than 1024 bytes of UTF-8' : `The ${what} is too long`,
        { status: 400 },
      ),
    );
    return;
  }
  sendProblem(reply, new LagoonError('bad_request', 'The request could not be routed', { status: 400 }));
}

/**
 * Errors Node's HTTP parser raises on a connection (no request object exists yet): answered on the raw socket
 * with problem+json, then the connection is closed — it may be out of sync with the HTTP framing.
 */
function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  let status = 400;
  let code = 'malformed_request';
  let detail = 'The request is not valid HTTP/1.1';
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = 408;
    code = 'request_timeout';
    detail = `The request was not received in time (headers within ${HTTP_LIMITS.headersTimeoutMs} ms, the whole request within ${HTTP_LIMITS.requestTimeoutMs} ms)`;
  } else if (err.code === 'HPE_HEADER_OVERFLOW') {
    status = 431;
    code = 'headers_too_large';
    detail = `The request's headers exceed ${HTTP_LIMITS.maxHeaderBytes} bytes`;
  }
  const sent = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (socket.writable && !sent) {
    const body = JSON.stringify(toProblem(new LagoonError(code, detail, { status })));
    const reason =
      status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Refuses requests with more headers than HTTP_LIMITS.maxHeaders (Node would silently drop the extra ones). */
export function limitHeaderCount(app: FastifyInstance): void {
  // Node's own cap (2000 by default) drops the headers beyond it without a word: a dropped If-Match would turn a
  // conditional write into a plain one. No cap there; the total size stays bounded by maxHeaderSize, and the
  // count is refused here, before anything else runs.
  app.server.maxHeadersCount = 0;
  app.addHook('onRequest', (req, _reply, done) => {
    const count = req.raw.rawHeaders.length / 2;
    if (count <= HTTP_LIMITS.maxHeaders) return done();
    done(
      new LagoonError(
        'too_many_headers',
        `The request has ${count} headers; at most ${HTTP_LIMITS.maxHeaders} are accepted`,
        { status: 431 },
      ),
    );
  });
}

/** How long a connection answered before its body was read keeps discarding what the client still sends. */
const LINGER_MS = 5_000;

/**
 * Lingering close, for answers sent before the request's body was read (413 over the limit, 415, 401/403, 503
 * node_stopping). Node would close such a socket with the unread body still in its receive buffer; the kernel
 * answers that with a reset, which can reach the client while it is still sending, before it has read the
 * answer: it then sees "connection reset" instead of the 413. Instead the answer ends with `Connection: close`,
 * the socket half-closes after it, discards whatever still arrives, and closes once the client has closed its
 * side, or after LINGER_MS at the latest.
 */
export function lingerOnUnreadBody(app: FastifyInstance): void {
  app.addHook('onSend', (req, reply, payload, done) => {
    // A request without a body (no Content-Length, or 0, and no Transfer-Encoding) has nothing left unread,
    // though `complete` is still false when the answer is sent in the same turn its headers were parsed in.
    if (!req.raw.complete && hasBody(req.headers)) {
      reply.header('Connection', 'close');
      lingerOnClose(req.raw.socket);
    }
    done(null, payload);
  });
}

function hasBody(h: {
  'content-length'?: string | undefined;
  'transfer-encoding'?: string | undefined;
}): boolean {
  return (
    h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')
  );
}

function lingerOnClose(socket: Socket): void {
  // Node's HTTP server ends a `Connection: close` exchange with socket.destroySoon(): end, then destroy once the
  // answer is flushed. This one socket ends the same way but destroys only when the client is done sending.
  const s = socket as Socket & { destroySoon?: () => void };
  if (typeof s.destroySoon !== 'function') return;
  s.destroySoon = () => {
    const timer = setTimeout(() => socket.destroy(), LINGER_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.once('end', () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.end();
    socket.resume();
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const CHARSET_RE = /;\s*charset\s*=\s*"?([^";\s]*)"?/i;

/**
 * The JSON body parser. A value must be stored exactly or refused with a reason: `1e400`, integers beyond 2^53
 * and over-deep nesting are 400s (not 500s later), bytes that are not UTF-8 are refused (not turned into U+FFFD),
 * a charset other than UTF-8 or a content coding is 415, and `__proto__` / `constructor` members are a value's
 * data (fastify's parser refuses them; JSON.parse keeps them as own properties, touching no prototype).
 */
export function jsonBodyParser(
  req: FastifyRequest,
  body: Buffer,
  done: (err: Error | null, body?: unknown) => void,
): void {
  const charset = CHARSET_RE.exec(String(req.headers['content-type'] ?? ''))?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    done(
      new LagoonError('unsupported_media_type', 'JSON bodies are UTF-8; send charset=utf-8 or none', {
        status: 415,
      }),
    );
    return;
  }
  const coding = req.headers['content-encoding'];
  if (coding !== undefined && String(coding).trim().toLowerCase() !== 'identity') {
    done(
      new LagoonError(
        'unsupported_media_type',
        'Content-Encoding is not supported; send the JSON uncompressed',
        {
          status: 415,
        },
      ),
    );
    return;
  }
  if (body.length === 0) {
    // A DELETE may carry a Content-Type and no body; a PUT or POST needs a value.
    if (req.method === 'DELETE') done(null, undefined);
    else done(new LagoonError('invalid_json', 'The body is empty; send a JSON value', { status: 400 }));
    return;
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    done(new LagoonError('invalid_json', 'The body is not valid UTF-8', { status: 400 }));
    return;
  }
  const r = parseJsonValue(text);
  if (r.ok) done(null, r.value);
  else done(new LagoonError(r.error.code, r.error.reason, { status: 400 }));
}

/**
 * Tells clients a keep-alive time 10 s shorter than the server really keeps an idle connection. Node would
 * advertise exactly its keepAliveTimeout (30 s), and a client such as undici (Node's fetch) reuses an idle socket
 * until 1 s before the advertised time, on timers that may fire a second or more late on a loaded machine: a
 * request sent in that last second meets the server's close and fails with "other side closed" although nothing
 * was wrong. With the margin, a request on a reused connection never races the server's idle close. Setting the
 * header ourselves makes Node leave out its own (it adds one only when none is set).
 */
export function advertiseKeepAlive(app: FastifyInstance): void {
  const KEEP_ALIVE = `timeout=${HTTP_LIMITS.keepAliveAdvertisedS}`;
  app.addHook('onSend', (req, reply, payload, done) => {
    const closing =
      req.raw.httpVersion !== '1.1' ||
      /close/i.test(req.headers.connection ?? '') ||
      /close/i.test(String(reply.getHeader('connection') ?? ''));
    if (!closing) reply.header('Keep-Alive', KEEP_ALIVE);
    done(null, payload);
  });
}
