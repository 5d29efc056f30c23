import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULTS } from '../../src/defaults.js';

// No Docker engine runs where this project is built, so docker-compose.yml is checked statically:
// parsed and compared with DEFAULTS, so that it fails as soon as the file drifts.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (rel: string): string => readFileSync(path.join(root, rel), 'utf8');

type Service = {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, unknown> | string[];
  ports?: (string | { target?: number; published?: string | number })[];
  volumes?: (string | { source?: string; target?: string; read_only?: boolean })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
};
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown> };

// Compose allows YAML merge keys (`<<: *anchor`); the yaml package needs `merge` to expand them.
const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
const services = Object.entries(compose.services);

function env(svc: Service): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(svc.environment)) {
    for (const item of svc.environment) {
      const i = item.indexOf('=');
      out[i < 0 ? item : item.slice(0, i)] = i < 0 ? '' : item.slice(i + 1);
    }
  } else {
    for (const [k, v] of Object.entries(svc.environment ?? {})) out[k] = v == null ? '' : String(v);
  }
  return out;
}

function argv(svc: Service): string[] {
  if (svc.command === undefined) return [];
  return Array.isArray(svc.command) ? svc.command.map(String) : svc.command.trim().split(/\s+/);
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i < 0 ? undefined : args[i + 1];
}

function ports(svc: Service): { host: number; container: number }[] {
  return (svc.ports ?? []).map((p) => {
    if (typeof p === 'object') return { host: Number(p.published), container: Number(p.target) };
    const parts = String(p).split('/')[0]!.split(':');
    return { host: Number(parts.at(-2)), container: Number(parts.at(-1)) };
  });
}

function mounts(svc: Service): { source: string; target: string; readOnly: boolean }[] {
  return (svc.volumes ?? []).map((v) => {
    if (typeof v === 'object')
      return { source: v.source ?? '', target: v.target ?? '', readOnly: !!v.read_only };
    const [source = '', target = '', mode = ''] = v.split(':');
    return { source, target, readOnly: mode.split(',').includes('ro') };
  });
}

function dependsOn(svc: Service): Record<string, string | undefined> {
  const d = svc.depends_on ?? [];
  if (Array.isArray(d)) return Object.fromEntries(d.map((n) => [n, undefined]));
  return Object.fromEntries(Object.entries(d).map(([n, v]) => [n, v?.condition]));
}

function healthcheck(svc: Service): string {
  const t = svc.healthcheck?.test;
  return Array.isArray(t) ? t.join(' ') : (t ?? '');
}

/** `NAME://host:port,...` → { NAME: {host, port} } */
function listeners(value: string): Record<string, { host: string; port: number }> {
  const out: Record<string, { host: string; port: number }> = {};
  for (const l of value.split(',')) {
    const m = /^([A-Z_]+):\/\/([^:]*):(\d+)$/.exec(l.trim());
    expect(m, `listener ${l}`).not.toBeNull();
    out[m![1]!] = { host: m![2]!, port: Number(m![3]) };
  }
  return out;
}

const kafka = services.filter(([, s]) => s.image?.startsWith('apache/kafka:'));
const lagoon = services.filter(([, s]) => {
  const b = s.build;
  return b !== undefined && typeof b === 'object' && b.dockerfile === 'infra/Dockerfile';
});

// The Dockerfile's final stage: what the lagoon services actually run.
const dockerfileLines = read('infra/Dockerfile')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const lastFrom = dockerfileLines.findLastIndex((l) => /^FROM\s/i.test(l));
const finalStage = dockerfileLines.slice(lastFrom);
const instr = (name: string): string[] =>
  finalStage.filter((l) => l.toUpperCase().startsWith(`${name} `)).map((l) => l.slice(name.length).trim());

describe('docker-compose.yml: Kafka brokers', () => {
  it(`has exactly DEFAULTS.brokers (${DEFAULTS.brokers}) apache/kafka:${DEFAULTS.kafkaVersion} brokers`, () => {
    expect(kafka.map(([name]) => name).sort()).toEqual(
      Array.from({ length: DEFAULTS.brokers }, (_, i) => `kafka-${i + 1}`),
    );
    for (const [, s] of kafka) expect(s.image).toBe(`apache/kafka:${DEFAULTS.kafkaVersion}`);
  });

  it('runs KRaft combined mode with distinct node ids 1..N and one cluster id', () => {
    const ids = kafka.map(([, s]) => Number(env(s)['KAFKA_NODE_ID']));
    expect([...ids].sort()).toEqual(Array.from({ length: DEFAULTS.brokers }, (_, i) => i + 1));
    const clusterIds = new Set(kafka.map(([, s]) => env(s)['CLUSTER_ID']));
    expect(clusterIds.size).toBe(1);
    expect([...clusterIds][0]).toMatch(/^[A-Za-z0-9_-]{22}$/);
    for (const [, s] of kafka) {
      const e = env(s);
      expect(e['KAFKA_PROCESS_ROLES']!.split(',').sort()).toEqual(['broker', 'controller']);
      expect(e['KAFKA_CONTROLLER_LISTENER_NAMES']).toBe('CONTROLLER');
      const map = Object.fromEntries(
        e['KAFKA_LISTENER_SECURITY_PROTOCOL_MAP']!.split(',').map((p) => p.split(':') as [string, string]),
      );
      expect(map).toMatchObject({ CONTROLLER: 'PLAINTEXT', PLAINTEXT: 'PLAINTEXT' });
    }
  });

  it('listens on PLAINTEXT 9092 and CONTROLLER 9093, advertising its own service name', () => {
    for (const [name, s] of kafka) {
      const e = env(s);
      const own = listeners(e['KAFKA_LISTENERS']!);
      expect(own['PLAINTEXT']?.port).toBe(9092);
      expect(own['CONTROLLER']?.port).toBe(9093);
      expect(listeners(e['KAFKA_ADVERTISED_LISTENERS']!)['PLAINTEXT']).toEqual({ host: name, port: 9092 });
    }
  });

  it('lists every broker as a controller quorum voter', () => {
    const expected = kafka
      .map(([name, s]) => {
        const e = env(s);
        return `${e['KAFKA_NODE_ID']}@${name}:${listeners(e['KAFKA_LISTENERS']!)['CONTROLLER']!.port}`;
      })
      .sort();
    for (const [, s] of kafka) {
      expect(env(s)['KAFKA_CONTROLLER_QUORUM_VOTERS']!.split(',').sort()).toEqual(expected);
    }
  });

  it('matches DEFAULTS for replication and is safe (no unclean election, no auto-create)', () => {
    for (const [, s] of kafka) {
      const e = env(s);
      expect(Number(e['KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR'])).toBe(DEFAULTS.replicationFactor);
      expect(Number(e['KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR'])).toBe(DEFAULTS.replicationFactor);
      expect(Number(e['KAFKA_TRANSACTION_STATE_LOG_MIN_ISR'])).toBe(DEFAULTS.minInsyncReplicas);
      expect(Number(e['KAFKA_MIN_INSYNC_REPLICAS'])).toBe(DEFAULTS.minInsyncReplicas);
      expect(e['KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE']).toBe('false');
      expect(e['KAFKA_AUTO_CREATE_TOPICS_ENABLE']).toBe('false');
      expect(e['KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS']).toBe('0');
    }
  });

  it('keeps its log dir on a declared named volume and has a broker healthcheck', () => {
    for (const [, s] of kafka) {
      const logDir = env(s)['KAFKA_LOG_DIRS'];
      const mount = mounts(s).find((m) => m.target === logDir);
      expect(mount, `volume for ${logDir}`).toBeDefined();
      expect(compose.volumes ?? {}).toHaveProperty([mount!.source]);
      expect(healthcheck(s)).toContain('/opt/kafka/bin/kafka-broker-api-versions.sh');
    }
  });
});

describe('docker-compose.yml: Lagoon nodes', () => {
  const plaintext = kafka.map(([, s]) => {
    const l = listeners(env(s)['KAFKA_ADVERTISED_LISTENERS']!)['PLAINTEXT']!;
    return `${l.host}:${l.port}`;
  });
  const entrypoint = JSON.parse(instr('ENTRYPOINT').at(-1) ?? '[]') as string[];
  const exposed = instr('EXPOSE').flatMap((l) => l.split(/\s+/).map((p) => Number(p.split('/')[0])));

  it(`has exactly DEFAULTS.nodes (${DEFAULTS.nodes}) nodes built from infra/Dockerfile`, () => {
    expect(lagoon).toHaveLength(DEFAULTS.nodes);
    for (const [, s] of lagoon) {
      const b = s.build as { context?: string; dockerfile: string };
      expect(existsSync(path.join(root, b.context ?? '.', b.dockerfile))).toBe(true);
    }
  });

  it('runs `node bin/lagoon.js node` with distinct ids, every broker and a db on a volume', () => {
    const ids: string[] = [];
    for (const [name, s] of lagoon) {
      const full = [...entrypoint, ...argv(s)];
      expect(full.slice(0, 3), name).toEqual(['node', 'bin/lagoon.js', 'node']);
      ids.push(flag(full, '--id')!);
      expect(flag(full, '--kafka')?.split(',').sort(), name).toEqual([...plaintext].sort());
      const db = flag(full, '--db')!;
      const mount = mounts(s).find((m) => db.startsWith(`${m.target}/`));
      expect(mount, `${name}: volume holding ${db}`).toBeDefined();
      expect(compose.volumes ?? {}).toHaveProperty([mount!.source]);
    }
    expect(new Set(ids).size).toBe(DEFAULTS.nodes);
    for (const id of ids) expect(id).toMatch(/^node-\d+$/);
  });

  it('publishes distinct host ports from DEFAULTS.apiPort onto the exposed container port', () => {
    const hostPorts: number[] = [];
    for (const [name, s] of lagoon) {
      const port = Number(flag(argv(s), '--port'));
      const published = ports(s);
      expect(published, name).toHaveLength(1);
      expect(published[0]!.container, name).toBe(port);
      expect(exposed, `infra/Dockerfile EXPOSE ${port}`).toContain(port);
      hostPorts.push(published[0]!.host);
      expect(healthcheck(s)).toContain(`http://127.0.0.1:${port}/readyz`);
    }
    expect(hostPorts.sort((a, b) => a - b)).toEqual(
      Array.from({ length: DEFAULTS.nodes }, (_, i) => DEFAULTS.apiPort + i),
    );
  });

  it('uses the DEFAULTS topic and partition count', () => {
    for (const [, s] of lagoon) {
      expect(env(s)['LAGOON_TOPIC']).toBe(DEFAULTS.topic);
      expect(Number(env(s)['LAGOON_PARTITIONS'])).toBe(DEFAULTS.partitions);
    }
  });

  it('waits for every broker to be healthy', () => {
    for (const [, s] of lagoon) {
      const deps = dependsOn(s);
      for (const [broker] of kafka) expect(deps[broker], broker).toBe('service_healthy');
    }
  });
});

describe('infra/Dockerfile and .dockerignore', () => {
  it('runs node 20 as a non-root user without dev dependencies', () => {
    const text = read('infra/Dockerfile');
    expect(finalStage[0]).toMatch(/node:20-bookworm-slim|\$\{?NODE_IMAGE\}?/);
    expect(text).toContain('node:20-bookworm-slim');
    expect(text).toMatch(/npm ci --omit=dev/);
    const user = instr('USER').at(-1);
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    for (const src of ['bin', 'src', 'tsconfig.json']) {
      expect(instr('COPY').some((c) => c.split(/\s+/).includes(src) || c.startsWith(`${src} `))).toBe(true);
    }
  });

  it('keeps local state out of the build context', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim());
    for (const p of ['node_modules', '.lagoon', '.git', 'test-results', 'dist']) expect(ignored).toContain(p);
  });
});

describe('infra/prometheus/prometheus.yml', () => {
  const prom = services.find(([, s]) => s.image?.startsWith('prom/prometheus'));

  it('is mounted into the prometheus service and scrapes every node /metrics every 5s', () => {
    expect(prom).toBeDefined();
    const mount = mounts(prom![1]).find((m) => m.target === '/etc/prometheus/prometheus.yml');
    expect(mount?.source).toBe('./infra/prometheus/prometheus.yml');
    const config = parse(read('infra/prometheus/prometheus.yml')) as {
      global?: { scrape_interval?: string };
      scrape_configs: {
        metrics_path?: string;
        scrape_interval?: string;
        static_configs?: { targets: string[] }[];
      }[];
    };
    const targets = new Set<string>();
    for (const job of config.scrape_configs) {
      expect(job.metrics_path ?? '/metrics').toBe('/metrics');
      expect(job.scrape_interval ?? config.global?.scrape_interval).toBe('5s');
      for (const sc of job.static_configs ?? []) for (const t of sc.targets) targets.add(t);
    }
    for (const [name, s] of lagoon) expect(targets).toContain(`${name}:${flag(argv(s), '--port')}`);
  });
});

describe('docker-compose.yml: Grafana', () => {
  const grafana = compose.services['grafana'];
  const prom = services.find(([, s]) => s.image?.startsWith('prom/prometheus'));
  const mount = (target: string) => mounts(grafana!).find((m) => m.target === target);

  it('runs a pinned grafana/grafana image on port 3000 after prometheus', () => {
    expect(grafana).toBeDefined();
    expect(grafana!.image).toMatch(/^grafana\/grafana(-oss)?:\d+\.\d+\.\d+$/);
    expect(ports(grafana!)).toEqual([{ host: 3000, container: 3000 }]);
    expect(prom).toBeDefined();
    expect(Object.keys(dependsOn(grafana!))).toContain(prom![0]);
  });

  it('lets anonymous users in as viewers only', () => {
    const e = env(grafana!);
    expect(e['GF_AUTH_ANONYMOUS_ENABLED']).toBe('true');
    expect(e['GF_AUTH_ANONYMOUS_ORG_ROLE']).toBe('Viewer');
  });

  it('mounts provisioning and dashboards read-only from infra/grafana, as directories that exist', () => {
    const provisioning = mount('/etc/grafana/provisioning');
    const dashboards = mount('/var/lib/grafana/dashboards');
    expect(provisioning?.source).toBe('./infra/grafana/provisioning');
    expect(dashboards?.source).toBe('./infra/grafana/dashboards');
    for (const m of [provisioning!, dashboards!]) {
      expect(m.readOnly, m.target).toBe(true);
      expect(statSync(path.join(root, m.source)).isDirectory(), m.source).toBe(true);
    }
    for (const sub of ['datasources', 'dashboards'])
      expect(existsSync(path.join(root, provisioning!.source, sub)), sub).toBe(true);
    expect(readdirSync(path.join(root, dashboards!.source)).some((f) => f.endsWith('.json'))).toBe(true);
    // The home dashboard, if set, is one of the mounted files.
    const home = env(grafana!)['GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH'];
    if (home !== undefined) {
      expect(home.startsWith(`${dashboards!.target}/`), home).toBe(true);
      expect(existsSync(path.join(root, dashboards!.source, home.slice(dashboards!.target.length)))).toBe(
        true,
      );
    }
  });

  it('provisions the prometheus service as datasource and loads dashboards from the mount', () => {
    const provisioning = mount('/etc/grafana/provisioning')!.source;
    const ds = parse(read(path.join(provisioning, 'datasources/prometheus.yml'))) as {
      datasources: { type: string; url: string }[];
    };
    const promPort = ports(prom![1])[0]!.container;
    const urls = ds.datasources.filter((d) => d.type === 'prometheus').map((d) => d.url);
    expect(urls).toEqual([`http://${prom![0]}:${promPort}`]);
    const provider = parse(read(path.join(provisioning, 'dashboards/lagoon.yml'))) as {
      providers: { type: string; options: { path: string } }[];
    };
    for (const p of provider.providers) {
      expect(p.type).toBe('file');
      expect(p.options.path).toBe(mount('/var/lib/grafana/dashboards')!.target);
    }
  });
});
