import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

// The provisioned Grafana dashboard is checked statically against the metric modules: every series a
// panel (or the $topic variable) reads must be one Lagoon exports, with labels it actually carries, so
// that a panel fails here as soon as it drifts to a name or label nobody exports.

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (p: string) => fs.readFileSync(path.join(ROOT, p), 'utf8');

interface Panel {
  id: number;
  title: string;
  type: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
}

interface Variable {
  name: string;
  type: string;
  datasource?: { uid: string };
  definition?: string;
  query?: string | { query?: string };
  current?: { value?: string | string[] };
}

const dashboard = JSON.parse(read('infra/grafana/dashboards/lagoon-lag.json')) as {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Variable[] };
};

const datasources = parse(read('infra/grafana/provisioning/datasources/prometheus.yml')) as {
  datasources: Array<{ uid: string; url: string; type: string; isDefault?: boolean }>;
};

/** Every series name Lagoon exports → the labels it carries (`node` is the registry's default label). */
function exportedSeries(): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>();
  const labels = (list: string | undefined) => [...(list ?? '').matchAll(/'([^']+)'/g)].map((m) => m[1]!);
  const add = (name: string, extra: string[]) => series.set(name, new Set(['node', ...extra]));
  // src/lag/metrics.ts: gauge('<name>', '<help>', [<labels>], fill)
  for (const m of read('src/lag/metrics.ts').matchAll(
    /gauge\(\s*'([a-zA-Z_:][a-zA-Z0-9_:]*)',\s*'(?:[^'\\]|\\.)*',\s*\[([^\]]*)\]/g,
  ))
    add(m[1]!, labels(m[2]));
  // src/node/metrics.ts: new client.<Type>({ name: '<name>', help: '<help>', labelNames: [<labels>], … })
  for (const m of read('src/node/metrics.ts').matchAll(
    /new client\.(Gauge|Counter|Histogram|Summary)(?:<[^>]*>)?\(\{\s*name: '([a-zA-Z_:][a-zA-Z0-9_:]*)',\s*help: '(?:[^'\\]|\\.)*',\s*(?:labelNames: \[([^\]]*)\],)?/g,
  )) {
    const [, type, name, list] = m;
    if (type === 'Histogram') {
      add(`${name}_bucket`, [...labels(list), 'le']);
      add(`${name}_count`, labels(list));
      add(`${name}_sum`, labels(list));
    } else {
      add(name!, labels(list));
    }
  }
  return series;
}

// Functions and keywords that may appear in the dashboard's PromQL. An identifier followed by `(` that
// is not in FUNCTIONS is reported as unknown rather than silently taken for a function.
const FUNCTIONS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'topk',
  'bottomk',
  'quantile',
  'rate',
  'irate',
  'increase',
  'deriv',
  'delta',
  'idelta',
  'histogram_quantile',
  'clamp_min',
  'clamp_max',
  'scalar',
  'vector',
  'abs',
  'label_values',
  'max_over_time',
  'min_over_time',
  'avg_over_time',
]);
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset']);
const LABEL_LISTS = /\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g;

/** Blanks string literals and Grafana variables so that neither is mistaken for an identifier. */
const unquote = (expr: string) => expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\$\{?\w+\}?/g, '');

/** Series names a PromQL expression reads, and identifiers used as calls that are not known functions. */
function metricsIn(expr: string): { metrics: string[]; unknownCalls: string[] } {
  const bare = unquote(expr)
    .replace(/\{[^}]*\}/g, ' ')
    .replace(LABEL_LISTS, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, ' ');
  const metrics: string[] = [];
  const unknownCalls: string[] = [];
  for (const m of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, word, call] = m;
    if (call !== undefined) {
      if (!FUNCTIONS.has(word!)) unknownCalls.push(word!);
    } else if (!KEYWORDS.has(word!) && !['and', 'or', 'unless'].includes(word!)) {
      metrics.push(word!);
    }
  }
  return { metrics, unknownCalls };
}

/** The text inside the parenthesis that opens at `open` (exclusive). */
function balanced(s: string, open: number): string {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0) return s.slice(open + 1, i);
  }
  throw new Error(`unbalanced parenthesis in ${s}`);
}

/** The text inside the parenthesis that closes at `close` (exclusive). */
function balancedBack(s: string, close: number): string {
  let depth = 0;
  for (let i = close; i >= 0; i--) {
    if (s[i] === ')') depth++;
    else if (s[i] === '(' && --depth === 0) return s.slice(i + 1, close);
  }
  throw new Error(`unbalanced parenthesis in ${s}`);
}

/**
 * Problems with an expression against the exported series: unknown series or functions, label matchers
 * on labels the series does not carry, and `by (…)` labels that none of the aggregated series carries
 * (that aggregation would merge everything into one series and break the vector matching around it).
 */
function problems(expr: string, exported: Map<string, Set<string>>): string[] {
  const out: string[] = [];
  const { metrics, unknownCalls } = metricsIn(expr);
  for (const f of unknownCalls) out.push(`unknown function ${f}()`);
  for (const m of metrics) if (!exported.has(m)) out.push(`${m} is not exported`);
  const text = unquote(expr);
  for (const m of text.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g)) {
    const carried = exported.get(m[1]!);
    if (carried === undefined) continue;
    for (const l of m[2]!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g))
      if (!carried.has(l[1]!)) out.push(`${m[1]} has no label ${l[1]}`);
  }
  for (const m of text.matchAll(/\bby\s*\(([^)]*)\)/g)) {
    const after = m.index + m[0].length;
    const next = /^\s*\(/.exec(text.slice(after));
    let inner: string;
    if (next) inner = balanced(text, after + next[0].length - 1);
    else {
      // `sum (…) by (labels)`: the aggregated expression precedes `by`.
      const close = text.slice(0, m.index).trimEnd().length - 1;
      inner = balancedBack(text, close);
    }
    const carried = new Set(metricsIn(inner).metrics.flatMap((n) => [...(exported.get(n) ?? [])]));
    for (const l of m[1]!.split(',').map((x) => x.trim()))
      if (l !== '' && !carried.has(l)) out.push(`by (${l}) over series without it: ${inner.trim()}`);
  }
  return out;
}

const exported = exportedSeries();
const targets = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, ...t })));
const topic = dashboard.templating.list.find((v) => v.name === 'topic');
const variableQuery = (v: Variable) => (typeof v.query === 'string' ? v.query : (v.query?.query ?? ''));

describe('Grafana dashboard: metric names', () => {
  it('reads the exported series (and their labels) from the metric modules', () => {
    expect(exported.get('kafka_consumergroup_lag')).toEqual(
      new Set(['node', 'consumergroup', 'topic', 'partition']),
    );
    expect(exported.get('kafka_consumergroup_group_max_lag_seconds')).toEqual(new Set(['node', 'group']));
    expect(exported.get('lagoon_lag_status')).toEqual(new Set(['node', 'group', 'partition', 'status']));
    expect(exported.get('lagoon_kafka_reachable')).toEqual(new Set(['node']));
    expect(exported.get('lagoon_write_duration_seconds_bucket')).toEqual(
      new Set(['node', 'op', 'result', 'le']),
    );
    expect(exported.get('lagoon_read_duration_seconds_count')).toEqual(
      new Set(['node', 'consistency', 'result']),
    );
    expect(exported.get('lagoon_records_applied_total')).toEqual(new Set(['node', 'partition']));
    expect(exported.has('lagoon_brokers_up')).toBe(true);
    // Histogram suffixes only for histograms; the bare histogram name is not a series.
    expect(exported.has('kafka_consumergroup_lag_sum')).toBe(false);
    expect(exported.has('lagoon_write_duration_seconds')).toBe(false);
  });

  it('only charts series that Lagoon exports, with labels they carry', () => {
    expect(targets.length).toBeGreaterThan(10);
    const used = new Set<string>();
    const found: string[] = [];
    for (const t of targets) {
      for (const m of metricsIn(t.expr).metrics) used.add(m);
      for (const p of problems(t.expr, exported)) found.push(`${t.panel.title}: ${p}`);
    }
    expect(found).toEqual([]);
    for (const m of [
      'kafka_consumergroup_lag',
      'kafka_consumergroup_group_max_lag_seconds',
      'kafka_topic_partition_current_offset',
      'lagoon_lag_status',
      'lagoon_broker_up',
      'lagoon_kafka_reachable',
      'lagoon_digest_agreement',
      'lagoon_outbox_records',
      'lagoon_records_applied_total',
      'lagoon_write_duration_seconds_count',
      'lagoon_write_duration_seconds_bucket',
      'lagoon_read_duration_seconds_bucket',
      'lagoon_replication_latency_seconds_bucket',
    ])
      expect(used, m).toContain(m);
  });

  it('fails on drift: unknown names, suffixes, functions, matchers and by-labels are reported', () => {
    expect(problems('max by (consumergroup) (kafka_consumergroup_lag{topic="$topic"})', exported)).toEqual(
      [],
    );
    expect(problems('sum(rate(lagoon_writes_total[1m]))', exported)).toEqual([
      'lagoon_writes_total is not exported',
    ]);
    expect(problems('sum(kafka_consumergroup_lag_sum)', exported)).toEqual([
      'kafka_consumergroup_lag_sum is not exported',
    ]);
    expect(problems('kafka_consumergroup_lag', exported)).toEqual([]);
    expect(problems('lagoon_brokers', exported)).toEqual(['lagoon_brokers is not exported']);
    expect(problems('sum(kafka_consumergroup_lag{group="x"})', exported)).toEqual([
      'kafka_consumergroup_lag has no label group',
    ]);
    expect(problems('histogram_quantil(0.9, lagoon_write_duration_seconds_bucket)', exported)).toEqual([
      'unknown function histogram_quantil()',
    ]);
    // kafka_consumergroup_current_offset is labelled consumergroup, not group: `by (group)` collapses
    // every group into one series, which then matches nothing on the other side of the division.
    expect(
      problems(
        'max by (group) (kafka_consumergroup_group_max_lag) / sum by (group) (rate(kafka_consumergroup_current_offset[1m]))',
        exported,
      ),
    ).toEqual(['by (group) over series without it: rate(kafka_consumergroup_current_offset[1m])']);
    expect(problems('sum(rate(lagoon_read_duration_seconds_count[1m])) by (op)', exported)).toEqual([
      'by (op) over series without it: rate(lagoon_read_duration_seconds_count[1m])',
    ]);
  });
});

describe('Grafana dashboard: structure', () => {
  it('is the lagoon-lag dashboard with unique panel ids', () => {
    expect(dashboard.uid).toBe('lagoon-lag');
    expect(dashboard.title).toBe('Lagoon — consumer lag');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    const ids = dashboard.panels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('uses the provisioned Prometheus datasource everywhere', () => {
    expect(datasources.datasources).toHaveLength(1);
    const ds = datasources.datasources[0]!;
    expect(ds).toMatchObject({ uid: 'prometheus', type: 'prometheus', isDefault: true });
    for (const p of dashboard.panels) {
      if (p.type === 'row') continue;
      expect(p.datasource?.uid, p.title).toBe(ds.uid);
      for (const t of p.targets ?? []) expect(t.datasource?.uid ?? ds.uid, p.title).toBe(ds.uid);
    }
    for (const v of dashboard.templating.list)
      if (v.type === 'query') expect(v.datasource?.uid, v.name).toBe(ds.uid);
  });

  it('has a $topic variable over an exported series, defaulting to lagoon.kv', () => {
    expect(topic).toBeDefined();
    expect(topic!.type).toBe('query');
    const q = /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*(\w+)\s*\)$/.exec(
      variableQuery(topic!).trim(),
    );
    expect(q, variableQuery(topic!)).not.toBeNull();
    expect(q![1]).toBe('kafka_topic_partition_current_offset');
    expect(exported.get(q![1]!)).toContain(q![2]);
    expect(topic!.current?.value).toBe('lagoon.kv');
    expect(targets.some((t) => t.expr.includes('topic="$topic"'))).toBe(true);
  });

  it('deduplicates the per-group lag that every node reports', () => {
    const lag = targets.filter((t) => /\bkafka_consumergroup_lag\b/.test(t.expr));
    expect(lag.length).toBeGreaterThan(0);
    for (const t of lag) expect(t.expr, t.panel.title).toMatch(/max by \([^)]*consumergroup[^)]*\)/);
  });

  it('is loaded by the file provider from where docker-compose mounts it', () => {
    const provider = parse(read('infra/grafana/provisioning/dashboards/lagoon.yml')) as {
      apiVersion: number;
      providers: Array<{ type: string; options: { path: string } }>;
    };
    expect(provider.providers).toHaveLength(1);
    expect(provider.providers[0]!.type).toBe('file');
    expect(provider.providers[0]!.options.path).toBe('/var/lib/grafana/dashboards');
    expect(datasources.datasources[0]!.url).toBe('http://prometheus:9090');
  });
});
