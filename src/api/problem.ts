import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isLagoonError, LagoonError } from '../errors.js';

/** RFC 9457 problem details, with Lagoon's stable `code` and retry hints. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  retryable: boolean;
  /** false when the operation may have taken effect (e.g. a write that timed out). */
  definite: boolean;
  instance?: string;
  [extra: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Shorthand for a client error that changed nothing. */
export function badRequest(code: string, detail: string, details?: Record<string, unknown>): LagoonError {
  return new LagoonError(code, detail, { status: 400, details });
}

export function toProblem(err: LagoonError, instance?: string): Problem {
  return {
    type: `https://lagoon.dev/problems/${err.code}`,
    title: TITLES[err.status] ?? 'Error',
    status: err.status,
    detail: err.message,
    code: err.code,
    retryable: err.retryable,
    definite: err.definite,
    ...(instance ? { instance } : {}),
    ...(err.details ?? {}),
  };
}

export function sendProblem(reply: FastifyReply, err: LagoonError, instance?: string): FastifyReply {
  if (err.status === 503 && err.retryable) reply.header('Retry-After', '1');
  return reply.code(err.status).type('application/problem+json').send(toProblem(err, instance));
}

/**
 * The one place errors become HTTP: Lagoon errors keep their code; fastify's own (body too large,
 * bad JSON, wrong content type) get stable codes; anything else is a 500 with no internals shown.
 */
export function errorHandler(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (isLagoonError(error)) return sendProblem(reply, error, request.url);
  const fe = error as FastifyError;
  const mapped: Record<string, [number, string, string]> = {
    FST_ERR_CTP_BODY_TOO_LARGE: [413, 'value_too_large', 'The value is larger than the configured maximum'],
    FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type', 'Send values as application/json'],
    FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'invalid_json', 'The body is empty; send a JSON value'],
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_body', 'Content-Length does not match the body'],
  };
  const m = fe.code ? mapped[fe.code] : undefined;
  if (m) return sendProblem(reply, new LagoonError(m[1], m[2], { status: m[0] }), request.url);
  if (fe.statusCode === 400 && (error instanceof SyntaxError || /JSON/i.test(error.message))) {
    return sendProblem(
      reply,
      new LagoonError('invalid_json', 'The body is not valid JSON', { status: 400 }),
      request.url,
    );
  }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return sendProblem(
      reply,
      new LagoonError('bad_request', error.message, { status: fe.statusCode }),
      request.url,
    );
  }
  request.log.error({ err: error }, 'unhandled error');
  return sendProblem(
    reply,
    new LagoonError('internal_error', 'Internal error; see the node log', { status: 500 }),
    request.url,
  );
}
