import fs from 'node:fs';
import path from 'node:path';

/**
 * Reads the V8 CPU profiles (`--cpu-prof`) of a bench run and writes, per profile, the folded stacks a
 * flame graph is drawn from (`<name>.folded`: `frame;frame;frame samples`, the input of flamegraph.pl,
 * speedscope and inferno) and a self-time summary; returns the summary of the busiest profiles.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  startTime: number;
  endTime: number;
}

function frameName(n: ProfileNode): string {
  const f = n.callFrame;
  const file = f.url ? f.url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '~/') : '';
  const short = file.replace(/^.*\/src\//, 'src/');
  return `${f.functionName || '(anonymous)'}${short ? ` ${short}:${f.lineNumber + 1}` : ''}`;
}

/** Folded stacks and self time per frame of one profile. */
export function foldProfile(p: CpuProfile): {
  folded: Map<string, number>;
  self: Map<string, number>;
  total: number;
} {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hits = new Map<number, number>();
  for (const s of p.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  const folded = new Map<string, number>();
  const self = new Map<string, number>();
  let total = 0;
  for (const [id, count] of hits) {
    const stack: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      if (n.callFrame.functionName !== '(root)') stack.push(frameName(n));
    }
    stack.reverse();
    const key = stack.join(';') || '(root)';
    folded.set(key, (folded.get(key) ?? 0) + count);
    const leaf = stack[stack.length - 1] ?? '(root)';
    self.set(leaf, (self.get(leaf) ?? 0) + count);
    total += count;
  }
  return { folded, self, total };
}

export function summarizeProfiles(dir: string, top = 25): string | undefined {
  if (!fs.existsSync(dir)) return undefined;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const out: string[] = [];
  for (const f of files) {
    const p = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CpuProfile;
    const { folded, self, total } = foldProfile(p);
    const base = path.join(dir, f.replace(/\.cpuprofile$/, ''));
    fs.writeFileSync(`${base}.folded`, [...folded].map(([k, v]) => `${k} ${v}`).join('\n') + '\n');
    const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
    const summary = [
      `${f}: ${total} samples over ${Math.round((p.endTime - p.startTime) / 1e6)} s; top self time:`,
      ...rows.map(([k, v]) => `  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`),
    ].join('\n');
    fs.writeFileSync(`${base}.top.txt`, `${summary}\n`);
    out.push(summary);
  }
  return out.join('\n\n');
}
