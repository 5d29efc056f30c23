import Fastify from 'fastify';

/**
 * The HTTP anchor of `lagoon bench`: a fastify server (Lagoon's HTTP framework) that does no work —
 * PUT /v1/kv/:key parses the JSON body and answers a small JSON, GET /v1/kv/:key answers a fixed value
 * of the size Lagoon answers — so `ours / anchor` is the cost of everything behind Lagoon's HTTP layer.
 * Run as its own process (like a Lagoon node): `lagoon bench noop --port P`.
 */
export async function runNoopServer(port: number): Promise<void> {
  const app = Fastify({ logger: false });
  const value = JSON.stringify({ user: 'u-123', score: 42, tags: ['a', 'b'], pad: 'x'.repeat(120) });
  app.put('/v1/kv/:key', async (req, reply) => {
    const key = (req.params as { key: string }).key;
    void req.body;
    reply.code(200);
    return { key, version: '0-1', status: 'applied' };
  });
  app.get('/v1/kv/:key', async (req, reply) => {
    const key = (req.params as { key: string }).key;
    reply.header('content-type', 'application/json; charset=utf-8');
    return `{"key":${JSON.stringify(key)},"value":${value},"version":"0-1","updatedAt":1700000000000}`;
  });
  await app.listen({ port, host: '127.0.0.1' });
  const stop = () => void app.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  if (process.env.LAGOON_OWNER_PID) {
    const owner = Number(process.env.LAGOON_OWNER_PID);
    setInterval(() => {
      try {
        process.kill(owner, 0);
      } catch {
        stop();
      }
    }, 1000).unref();
  }
}
