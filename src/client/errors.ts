import { LagoonError as ServerLagoonError } from '../errors.js';
import type { ProblemBody } from './types.js';

/**
 * The one error the client throws. The same fields as the server's LagoonError (it extends it, so either
 * `instanceof` works), filled from the node's problem+json answer — or, when no answer came, by the client:
 *
 * - `definite`: true when the operation certainly did not take effect; false when it may have (a write whose
 *   answer was lost). The client retries indefinite writes itself, so a caller sees `definite: false` only
 *   once the retries are spent.
 * - `retryable`: whether trying again later can succeed.
 *
 * Client-made codes: `connection_failed`, `request_timeout`, `aborted`, `invalid_response`, `update_conflict`,
 * and `write_outcome_unknown` for a batch whose fate it could not learn.
 */
export class LagoonError extends ServerLagoonError {
  /** The problem body the node answered, when one did. */
  readonly problem: ProblemBody | undefined;
  /** Base URL of the node the last attempt went to. */
  readonly nodeUrl: string | undefined;
  /** Requests the call sent before giving up. */
  readonly attempts: number;

  constructor(
    code: string,
    message: string,
    opts: {
      status?: number;
      retryable?: boolean;
      definite?: boolean;
      details?: Record<string, unknown>;
      cause?: unknown;
      problem?: ProblemBody;
      nodeUrl?: string;
      attempts?: number;
    } = {},
  ) {
    super(code, message, opts);
    this.name = 'LagoonError';
    this.problem = opts.problem;
    this.nodeUrl = opts.nodeUrl;
    this.attempts = opts.attempts ?? 1;
  }

  /** The error a problem+json answer stands for; its extra members (version, reason, batch, ...) are `details`. */
  static fromProblem(problem: ProblemBody, nodeUrl: string, attempts: number): LagoonError {
    const {
      type: _t,
      title: _ti,
      status,
      detail,
      code,
      retryable,
      definite,
      instance: _i,
      ...details
    } = problem;
    return new LagoonError(code, detail, {
      status,
      retryable,
      definite,
      details,
      problem,
      nodeUrl,
      attempts,
    });
  }

  /** A copy that records how many attempts the call made. */
  withAttempts(attempts: number): LagoonError {
    if (attempts === this.attempts) return this;
    return new LagoonError(this.code, this.message, {
      status: this.status,
      retryable: this.retryable,
      definite: this.definite,
      ...(this.details !== undefined ? { details: this.details } : {}),
      ...(this.cause !== undefined ? { cause: this.cause } : {}),
      ...(this.problem !== undefined ? { problem: this.problem } : {}),
      ...(this.nodeUrl !== undefined ? { nodeUrl: this.nodeUrl } : {}),
      attempts,
    });
  }
}

/** Is this a problem+json body (the fields every Lagoon error answer has)? */
export function isProblem(body: unknown): body is ProblemBody {
  if (body === null || typeof body !== 'object') return false;
  const b = body as Record<string, unknown>;
  return (
    typeof b.code === 'string' &&
    typeof b.status === 'number' &&
    typeof b.retryable === 'boolean' &&
    typeof b.definite === 'boolean'
  );
}
