import net from 'node:net';
import tls from 'node:tls';
import type { ISocketFactory } from 'kafkajs';

/**
 * Sockets for the writer's Kafka client that give up on a stalled broker the way Kafka's own producer does: a
 * connection that has had a request outstanding for `limitMs` without a byte back is closed.
 *
 * Why: kafkajs's request timeout fails the request but keeps the connection and the metadata as they were, and
 * it refreshes metadata only after connection or leader errors. A frozen broker (SIGSTOP, a long GC pause, a
 * partitioned host) keeps its TCP connections open, so every resend went back to it even after the controller
 * had fenced it and moved its leaderships, and metadata refreshes could pick it too: writes to its partitions
 * stalled until their deadlines (chaos scenario broker-pause-long). A connection the broker closed is the case
 * kafkajs does handle: it fails the request with KafkaJSConnectionClosedError, drops that broker, refreshes
 * metadata from another one and resends to the partition's new leader with the same producer id and sequence
 * (rolled back on the failure), so the broker deduplicates a resend of a batch that did land.
 *
 * The close is announced as kafkajs's connection sees a broker's close ('end' on the socket), then the socket is
 * destroyed; a plain destroy() surfaces as a connection error, after which kafkajs may still ask the frozen broker
 * for metadata. The limit covers one request: one is in flight per connection (maxInFlightRequests 1).
 *
 * Only the writer's client uses it: its requests (Produce bounded by the acks timeout, Metadata, InitProducerId)
 * are all answered within the limit by a live broker. A consumer's client must not: JoinGroup and SyncGroup
 * legitimately wait for a rebalance far longer, on the same connection as its fetches.
 */
export function stallGuardedSockets(limitMs: number): ISocketFactory {
  return ({ host, port, ssl, onConnect }) => {
    const socket = ssl
      ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
      : net.connect({ host, port }, onConnect);
    // As kafkajs's default factory does.
    socket.setKeepAlive(true, 60_000);
    let stall: NodeJS.Timeout | undefined;
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
    socket.write = ((...args: unknown[]) => {
      stall ??= setTimeout(() => {
        socket.emit('end');
        socket.destroy();
      }, limitMs);
      return write(...args);
    }) as typeof socket.write;
    const clear = () => {
      clearTimeout(stall);
      stall = undefined;
    };
    socket.on('data', clear);
    socket.on('close', clear);
    return socket;
  };
}
