import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { stallGuardedSockets } from '../../../src/log/stall-guard.js';

// A loopback server: `answer` decides whether it echoes what it receives (a live broker) or stays silent with the
// connection open (a frozen one: the kernel still accepts, nobody reads or answers).
async function server(answer: boolean): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    if (answer) s.on('data', (d) => s.write(d));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** A socket from the factory, connected; resolves with it and a record of what it emitted. */
async function connect(port: number, limitMs: number) {
  const seen: string[] = [];
  let socket!: net.Socket;
  await new Promise<void>((resolve) => {
    socket = stallGuardedSockets(limitMs)({
      host: '127.0.0.1',
      port,
      ssl: undefined as never, // plaintext: kafkajs passes no TLS options (its type says otherwise)
      onConnect: resolve,
    }) as net.Socket;
  });
  socket.on('end', () => seen.push('end'));
  socket.on('close', () => seen.push('close'));
  socket.on('data', () => seen.push('data'));
  socket.on('error', () => {});
  return { socket, seen };
}

const closing: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closing.splice(0)) await c();
});

describe('stall-guarded sockets', () => {
  it('close a connection whose request gets no byte back, announced as the peer closing it', async () => {
    const srv = await server(false);
    closing.push(srv.close);
    const { socket, seen } = await connect(srv.port, 200);
    socket.write(Buffer.from('request'));
    await new Promise((r) => socket.once('close', r));
    expect(seen[0]).toBe('end');
    expect(seen).toContain('close');
    expect(socket.destroyed).toBe(true);
  });

  it('keep a connection whose requests are answered, however long it stays idle between them', async () => {
    const srv = await server(true);
    closing.push(srv.close);
    const { socket, seen } = await connect(srv.port, 200);
    for (let i = 0; i < 3; i++) {
      const answered = new Promise((r) => socket.once('data', r));
      socket.write(Buffer.from(`request ${i}`));
      await answered;
      // Idle for longer than the limit: no request outstanding, nothing to give up on.
      await new Promise((r) => setTimeout(r, 400));
    }
    expect(socket.destroyed).toBe(false);
    expect(seen.filter((s) => s === 'data').length).toBeGreaterThanOrEqual(3);
    expect(seen).not.toContain('end');
    socket.destroy();
  });

  it('an idle connection with nothing outstanding is never closed', async () => {
    const srv = await server(false);
    closing.push(srv.close);
    const { socket, seen } = await connect(srv.port, 100);
    await new Promise((r) => setTimeout(r, 500));
    expect(socket.destroyed).toBe(false);
    expect(seen).toEqual([]);
    socket.destroy();
  });
});
