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
import net from 'node:net';

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
/** A DescribeQuorum answer is a few hundred bytes; anything huge means we are not talking to Kafka. */
const MAX_FRAME = 16 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 2_000;

/** Kafka error codes that can plausibly come back here (org.apache.kafka.common.protocol.Errors). */
const ERROR_NAMES: Record<number, string> = {
  [-1]: 'UNKNOWN_SERVER_ERROR',
  3: 'UNKNOWN_TOPIC_OR_PARTITION',
  5: 'LEADER_NOT_AVAILABLE',
  6: 'NOT_LEADER_OR_FOLLOWER',
  7: 'REQUEST_TIMED_OUT',
  8: 'BROKER_NOT_AVAILABLE',
  13: 'NETWORK_EXCEPTION',
  15: 'COORDINATOR_NOT_AVAILABLE',
  31: 'CLUSTER_AUTHORIZATION_FAILED',
  35: 'UNSUPPORTED_VERSION',
  41: 'NOT_CONTROLLER',
  42: 'INVALID_REQUEST',
  74: 'FENCED_LEADER_EPOCH',
  75: 'UNKNOWN_LEADER_EPOCH',
  94: 'INCONSISTENT_VOTER_SET',
};

/** A non-zero error code in a Kafka response. */
export class KafkaProtocolError extends Error {
  /** The numeric Kafka error code, e.g. 6. */
  readonly kafkaCode: number;
  /** Its name in Kafka's Errors enum, e.g. NOT_LEADER_OR_FOLLOWER (or UNKNOWN_<code>). */
  readonly kafkaError: string;

  constructor(kafkaCode: number, context: string, serverMessage?: string | null) {
    const name = ERROR_NAMES[kafkaCode] ?? `UNKNOWN_${kafkaCode}`;
    super(`${context}: Kafka error ${kafkaCode} ${name}${serverMessage ? ` (${serverMessage})` : ''}`);
    this.name = 'KafkaProtocolError';
    this.kafkaCode = kafkaCode;
    this.kafkaError = name;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Encoding

class Writer {
  private readonly parts: Buffer[] = [];

  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }

  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }

  uvarint(v: number): this {
    const bytes: number[] = [];
    let n = v >>> 0;
    while (n >= 0x80) {
      bytes.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    bytes.push(n);
    this.parts.push(Buffer.from(bytes));
    return this;
  }

  /** Non-flexible nullable string: int16 length, -1 for null. */
  nullableString(s: string | null): this {
    if (s === null) return this.int16(-1);
    const b = Buffer.from(s, 'utf8');
    this.int16(b.length);
    this.parts.push(b);
    return this;
  }

  /** Flexible string: unsigned varint length + 1. */
  compactString(s: string): this {
    const b = Buffer.from(s, 'utf8');
    this.uvarint(b.length + 1);
    this.parts.push(b);
    return this;
  }

  compactArrayLength(n: number): this {
    return this.uvarint(n + 1);
  }

  emptyTaggedFields(): this {
    return this.uvarint(0);
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Decoding (every read is bounds-checked: a short or garbled frame throws instead of reading garbage)

class Reader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new Error(`truncated Kafka response (need ${n} bytes at ${this.pos} of ${this.buf.length})`);
    }
  }

  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  int64(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  uvarint(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      this.need(1);
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
    }
    throw new Error('malformed unsigned varint in Kafka response');
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  compactNullableString(): string | null {
    const n = this.uvarint();
    if (n === 0) return null;
    this.need(n - 1);
    const s = this.buf.toString('utf8', this.pos, this.pos + n - 1);
    this.pos += n - 1;
    return s;
  }

  compactString(): string {
    const s = this.compactNullableString();
    if (s === null) throw new Error('unexpected null string in Kafka response');
    return s;
  }

  /** Element count of a compact array (null arrays read as empty). */
  compactArrayLength(): number {
    const n = this.uvarint();
    return n === 0 ? 0 : n - 1;
  }

  /** Non-flexible array: int32 count, -1 for null. */
  arrayLength(): number {
    const n = this.int32();
    return Math.max(n, 0);
  }

  skipTaggedFields(): void {
    const count = this.uvarint();
    for (let i = 0; i < count; i++) {
      this.uvarint(); // tag
      this.skip(this.uvarint()); // size, then data
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Transport: one socket, length-prefixed frames, requests one at a time

class Connection {
  private readonly socket: net.Socket;
  /** Settles once the TCP connection is up (or has failed). */
  readonly ready: Promise<void>;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { resolve: (frame: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private correlationId = 0;

  /** Starts connecting at once, so that `fail` can abort a connect that is still in flight. */
  constructor(host: string, port: number) {
    this.socket = net.connect({ host, port, noDelay: true });
    this.ready = new Promise<void>((resolve, reject) => {
      this.waiter = { resolve: () => resolve(), reject };
      this.socket.once('connect', () => {
        this.waiter = undefined;
        resolve();
      });
    });
    this.socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      this.drain();
    });
    this.socket.on('error', (e) => this.fail(e));
    this.socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  /** Fails the pending and all future requests and drops the socket. */
  fail(e: Error): void {
    this.failure ??= e;
    this.socket.destroy();
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
  }

  close(): void {
    this.fail(new Error('connection closed'));
  }

  /**
   * Sends one request and resolves with the response body past the header.
   * `flexible` selects request header v2 / response header v1, else v1 / v0.
   */
  async request(
    apiKey: number,
    apiVersion: number,
    clientId: string,
    body: Buffer,
    flexible: boolean,
  ): Promise<Reader> {
    if (this.failure) throw this.failure;
    if (this.waiter) throw new Error('one request at a time');
    const correlationId = ++this.correlationId;
    const header = new Writer().int16(apiKey).int16(apiVersion).int32(correlationId).nullableString(clientId);
    if (flexible) header.emptyTaggedFields();
    const payload = Buffer.concat([header.build(), body]);
    const size = Buffer.alloc(4);
    size.writeInt32BE(payload.length);

    const frame = new Promise<Buffer>((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
    this.socket.write(Buffer.concat([size, payload]));
    this.drain();
    const r = new Reader(await frame);
    const got = r.int32();
    if (got !== correlationId) throw new Error(`correlation id mismatch: sent ${correlationId}, got ${got}`);
    if (flexible) r.skipTaggedFields();
    return r;
  }

  /** Hands a complete frame to the waiter once its bytes have all arrived (they may come in any split). */
  private drain(): void {
    if (!this.waiter || this.buffered < 4) return;
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    const buf = this.chunks[0]!;
    const len = buf.readInt32BE(0);
    if (len < 4 || len > MAX_FRAME) {
      this.fail(new Error(`implausible Kafka frame length ${len}`));
      return;
    }
    if (buf.length < 4 + len) return;
    const frame = buf.subarray(4, 4 + len);
    const rest = buf.subarray(4 + len);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    const w = this.waiter;
    this.waiter = undefined;
    w.resolve(frame);
  }
}

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

/** Races `work` against a deadline; on timeout calls `onTimeout` (which must make `work` settle). */
function withTimeout<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  onTimeout: (e: Error) => void,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new Error(`${what} timed out after ${ms} ms`);
      onTimeout(e);
      reject(e);
    }, ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
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
