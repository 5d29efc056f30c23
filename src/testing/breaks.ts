/**
 * Deliberately broken variants of Lagoon's guarantees, switched on per node process with
 * LAGOON_TEST_BREAK (comma-separated names). They exist only so the chaos suite can prove that each of
 * its checkers catches the bug it is there for (test/chaos/broken-variants.test.ts). A node running
 * any of them says so loudly at start and in /v1/status; never set them outside that test.
 */
export const BREAKS = [
  /** The replica commits a batch's applied offset in one transaction and its rows in a later one. */
  'apply-offsets-first',
  /** A session read is served at once, whatever the token says the client has seen. */
  'session-ignores-token',
  /** A write is answered 200 as soon as it is queued, before Kafka acknowledged it. */
  'ack-before-kafka',
  /** A strong read is served from the local replica without waiting for the partition's latest offset. */
  'strong-skips-offset-wait',
  /** A write that was sent to Kafka and then timed out is answered 503 (definite) instead of 504 (unknown). */
  'unknown-as-definite',
  /**
   * Not a broken guarantee but a fault at an exact instant: the node SIGKILLs itself after a batch's parts were
   * appended to Kafka and before its commit (test/integration/batch.test.ts, "killed mid-transaction").
   */
  'batch-dies-before-commit',
] as const;

export type Break = (typeof BREAKS)[number];
