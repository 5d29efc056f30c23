import net from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { advertiseKeepAlive, HTTP_LIMITS, lingerOnUnreadBody } from '../../../src/api/limits.js';

/**
 * The server keeps an idle connection 10 s longer than it tells the client, so a client that reuses a socket
 * until just before the advertised time never sends its request into the server's idle close.
 */

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function serve(advertise: boolean): Promise<number> {
  app = Fastify({ keepAliveTimeout: HTTP_LIMITS.keepAliveTimeoutMs });
  lingerOnUnreadBody(app);
  if (advertise) advertiseKeepAlive(app);
  app.get('/x', async () => ({ ok: true }));
  // Answered in the same turn the request's headers were parsed in (the request is not `complete` yet).
  app.get('/sync', (_req, reply) => {
    reply.send({ ok: true });
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as net.AddressInfo).port;
}

/** The response headers (lower-cased names) of one raw request. */
function headersOf(port: number, request: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    socket.on('error', reject);
    socket.on('data', (c) => {
      text += c.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const headers: Record<string, string> = {};
      for (const line of text.slice(0, end).split('\r\n').slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      socket.destroy();
      resolve(headers);
    });
    socket.write(request);
  });
}

describe('keep-alive', () => {
  it('Node alone advertises exactly the time after which it closes: no margin for a late client', async () => {
    const port = await serve(false);
    const h = await headersOf(port, 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(h['keep-alive']).toBe(`timeout=${HTTP_LIMITS.keepAliveTimeoutMs / 1000}`);
  });

  it('advertises 20 s while the server keeps idle connections 30 s', async () => {
    const port = await serve(true);
    const h = await headersOf(port, 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(h.connection).toBe('keep-alive');
    expect(h['keep-alive']).toBe('timeout=20');
    expect(app!.server.keepAliveTimeout).toBe(30_000);
    expect(HTTP_LIMITS.keepAliveTimeoutMs - HTTP_LIMITS.keepAliveAdvertisedS * 1000).toBeGreaterThanOrEqual(
      10_000,
    );
  });

  it('keeps the connection of a bodiless request answered at once (no lingering close: nothing is unread)', async () => {
    const port = await serve(true);
    const h = await headersOf(port, 'GET /sync HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(h.connection).toBe('keep-alive');
    expect(h['keep-alive']).toBe('timeout=20');
    const empty = await headersOf(port, 'GET /sync HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n');
    expect(empty.connection).toBe('keep-alive');
  });

  it('says nothing about keep-alive on a connection that closes', async () => {
    const port = await serve(true);
    const close = await headersOf(port, 'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(close.connection).toBe('close');
    expect(close['keep-alive']).toBeUndefined();
    const old = await headersOf(port, 'GET /x HTTP/1.0\r\nHost: x\r\n\r\n');
    expect(old['keep-alive']).toBeUndefined();
  });
});
