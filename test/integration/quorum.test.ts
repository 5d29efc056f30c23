import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { activeController, describeQuorum, KafkaProtocolError } from '../../src/log/quorum.js';
import { eventually, localCluster } from '../support/kafka.js';

const cluster = localCluster();
const HOST = '127.0.0.1';

function controllerEndpoints(ids?: number[]) {
  return cluster!.layout.brokers
    .filter((b) => !ids || ids.includes(b.id))
    .map((b) => ({ host: HOST, port: b.controllerPort }));
}

/** The leader as Kafka's own MetadataQuorumCommand reports it. */
async function toolLeader(controllerPort: number): Promise<number> {
  const out = await cluster!.tool('org.apache.kafka.tools.MetadataQuorumCommand', [
    '--bootstrap-controller',
    `${HOST}:${controllerPort}`,
    'describe',
    '--status',
  ]);
  const m = /LeaderId:\s+(-?\d+)/.exec(out);
  if (!m) throw new Error(`no LeaderId in MetadataQuorumCommand output:\n${out}`);
  return Number(m[1]);
}

/** A local TCP server; `onConnection` decides what it does with each client. */
async function fakeServer(
  onConnection: (s: net.Socket) => void,
): Promise<{ port: number; close: () => void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    onConnection(s);
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

const servers: Array<{ close: () => void }> = [];
afterAll(() => {
  for (const s of servers) s.close();
});

describe.skipIf(!cluster)('DescribeQuorum client', () => {
  it('finds the active controller, agreeing with MetadataQuorumCommand', async () => {
    const ids = cluster!.layout.brokers.map((b) => b.id);
    const leader = await activeController(controllerEndpoints(), 30_000);
    expect(leader).toBeDefined();
    expect(ids).toContain(leader);
    expect(await toolLeader(cluster!.layout.brokers[0]!.controllerPort)).toBe(leader);

    const q = await describeQuorum({ host: HOST, port: cluster!.broker(leader!).controllerPort });
    expect(q.leaderId).toBe(leader);
    expect(q.leaderEpoch).toBeGreaterThan(0);
    expect(q.highWatermark).toBeGreaterThan(0n);
    expect(q.voters.map((v) => v.replicaId).sort()).toEqual(ids);
    for (const v of q.voters) expect(typeof v.logEndOffset).toBe('bigint');
  });

  it('controller listeners: only the leader answers; the others say NOT_LEADER_OR_FOLLOWER', async () => {
    const leader = await activeController(controllerEndpoints(), 30_000);
    for (const b of cluster!.layout.brokers) {
      const attempt = describeQuorum({ host: HOST, port: b.controllerPort });
      if (b.id === leader) {
        expect((await attempt).leaderId).toBe(leader);
      } else {
        const e = await attempt.then(
          () => undefined,
          (x: unknown) => x,
        );
        expect(e).toBeInstanceOf(KafkaProtocolError);
        expect((e as KafkaProtocolError).kafkaCode).toBe(6);
        expect((e as KafkaProtocolError).kafkaError).toBe('NOT_LEADER_OR_FOLLOWER');
      }
    }
  });

  it('broker listeners forward DescribeQuorum to the active controller', async () => {
    const leader = await activeController(controllerEndpoints(), 30_000);
    for (const b of cluster!.layout.brokers) {
      const q = await describeQuorum({ host: HOST, port: b.port, timeoutMs: 30_000 });
      expect(q.leaderId).toBe(leader);
    }
  });

  it('reassembles responses that arrive one byte at a time', async () => {
    const leader = await activeController(controllerEndpoints(), 30_000);
    const target = cluster!.broker(leader!).controllerPort;
    // A proxy that relays requests whole and dribbles the responses back byte by byte.
    const proxy = await fakeServer((client) => {
      const upstream = net.connect({ host: HOST, port: target });
      upstream.on('error', () => client.destroy());
      client.on('data', (d) => upstream.write(d));
      client.on('close', () => upstream.destroy());
      upstream.on('data', (d: Buffer) => {
        for (let i = 0; i < d.length; i++) client.write(d.subarray(i, i + 1));
      });
    });
    servers.push(proxy);
    const q = await describeQuorum({ host: HOST, port: proxy.port, timeoutMs: 30_000 });
    expect(q.leaderId).toBe(leader);
    expect(q.voters).toHaveLength(cluster!.layout.brokers.length);
  });

  it('never hangs: a silent server times out, a refused port fails fast, garbage is rejected', async () => {
    const silent = await fakeServer(() => {});
    servers.push(silent);
    await expect(describeQuorum({ host: HOST, port: silent.port, timeoutMs: 300 })).rejects.toThrow(
      /timed out after 300 ms/,
    );
    expect(await activeController([{ host: HOST, port: silent.port }], 300)).toBeUndefined();

    const closed = await fakeServer(() => {});
    const closedPort = closed.port;
    closed.close();
    // A refused connection fails at once rather than waiting out a long timeout (liveness bound).
    const t0 = Date.now();
    await expect(describeQuorum({ host: HOST, port: closedPort, timeoutMs: 120_000 })).rejects.toThrow();
    expect(Date.now() - t0).toBeLessThan(60_000);

    const hangup = await fakeServer((s) => s.once('data', () => s.destroy()));
    servers.push(hangup);
    await expect(describeQuorum({ host: HOST, port: hangup.port, timeoutMs: 30_000 })).rejects.toThrow(
      /closed/,
    );

    const garbage = await fakeServer((s) =>
      s.once('data', () => s.write(Buffer.from([0x7f, 0xff, 0xff, 0xff]))),
    );
    servers.push(garbage);
    await expect(describeQuorum({ host: HOST, port: garbage.port, timeoutMs: 30_000 })).rejects.toThrow(
      /implausible Kafka frame length/,
    );
  });

  it('follows a controller failover', async () => {
    const ids = cluster!.layout.brokers.map((b) => b.id);
    const before = await activeController(controllerEndpoints(), 30_000);
    expect(before).toBeDefined();
    await cluster!.killBroker(before!);
    try {
      const survivors = ids.filter((id) => id !== before);
      const after = await eventually(
        'a new active controller',
        async () => {
          const id = await activeController(controllerEndpoints(survivors), 1_000);
          return id !== undefined && id !== before ? id : undefined;
        },
        60_000,
        250,
      );
      expect(survivors).toContain(after);
      expect(await toolLeader(cluster!.broker(after).controllerPort)).toBe(after);
    } finally {
      await cluster!.startBroker(before!);
    }
    // Back to three voters, with some leader.
    const leader = await eventually('a leader after restart', () =>
      activeController(controllerEndpoints(), 1_000),
    );
    expect(ids).toContain(leader);
  });
});
