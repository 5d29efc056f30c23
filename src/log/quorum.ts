/**
 * A tiny, dependency-free client for Kafka's DescribeQuorum API (key 55) over a raw TCP socket, so the
 * dashboard can show the active KRaft controller every second without a JVM (MetadataQuorumCommand) and
 * without kafkajs, which cannot ask for it.
 *
 * One call = one connection, two round trips: ApiVersions v0 (to pick the highest DescribeQuorum version
 * both sides speak, 0–2) and DescribeQuorum for `__cluster_metadata`-0. Field layouts follow Kafka 4.1.1's
 * clients/src/main/resources/common/message/DescribeQuorum{Request,Response}.json: every DescribeQuorum
 * version is flexible (compact strings/arrays with unsigned-varint lengths, tagged fields), so the request
 * uses header v2 and the response header v1. ApiVersions v0 is not flexible (header v1 / response v0).
 *
 * Where to send it (verified against a local Kafka 4.1.1 cluster, see test/integration/quorum.test.ts):
 * - a broker's PLAINTEXT listener: any broker forwards DescribeQuorum to the active controller and relays
 *   its answer, so every broker port gives the same result (one extra hop, and it needs that broker up);
 * - a CONTROLLER listener (KIP-919 "bootstrap to controllers"): only the active controller answers with
 *   data; the other controllers answer NOT_LEADER_OR_FOLLOWER (6), which we throw as KafkaProtocolError.
 * `activeController` asks a list of endpoints at once (use the controller listeners: they work without the
 * broker layer) and returns the leader id from whichever answers.
 */
import { Connection, KafkaProtocolError, type Reader, Writer, withTimeout } from './kafka-wire.js';

export { KafkaProtocolError };

export interface QuorumEndpoint {
  host: string;
  port: number;
}

export interface DescribeQuorumOptions extends QuorumEndpoint {
  /** Bound on the whole exchange (connect, both requests). Default 2000 ms. */
  timeoutMs?: number;
  clientId?: string;
}

export interface QuorumReplica {
  replicaId: number;
  logEndOffset: bigint;
}

export interface QuorumDescription {
  leaderId: number;
  leaderEpoch: number;
  highWatermark: bigint;
  voters: QuorumReplica[];
}

const API_VERSIONS = 18;
const DESCRIBE_QUORUM = 55;
/** Highest DescribeQuorum version this module can parse (Kafka 4.1 supports 0–2). */
const MAX_DESCRIBE_QUORUM_VERSION = 2;
const METADATA_TOPIC = '__cluster_metadata';
const DEFAULT_TIMEOUT_MS = 2_000;

// ---------------------------------------------------------------------------------------------------------
// The two APIs

/** ApiVersions v0; resolves with the server's [min, max] DescribeQuorum versions (undefined if absent). */
async function describeQuorumVersions(
  conn: Connection,
  clientId: string,
): Promise<[number, number] | undefined> {
  const r = await conn.request(API_VERSIONS, 0, clientId, Buffer.alloc(0), false);
  const error = r.int16();
  if (error !== 0) throw new KafkaProtocolError(error, 'ApiVersions');
  const n = r.arrayLength();
  let range: [number, number] | undefined;
  for (let i = 0; i < n; i++) {
    const key = r.int16();
    const min = r.int16();
    const max = r.int16();
    if (key === DESCRIBE_QUORUM) range = [min, max];
  }
  return range;
}

function describeQuorumBody(): Buffer {
  return new Writer()
    .compactArrayLength(1)
    .compactString(METADATA_TOPIC)
    .compactArrayLength(1)
    .int32(0) // partition index
    .emptyTaggedFields() // partition
    .emptyTaggedFields() // topic
    .emptyTaggedFields() // request
    .build();
}

function readReplicaState(r: Reader, version: number): QuorumReplica {
  const replicaId = r.int32();
  if (version >= 2) r.skip(16); // ReplicaDirectoryId (uuid)
  const logEndOffset = r.int64();
  if (version >= 1) {
    r.int64(); // LastFetchTimestamp
    r.int64(); // LastCaughtUpTimestamp
  }
  r.skipTaggedFields();
  return { replicaId, logEndOffset };
}

/** Parses a DescribeQuorum response body (v0–v2) and returns `__cluster_metadata`-0; throws on error codes. */
function parseDescribeQuorum(r: Reader, version: number): QuorumDescription {
  const error = r.int16();
  const message = version >= 2 ? r.compactNullableString() : null;
  if (error !== 0) throw new KafkaProtocolError(error, 'DescribeQuorum', message);
  let found: QuorumDescription | undefined;
  const topics = r.compactArrayLength();
  for (let t = 0; t < topics; t++) {
    const topic = r.compactString();
    const partitions = r.compactArrayLength();
    for (let p = 0; p < partitions; p++) {
      const index = r.int32();
      const pError = r.int16();
      const pMessage = version >= 2 ? r.compactNullableString() : null;
      const leaderId = r.int32();
      const leaderEpoch = r.int32();
      const highWatermark = r.int64();
      const voters: QuorumReplica[] = [];
      const nVoters = r.compactArrayLength();
      for (let i = 0; i < nVoters; i++) voters.push(readReplicaState(r, version));
      const nObservers = r.compactArrayLength();
      for (let i = 0; i < nObservers; i++) readReplicaState(r, version);
      r.skipTaggedFields();
      if (topic !== METADATA_TOPIC || index !== 0) continue;
      if (pError !== 0) throw new KafkaProtocolError(pError, `DescribeQuorum ${topic}-${index}`, pMessage);
      found = { leaderId, leaderEpoch, highWatermark, voters };
    }
    r.skipTaggedFields();
  }
  // v2 appends Nodes (controller listeners) and the top-level tagged fields; we do not need them.
  if (!found) throw new Error(`DescribeQuorum response has no ${METADATA_TOPIC}-0`);
  return found;
}

/**
 * Asks one endpoint for the KRaft quorum state of `__cluster_metadata`-0. A broker listener forwards to the
 * active controller; a controller listener answers only if it is the active controller, else rejects with
 * KafkaProtocolError NOT_LEADER_OR_FOLLOWER. Never hangs: connect and both round trips share `timeoutMs`.
 */
export async function describeQuorum(opts: DescribeQuorumOptions): Promise<QuorumDescription> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const clientId = opts.clientId ?? 'lagoon-quorum';
  const where = `${opts.host}:${opts.port}`;
  const conn = new Connection(opts.host, opts.port);
  const work = (async () => {
    try {
      await conn.ready;
      const range = await describeQuorumVersions(conn, clientId);
      if (!range) throw new KafkaProtocolError(35, `DescribeQuorum not offered by ${where}`);
      const version = Math.min(range[1], MAX_DESCRIBE_QUORUM_VERSION);
      if (version < range[0]) throw new KafkaProtocolError(35, `DescribeQuorum v${range[0]}+ at ${where}`);
      const r = await conn.request(DESCRIBE_QUORUM, version, clientId, describeQuorumBody(), true);
      return parseDescribeQuorum(r, version);
    } finally {
      conn.close();
    }
  })();
  // On timeout the socket is destroyed, which makes `work` reject promptly; nothing is left behind.
  return withTimeout(work, timeoutMs, `DescribeQuorum to ${where}`, (e) => conn.fail(e));
}

/**
 * The id of the active KRaft controller, or undefined if no endpoint answers with one within `timeoutMs`.
 * Asks all endpoints at once rather than in turn, so a dead or paused (SIGSTOPped) node costs no extra
 * time, and returns the first answer: with controller endpoints only the active controller answers.
 */
export async function activeController(
  endpoints: QuorumEndpoint[],
  timeoutMs = DEFAULT_TIMEOUT_MS,
  clientId?: string,
): Promise<number | undefined> {
  if (endpoints.length === 0) return undefined;
  const attempts = endpoints.map(async (e) => {
    const q = await describeQuorum({ host: e.host, port: e.port, timeoutMs, clientId });
    if (q.leaderId < 0) throw new Error('no leader');
    return q.leaderId;
  });
  try {
    return await Promise.any(attempts);
  } catch {
    return undefined;
  }
}
