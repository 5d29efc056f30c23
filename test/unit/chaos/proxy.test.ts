import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy, isLoopbackHost } from '../../../src/chaos/proxy.js';

/** An echo server on a free loopback port. */
async function echoServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Collects what a socket receives until `n` bytes arrived (or its liveness bound of a minute passed). */
function receive(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => reject(new Error(`received ${got} of ${n} bytes`)), 60_000);
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) {
        clearTimeout(timer);
        s.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    s.on('data', onData);
  });
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const echo = await echoServer();
  const proxy = new FaultProxy({ listenPort: 0, targetHost: '127.0.0.1', targetPort: echo.port });
  await proxy.start();
  cleanups.push(echo.close, () => proxy.close());
  return { echo, proxy };
}

describe('FaultProxy', () => {
  it('forwards bytes both ways', async () => {
    const { proxy } = await setup();
    const c = await connect(proxy.port);
    cleanups.push(async () => void c.destroy());
    const got = receive(c, 5);
    c.write('hello');
    expect((await got).toString()).toBe('hello');
    expect(proxy.stats().bytesUp).toBeGreaterThanOrEqual(5);
  });

  it('delays with latency and jitter but keeps the byte order', async () => {
    const { proxy } = await setup();
    proxy.setFault({ kind: 'latency', ms: 50, jitterMs: 40 });
    const c = await connect(proxy.port);
    cleanups.push(async () => void c.destroy());
    const parts = Array.from({ length: 1000 }, (_, i) => `${i};`);
    const expected = parts.join('');
    const started = Date.now();
    const got = receive(c, Buffer.byteLength(expected));
    for (const p of parts) c.write(p);
    expect((await got).toString()).toBe(expected);
    // A lower bound only (there and back): the proxy never forwards early.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2 * (50 - 40));
  });

  it('delays each direction by about the set latency', async () => {
    const { proxy } = await setup();
    const c = await connect(proxy.port);
    cleanups.push(async () => void c.destroy());
    proxy.setFault({ kind: 'latency', ms: 150 });
    const started = Date.now();
    const got = receive(c, 4);
    c.write('ping');
    expect((await got).toString()).toBe('ping');
    // Up and down are each held 150 ms; a little slack for timer granularity.
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
  });

  it('drops bytes on an existing connection during a black-hole and forwards new ones after', async () => {
    const { proxy } = await setup();
    const c = await connect(proxy.port);
    cleanups.push(async () => void c.destroy());
    const first = receive(c, 3);
    c.write('one');
    expect((await first).toString()).toBe('one');
    const received: Buffer[] = [];
    const onData = (d: Buffer) => received.push(d);
    c.on('data', onData);
    proxy.setFault({ kind: 'blackhole' });
    c.write('lost');
    await new Promise((r) => setTimeout(r, 300));
    expect(Buffer.concat(received).length).toBe(0);
    expect(proxy.stats().bytesDropped).toBeGreaterThanOrEqual(4);
    c.off('data', onData);
    proxy.setFault({ kind: 'none' });
    const after = receive(c, 3);
    c.write('two');
    expect((await after).toString()).toBe('two');
  });

  it('black-holes traffic, then forwards new bytes once healed', async () => {
    const { proxy } = await setup();
    proxy.setFault({ kind: 'blackhole' });
    const c = await connect(proxy.port);
    cleanups.push(async () => void c.destroy());
    const received: Buffer[] = [];
    c.on('data', (d: Buffer) => received.push(d));
    c.write('lost');
    await new Promise((r) => setTimeout(r, 300));
    expect(Buffer.concat(received).length).toBe(0);
    proxy.setFault({ kind: 'none' });
    // A connection opened after healing works normally.
    const d = await connect(proxy.port);
    cleanups.push(async () => void d.destroy());
    const got = receive(d, 4);
    d.write('back');
    expect((await got).toString()).toBe('back');
  });

  it('resets existing and new connections', async () => {
    const { proxy } = await setup();
    const outcome = (s: net.Socket) =>
      new Promise<string>((r) => {
        s.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
        s.once('close', () => r('closed without error'));
      });
    const c = await connect(proxy.port);
    // Proves the link is up before the fault (the reset must hit a connected link, not a connecting one).
    const echoed = receive(c, 2);
    c.write('hi');
    await echoed;
    const existing = outcome(c);
    proxy.setFault({ kind: 'reset' });
    expect(await existing).toBe('ECONNRESET');
    const d = net.connect({ host: '127.0.0.1', port: proxy.port });
    // A write keeps the client reading, so the RST surfaces as an error even if it races the handshake.
    d.on('connect', () => d.write('x'));
    expect(await outcome(d)).toBe('ECONNRESET');
    expect(proxy.stats().resets).toBeGreaterThanOrEqual(2);
    proxy.setFault({ kind: 'none' });
    const e = await connect(proxy.port);
    cleanups.push(async () => void e.destroy());
    const got = receive(e, 2);
    e.write('ok');
    expect((await got).toString()).toBe('ok');
  });

  it('limits bandwidth', async () => {
    const { proxy } = await setup();
    proxy.setFault({ kind: 'bandwidth', bytesPerSec: 64 * 1024 });
    const c = await connect(proxy.port);
    cleanups.push(async () => void c.destroy());
    const payload = Buffer.alloc(128 * 1024, 7);
    const started = Date.now();
    const got = receive(c, payload.length);
    c.write(payload);
    expect((await got).equals(payload)).toBe(true);
    // 128 KiB at 64 KiB/s each way: at least ~1 s (a lower bound; the upper is only the liveness bound).
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('refuses non-loopback addresses and closes idempotently, freeing its port', async () => {
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('::1')).toBe(true);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
    expect(() => new FaultProxy({ listenPort: 0, targetHost: '192.168.1.1', targetPort: 9092 })).toThrow(
      /not loopback/,
    );
    const echo = await echoServer();
    cleanups.push(echo.close);
    const proxy = new FaultProxy({ listenPort: 0, targetHost: '127.0.0.1', targetPort: echo.port });
    await proxy.start();
    const port = proxy.port;
    await Promise.all([proxy.close(), proxy.close()]);
    await proxy.close();
    const again = net.createServer();
    await new Promise<void>((r, j) => {
      again.once('error', j);
      again.listen(port, '127.0.0.1', r);
    });
    await new Promise((r) => again.close(r));
  });
});
