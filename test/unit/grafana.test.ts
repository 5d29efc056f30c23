import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');

interface Panel {
  id: number;
  title: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}

const dashboard = JSON.parse(read('infra/grafana/dashboards/lagoon-lag.json')) as {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string }> };
};

/** Metric names Lagoon exports: every `name: '…'` in the metric modules, plus histogram series. */
function exportedMetrics(): Set<string> {
  const names = new Set<string>();
  for (const file of ['src/lag/metrics.ts', 'src/node/metrics.ts']) {
    const text = read(file);
    for (const m of text.matchAll(/name: '([a-z_:][a-z0-9_:]*)'/g)) names.add(m[1]!);
    for (const m of text.matchAll(/gauge\(\s*'([a-z_:][a-z0-9_:]*)'/g)) names.add(m[1]!);
  }
  for (const n of [...names]) for (const s of ['_bucket', '_count', '_sum']) names.add(n + s);
  return names;
}

const PROMQL_WORDS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'by',
  'without',
  'rate',
  'deriv',
  'irate',
  'increase',
  'histogram_quantile',
  'clamp_min',
  'clamp_max',
  'scalar',
  'vector',
  'or',
  'and',
  'unless',
  'on',
  'ignoring',
  'le',
  'bool',
  'offset',
]);

/** Metric names a PromQL expression reads (identifiers that are not functions, keywords or labels). */
function metricsIn(expr: string): string[] {
  const noLabels = expr.replace(/\{[^}]*\}/g, '{}').replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  const noStrings = noLabels.replace(/"[^"]*"/g, '').replace(/\[[^\]]*\]/g, '');
  return [...noStrings.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .map((m) => m[0])
    .filter((w) => !PROMQL_WORDS.has(w));
}

describe('Grafana dashboard (infra/grafana)', () => {
  it('only charts metrics that Lagoon exports', () => {
    const exported = exportedMetrics();
    expect(exported.has('kafka_consumergroup_lag')).toBe(true);
    const used = new Set<string>();
    for (const p of dashboard.panels)
      for (const t of p.targets ?? []) for (const m of metricsIn(t.expr)) used.add(m);
    expect(used.size).toBeGreaterThan(10);
    const unknown = [...used].filter((m) => !exported.has(m));
    expect(unknown).toEqual([]);
  });

  it('has the lag panels, unique ids, the topic variable and the provisioned datasource', () => {
    const ds = parse(read('infra/grafana/provisioning/datasources/prometheus.yml')) as {
      datasources: Array<{ uid: string; url: string }>;
    };
    const uid = ds.datasources[0]!.uid;
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.datasource?.uid, p.title).toBe(uid);
      for (const t of p.targets ?? []) expect(t.datasource?.uid ?? uid).toBe(uid);
    }
    expect(dashboard.templating.list.map((v) => v.name)).toContain('topic');
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const m of [
      'kafka_consumergroup_lag',
      'kafka_consumergroup_group_max_lag_seconds',
      'lagoon_lag_status',
      'lagoon_broker_up',
    ]) {
      expect(exprs).toContain(m);
    }
    const provider = parse(read('infra/grafana/provisioning/dashboards/lagoon.yml')) as {
      providers: Array<{ options: { path: string } }>;
    };
    const compose = parse(read('docker-compose.yml')) as {
      services: Record<string, { volumes?: string[]; ports?: string[] }>;
    };
    const grafana = compose.services.grafana!;
    expect(grafana.ports).toContain('3000:3000');
    const mounts = (grafana.volumes ?? []).map((v) => v.split(':'));
    for (const [host] of mounts) expect(fs.existsSync(path.join(ROOT, host!))).toBe(true);
    expect(mounts.some(([, target]) => target === provider.providers[0]!.options.path)).toBe(true);
    expect(ds.datasources[0]!.url).toBe('http://prometheus:9090');
    expect(compose.services.prometheus).toBeDefined();
  });
});
