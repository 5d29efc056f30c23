/**
 * Lagoon's one error type: a stable machine-readable `code`, whether a retry can help, and whether the
 * outcome is definite (it did not happen) or indefinite (it may have happened, e.g. a timeout).
 */
export class LagoonError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly definite: boolean;
  /** HTTP status the API maps this error to. */
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: string,
    message: string,
    opts: {
      retryable?: boolean;
      definite?: boolean;
      status?: number;
      cause?: unknown;
      details?: Record<string, unknown>;
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LagoonError';
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.definite = opts.definite ?? true;
    this.status = opts.status ?? 500;
    this.details = opts.details;
  }
}

export function isLagoonError(e: unknown): e is LagoonError {
  return e instanceof LagoonError;
}
