/**
 * Kafka's wire protocol, the little of it Lagoon speaks itself (kafkajs 2.2.4 cannot ask for the active
 * KRaft controller or a topic's id): bounds-checked encoding and decoding, and a connection that sends
 * length-prefixed requests one at a time over TCP or TLS. Used by quorum.ts (DescribeQuorum) and
 * topic.ts (Metadata v12).
 */
import net from 'node:net';
import tls from 'node:tls';

/** Largest response accepted: the answers asked for are small; anything huge means it is not Kafka. */
const MAX_FRAME = 16 * 1024 * 1024;

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

/** Builds a request body field by field. */
export class Writer {
  private readonly parts: Buffer[] = [];

  int8(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }

  /** Raw bytes (a UUID, say). */
  bytes(b: Buffer): this {
    this.parts.push(b);
    return this;
  }

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

/** Reads a response field by field; every read is bounds-checked. */
export class Reader {
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

  /** The next `n` bytes (a view, not a copy). */
  bytes(n: number): Buffer {
    this.need(n);
    this.pos += n;
    return this.buf.subarray(this.pos - n, this.pos);
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

/** One socket to one broker; requests go one at a time. */
export class Connection {
  private readonly socket: net.Socket;
  /** Settles once the TCP connection is up (or has failed). */
  readonly ready: Promise<void>;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private waiter: { resolve: (frame: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private correlationId = 0;

  /** Starts connecting at once, so that `fail` can abort a connect that is still in flight. */
  constructor(host: string, port: number, opts: { ssl?: boolean } = {}) {
    this.socket = opts.ssl
      ? tls.connect({ host, port, servername: host })
      : net.connect({ host, port, noDelay: true });
    this.ready = new Promise<void>((resolve, reject) => {
      this.waiter = { resolve: () => resolve(), reject };
      this.socket.once(opts.ssl ? 'secureConnect' : 'connect', () => {
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

/** Races `work` against a deadline; on timeout calls `onTimeout` (which must make `work` settle). */
export function withTimeout<T>(
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
