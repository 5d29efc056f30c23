import net from 'node:net';
import tls from 'node:tls';
import type { ISocketFactory } from 'kafkajs';

/** Kafka API keys of requests a broker may legitimately hold for long: a group's rebalance. */
export const JOIN_GROUP = 11;
export const SYNC_GROUP = 14;

export interface StallGuardOptions {
  /**
   * API keys whose answer may take longer than the limit (JoinGroup and SyncGroup wait for a rebalance). While
   * such a request is the oldest outstanding one on a connection, the connection is not judged: a broker answers
   * one connection's requests in order, so everything written behind it waits too.
   */
  mayWait?: readonly number[];
  /** Called with the API key of every request written (the node counts them: lagoon_kafka_requests_total). */
  onRequest?: (apiKey: number) => void;
}

/**
 * Sockets for a kafkajs client that give up on a stalled broker the way Kafka's own clients do: a connection whose
 * oldest outstanding request has had no byte back for `limitMs` is closed.
 *
 * Why: kafkajs's request timeout fails the request but keeps the connection and the metadata as they were, and
 * it refreshes metadata only after connection or leader errors. A frozen broker (SIGSTOP, a long GC pause, a
 * partitioned host) keeps its TCP connections open, so every resend went back to it even after the controller
 * had fenced it and moved its leaderships, and metadata refreshes could pick it too: writes to its partitions
 * stalled until their deadlines (chaos scenario broker-pause-long), and strong reads' ListOffsets rounds and the
 * replica's fetches likewise. A connection the broker closed is the case kafkajs does handle: it fails the request
 * with KafkaJSConnectionClosedError, drops that broker, refreshes metadata from another one and retries against
 * the partition's current leader (a producer resends with the same producer id and sequence, so the broker
 * deduplicates a resend of a batch that did land).
 *
 * The guard follows the wire: every kafkajs write is one whole request frame (int32 size, int16 api key, ...), and
 * a broker answers a connection's requests in the order they were sent, one size-prefixed frame each, so counting
 * response frames tells which request is the oldest still unanswered. Requests listed in `mayWait` are exempt
 * while they are the oldest. A timer that fires is checked again after pending I/O has been read (setImmediate),
 * so an event loop that was merely blocked — the answer already in the socket buffer — does not close a healthy
 * connection. The close is announced as kafkajs's connection sees a broker's close ('end' on the socket), then
 * the socket is destroyed; a plain destroy() surfaces as a connection error, after which kafkajs may still ask
 * the frozen broker for metadata.
 */
export function stallGuardedSockets(limitMs: number, opts: StallGuardOptions = {}): ISocketFactory {
  const mayWait = new Set(opts.mayWait ?? []);
  return ({ host, port, ssl, onConnect }) => {
    const socket = ssl
      ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
      : net.connect({ host, port }, onConnect);
    // As kafkajs's default factory does.
    socket.setKeepAlive(true, 60_000);

    /** API keys of the requests sent and not yet answered, oldest first. */
    const outstanding: number[] = [];
    /** Since when the oldest request has waited without a byte back. */
    let waitingSince = 0;
    let timer: NodeJS.Timeout | undefined;
    // Response framing: the 4-byte size header (possibly split across chunks), then `remaining` body bytes.
    let header = Buffer.alloc(0);
    let remaining = 0;

    const judge = () => {
      clearTimeout(timer);
      timer = undefined;
      const head = outstanding[0];
      if (head === undefined || mayWait.has(head) || socket.destroyed) return;
      timer = setTimeout(
        () =>
          setImmediate(() => {
            timer = undefined;
            if (outstanding.length === 0 || mayWait.has(outstanding[0]!) || socket.destroyed) return;
            if (Date.now() - waitingSince >= limitMs) {
              socket.emit('end');
              socket.destroy();
            } else judge();
          }),
        Math.max(0, limitMs - (Date.now() - waitingSince)),
      );
    };

    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    socket.write = ((...args: unknown[]) => {
      const frame = args[0];
      const apiKey = Buffer.isBuffer(frame) && frame.length >= 6 ? frame.readInt16BE(4) : -1;
      outstanding.push(apiKey);
      opts.onRequest?.(apiKey);
      if (outstanding.length === 1) {
        waitingSince = Date.now();
        judge();
      }
      return write(...args);
    }) as typeof socket.write;

    socket.on('data', (chunk: Buffer) => {
      waitingSince = Date.now();
      let at = 0;
      while (at < chunk.length) {
        if (remaining > 0) {
          const take = Math.min(remaining, chunk.length - at);
          remaining -= take;
          at += take;
          if (remaining === 0) outstanding.shift();
          continue;
        }
        const need = 4 - header.length;
        header = Buffer.concat([header, chunk.subarray(at, at + need)]);
        at += Math.min(need, chunk.length - at);
        if (header.length < 4) break;
        remaining = header.readInt32BE(0);
        header = Buffer.alloc(0);
        if (remaining <= 0) {
          remaining = 0;
          outstanding.shift();
        }
      }
      judge();
    });
    socket.on('close', () => {
      clearTimeout(timer);
      timer = undefined;
    });
    return socket;
  };
}
