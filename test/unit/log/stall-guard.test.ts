import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { JOIN_GROUP, stallGuardedSockets } from '../../../src/log/stall-guard.js';

const FETCH = 1;
const METADATA = 3;

/** A Kafka-shaped request frame: int32 size, int16 api key, int16 version, int32 correlation id. */
function request(apiKey: number, correlationId: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeInt32BE(8, 0);
  b.writeInt16BE(apiKey, 4);
  b.writeInt16BE(0, 6);
  b.writeInt32BE(correlationId, 8);
  return b;
}

/**
 * A loopback "broker" that answers each request frame, in order, with a response frame of `bodyBytes` bytes
 * (written in small pieces, so the client sees frames split across chunks), except that it holds the requests
 * `hold` says to hold — and, as a broker does on one connection, everything sent after them — until `release()`.
 * `frozen` answers nothing (SIGSTOP: the kernel accepts, nobody reads).
 */
async function broker(
  opts: { frozen?: boolean; hold?: (apiKey: number) => boolean; bodyBytes?: number } = {},
) {
  const sockets = new Set<net.Socket>();
  const releases: Array<() => void> = [];
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    if (opts.frozen) return;
    let buf = Buffer.alloc(0);
    let queue = Promise.resolve();
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 4 && buf.length >= 4 + buf.readInt32BE(0)) {
        const frame = buf.subarray(0, 4 + buf.readInt32BE(0));
        buf = buf.subarray(frame.length);
        const apiKey = frame.readInt16BE(4);
        queue = queue.then(async () => {
          if (opts.hold?.(apiKey)) await new Promise<void>((r) => releases.push(r));
          const body = Buffer.alloc(opts.bodyBytes ?? 4);
          frame.copy(body, 0, 8, 12);
          const size = Buffer.alloc(4);
          size.writeInt32BE(body.length);
          const out = Buffer.concat([size, body]);
          for (let i = 0; i < out.length; i += 3) s.write(out.subarray(i, i + 3));
        });
      }
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return {
    port: (srv.address() as net.AddressInfo).port,
    release: () => {
      for (const r of releases.splice(0)) r();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** A socket from the factory, connected; resolves with it, what it emitted and how many response frames came. */
async function connect(port: number, limitMs: number, mayWait: number[] = []) {
  const seen: string[] = [];
  let socket!: net.Socket;
  await new Promise<void>((resolve) => {
    socket = stallGuardedSockets(limitMs, { mayWait })({
      host: '127.0.0.1',
      port,
      ssl: undefined as never, // plaintext: kafkajs passes no TLS options (its type says otherwise)
      onConnect: resolve,
    }) as net.Socket;
  });
  let bytes = 0;
  socket.on('end', () => seen.push('end'));
  socket.on('close', () => seen.push('close'));
  socket.on('data', (d: Buffer) => (bytes += d.length));
  socket.on('error', () => {});
  const received = (n: number) =>
    new Promise<void>((r, reject) => {
      const check = () =>
        bytes >= n
          ? r()
          : socket.destroyed
            ? reject(new Error(`closed after ${bytes} of ${n} bytes`))
            : setTimeout(check, 5);
      check();
    });
  return { socket, seen, received };
}

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closing.splice(0)) await c();
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stall-guarded sockets', () => {
  it('close a connection whose request gets no byte back, announced as the peer closing it', async () => {
    const b = await broker({ frozen: true });
    closing.push(b.close);
    const { socket, seen } = await connect(b.port, 200);
    socket.write(request(METADATA, 1));
    await new Promise((r) => socket.once('close', r));
    expect(seen[0]).toBe('end');
    expect(seen).toContain('close');
    expect(socket.destroyed).toBe(true);
  });

  it('keep a connection whose requests are answered (frames split across chunks), however long it idles', async () => {
    const b = await broker({ bodyBytes: 10 });
    closing.push(b.close);
    const { socket, seen, received } = await connect(b.port, 200);
    for (let i = 0; i < 3; i++) {
      // Two pipelined requests, answered in order, 14 bytes each.
      socket.write(request(FETCH, 2 * i));
      socket.write(request(METADATA, 2 * i + 1));
      await received(28 * (i + 1));
      // Idle for longer than the limit: no request outstanding, nothing to give up on.
      await sleep(400);
    }
    expect(socket.destroyed).toBe(false);
    expect(seen).not.toContain('end');
    socket.destroy();
  });

  it('report the API key of every request written (the node counts its Kafka requests by API)', async () => {
    const b = await broker();
    closing.push(b.close);
    const keys: number[] = [];
    let socket!: net.Socket;
    await new Promise<void>((resolve) => {
      socket = stallGuardedSockets(1000, { onRequest: (k) => keys.push(k) })({
        host: '127.0.0.1',
        port: b.port,
        ssl: undefined as never,
        onConnect: resolve,
      }) as net.Socket;
    });
    socket.on('error', () => {});
    socket.write(request(FETCH, 1));
    socket.write(request(METADATA, 2));
    socket.write(request(FETCH, 3));
    expect(keys).toEqual([FETCH, METADATA, FETCH]);
    socket.destroy();
  });

  it('an idle connection with nothing outstanding is never closed', async () => {
    const b = await broker({ frozen: true });
    closing.push(b.close);
    const { socket, seen } = await connect(b.port, 100);
    await sleep(500);
    expect(socket.destroyed).toBe(false);
    expect(seen).toEqual([]);
    socket.destroy();
  });

  it('a JoinGroup held for a rebalance, and the requests queued behind it, do not close the connection', async () => {
    const b = await broker({ hold: (k) => k === JOIN_GROUP });
    closing.push(b.close);
    const { socket, seen, received } = await connect(b.port, 150, [JOIN_GROUP]);
    socket.write(request(FETCH, 1));
    await received(8);
    socket.write(request(JOIN_GROUP, 2));
    socket.write(request(METADATA, 3)); // a broker answers it only after the JoinGroup
    await sleep(600);
    expect(socket.destroyed).toBe(false);
    b.release();
    await received(24);
    expect(seen).not.toContain('end');
    socket.destroy();
  });

  it('the same held JoinGroup closes a connection that does not exempt it', async () => {
    const b = await broker({ hold: (k) => k === JOIN_GROUP });
    closing.push(b.close);
    const { socket, seen } = await connect(b.port, 150);
    socket.write(request(JOIN_GROUP, 1));
    await new Promise((r) => socket.once('close', r));
    expect(seen[0]).toBe('end');
  });

  it('a request stalled behind an answered one is judged from the last byte back, not from when it was sent', async () => {
    const b = await broker({ hold: (k) => k === METADATA });
    closing.push(b.close);
    const { socket, seen, received } = await connect(b.port, 300);
    socket.write(request(FETCH, 1));
    socket.write(request(METADATA, 2)); // never answered
    await received(8);
    const answeredAt = Date.now();
    await new Promise((r) => socket.once('close', r));
    expect(Date.now() - answeredAt).toBeGreaterThanOrEqual(250);
    expect(seen[0]).toBe('end');
  });

  it('a blocked event loop whose answer is already in the socket buffer does not close the connection', async () => {
    // The broker must answer while this process is blocked: a child process that answers every frame at once.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `require('net').createServer((s) => s.on('data', (d) => { for (let i = 0; i + 12 <= d.length; i += 12) {
           const out = Buffer.alloc(8); out.writeInt32BE(4, 0); d.copy(out, 4, i + 8, i + 12); s.write(out); } }))
         .listen(0, '127.0.0.1', function () { console.log(this.address().port); });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    closing.push(async () => void child.kill());
    const port = await new Promise<number>((r) =>
      child.stdout.once('data', (d) => r(Number(String(d).trim()))),
    );
    const { socket, seen, received } = await connect(port, 100);
    socket.write(request(METADATA, 1));
    // Block the loop past the limit; the answer lands in the kernel meanwhile and is read before the verdict.
    const until = Date.now() + 400;
    while (Date.now() < until);
    await received(8);
    await sleep(50);
    expect(socket.destroyed).toBe(false);
    expect(seen).not.toContain('end');
    socket.destroy();
  });
});
