import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTS } from '../defaults.js';
import { LagoonError } from '../errors.js';

const INFRA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../infra/kafka');

/** The two classpaths fetched from Maven Central: the broker, and Kafka's tools (kept apart). */
export interface KafkaJars {
  version: string;
  brokerClasspath: string;
  toolsClasspath: string;
}

/** Cache root: LAGOON_KAFKA_CACHE, else $XDG_CACHE_HOME/lagoon, else ~/.cache/lagoon. Outside the repo on purpose. */
export function kafkaCacheDir(
  env: NodeJS.ProcessEnv = process.env,
  version: string = DEFAULTS.kafkaVersion,
): string {
  const root =
    env.LAGOON_KAFKA_CACHE ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lagoon');
  return path.join(root, `kafka-${version}`);
}

function jarsOf(dir: string): KafkaJars {
  return {
    version: DEFAULTS.kafkaVersion,
    brokerClasspath: path.join(dir, 'broker', '*'),
    toolsClasspath: path.join(dir, 'tools', '*'),
  };
}

/** True when both classpaths are in the cache (a `.complete` marker is written last, so a torn fetch is refetched). */
export function kafkaJarsCached(dir = kafkaCacheDir()): boolean {
  return (
    fs.existsSync(path.join(dir, 'broker', '.complete')) &&
    fs.existsSync(path.join(dir, 'tools', '.complete'))
  );
}

export type Progress = (line: string) => void;

/**
 * Makes sure the pinned Kafka broker and tools jars are in the cache, fetching them with Maven on first use.
 * Later calls return at once.
 */
export async function ensureKafkaJars(
  progress: Progress = () => {},
  dir = kafkaCacheDir(),
): Promise<KafkaJars> {
  if (kafkaJarsCached(dir)) return jarsOf(dir);
  const started = Date.now();
  progress(`Fetching Apache Kafka ${DEFAULTS.kafkaVersion} from Maven Central into ${dir} (first use only)…`);
  for (const part of ['broker', 'tools'] as const) {
    const out = path.join(dir, part);
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(out, { recursive: true });
    await runMaven(path.join(INFRA, part, 'pom.xml'), out, (n) =>
      progress(`  ${part}: ${n} artifacts downloaded`),
    );
    const jars = fs.readdirSync(out).filter((f) => f.endsWith('.jar'));
    if (jars.length === 0) {
      throw new LagoonError('kafka_fetch_failed', `Maven put no jars in ${out}`, { retryable: true });
    }
    fs.writeFileSync(path.join(out, '.complete'), `${new Date().toISOString()}\n`);
    progress(`  ${part}: ${jars.length} jars ready`);
  }
  progress(`Kafka jars fetched in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return jarsOf(dir);
}

function runMaven(pom: string, outDir: string, onCount: (n: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = ['-B', '-f', pom, 'dependency:copy-dependencies', `-DoutputDirectory=${outDir}`];
    const child = spawn('mvn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let count = 0;
    let lastReport = 0;
    let tail = '';
    const onData = (buf: Buffer) => {
      const text = buf.toString();
      tail = (tail + text).slice(-4000);
      count += (text.match(/Downloaded from/g) ?? []).length;
      if (count - lastReport >= 20) {
        lastReport = count;
        onCount(count);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (err) =>
      reject(
        new LagoonError('kafka_fetch_failed', `Could not run Maven (mvn): ${err.message}. Install Maven.`, {
          cause: err,
        }),
      ),
    );
    child.on('exit', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new LagoonError(
            'kafka_fetch_failed',
            `Maven failed (exit ${code}) fetching ${pom}. Check access to Maven Central.\n${tail}`,
            { retryable: true },
          ),
        );
    });
  });
}
