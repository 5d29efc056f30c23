import net from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { lingerOnUnreadBody } from '../../../src/api/limits.js';

/**
 * A refusal sent before the body was read (here 413 from the Content-Length alone) must reach a client that is
 * still sending: the server keeps reading after its answer until the client closes, instead of closing with the
 * body unread (a reset that can destroy the answer before the client reads it).
 */

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function serve(linger: boolean): Promise<number> {
  app = Fastify({ bodyLimit: 1024 });
  if (linger) lingerOnUnreadBody(app);
  app.post('/x', async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as net.AddressInfo).port;
}

/**
 * Announces 2 MiB, sends 4 KiB, waits for the answer, then sends the rest in pieces, a little apart. Reports the
 * answer's status line and whether any write after it failed (the server had closed on unread data).
 */
function sendAfterAnswer(port: number): Promise<{ status: string; writeError: string | undefined }> {
  return new Promise((resolve) => {
    const total = 2 << 20;
    const piece = Buffer.alloc(64 * 1024, 'x');
    // Half-open allowed: the server's end of its side does not end ours (a client that sends its whole body).
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    let writeError: string | undefined;
    let sent = 0;
    socket.on('error', (e) => {
      writeError ??= (e as NodeJS.ErrnoException).code ?? e.message;
    });
    socket.on('close', () => resolve({ status: text.split('\r\n')[0] ?? '', writeError }));
    socket.write(
      `POST /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${total}\r\n\r\n`,
    );
    socket.write(Buffer.alloc(4096, 'x'));
    sent = 4096;
    let started = false;
    socket.on('data', (c) => {
      text += c.toString('latin1');
      if (started || !text.includes('\r\n\r\n')) return;
      started = true;
      // The answer is in. Keep sending the announced body, as a client that writes before it reads does.
      const more = () => {
        if (socket.destroyed) return;
        if (sent >= total) {
          socket.end();
          return;
        }
        socket.write(piece, (e) => {
          if (e) writeError ??= (e as NodeJS.ErrnoException).code ?? e.message;
        });
        sent += piece.length;
        setTimeout(more, 2);
      };
      setTimeout(more, 50);
    });
  });
}

describe('lingering close', () => {
  it('answers 413 and keeps reading until the client is done sending', async () => {
    const port = await serve(true);
    const got = await sendAfterAnswer(port);
    expect(got.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(got.writeError).toBeUndefined();
  });

  it('is needed: without it the server closes on the unread body and the client, still sending, is reset', async () => {
    const port = await serve(false);
    const got = await sendAfterAnswer(port);
    expect(got.status).toBe('HTTP/1.1 413 Payload Too Large');
    expect(got.writeError).toMatch(/ECONNRESET|EPIPE/);
  });

  it('leaves a request whose body was read alone (keep-alive, no Connection: close added)', async () => {
    const port = await serve(true);
    const r = await fetch(`http://127.0.0.1:${port}/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('connection')).not.toBe('close');
  });
});
