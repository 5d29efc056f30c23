import { LagoonError } from '../errors.js';
import type { CliIo } from './io.js';

const USAGE =
  'lagoon snapshot create|list [--node URL]   (LAGOON_TOKEN: a bearer token, when the node has API tokens)';

interface Listed {
  name: string;
  size: number;
  manifest: { createdAt: string; partitions: Array<{ partition: number; appliedOffset: number }> };
}

function line(s: Listed): string {
  const offsets = s.manifest.partitions.map((p) => `${p.partition}:${p.appliedOffset}`).join(' ');
  return `${s.manifest.createdAt}  ${String(s.size).padStart(12)} bytes  ${s.name}  offsets ${offsets}`;
}

/** `lagoon snapshot create|list`: a running node's snapshots, over its HTTP API. */
export async function snapshotCommand(
  action: string | undefined,
  flags: { node?: string | undefined },
  io: CliIo,
): Promise<number> {
  const node = (flags.node ?? 'http://127.0.0.1:8081').replace(/\/+$/, '');
  const headers: Record<string, string> = process.env.LAGOON_TOKEN
    ? { authorization: `Bearer ${process.env.LAGOON_TOKEN}` }
    : {};
  const call = async (method: string, path: string) => {
    let res: Response;
    try {
      res = await fetch(`${node}${path}`, { method, headers, signal: AbortSignal.timeout(10 * 60_000) });
    } catch (e) {
      throw new LagoonError('node_unreachable', `${node} did not answer: ${(e as Error).message}`);
    }
    const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!res.ok) {
      throw new LagoonError(
        'request_failed',
        `${method} ${node}${path}: ${res.status} ${String(body?.code ?? '')} ${String(body?.detail ?? '')}`.trim(),
      );
    }
    return body ?? {};
  };
  switch (action) {
    case 'create': {
      const s = (await call('POST', '/v1/snapshots')) as unknown as Listed;
      io.out(line(s));
      return 0;
    }
    case 'list': {
      const r = (await call('GET', '/v1/snapshots')) as unknown as { snapshots: Listed[] };
      if (r.snapshots.length === 0) io.err(`${node} keeps no snapshot yet`);
      for (const s of r.snapshots) io.out(line(s));
      return 0;
    }
    default:
      throw new LagoonError('bad_argument', `Unknown snapshot action '${action ?? ''}'. ${USAGE}`);
  }
}
