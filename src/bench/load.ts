import http from 'node:http';
import * as hdr from 'hdr-histogram-js';

/**
 * Load generators for `lagoon bench`, all against loopback:
 * - closed loop (autocannon): the most requests a server answers with N connections;
 * - open loop: requests sent at their intended times whether or not earlier ones were answered, latency
 *   measured from the intended send time (no coordinated omission), into an HDR histogram.
 */

export interface ClosedLoopResult {
  requestsPerSec: number;
  ok: number;
  non2xx: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

interface AcResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  '2xx': number;
  non2xx: number;
  errors: number;
  duration: number;
}

export interface RequestSpec {
  method: 'GET' | 'PUT';
  /** Path of the n-th request (n counts from 0 across the run). */
  path: (n: number) => string;
  body?: string;
  headers?: Record<string, string>;
}

/** Closed loop: `connections` connections, each sending its next request when the previous one is answered. */
export async function closedLoop(
  url: string,
  spec: RequestSpec,
  opts: { connections: number; durationS: number },
): Promise<ClosedLoopResult> {
  // autocannon's typings do not model setupRequest returning a partial request; its runtime does.
  const autocannon = (await import('autocannon')).default as unknown as (
    o: Record<string, unknown>,
  ) => Promise<AcResult>;
  let n = 0;
  const headers = { ...(spec.body ? { 'content-type': 'application/json' } : {}), ...spec.headers };
  const r = await autocannon({
    url,
    connections: opts.connections,
    duration: opts.durationS,
    requests: [
      {
        method: spec.method,
        setupRequest: (req: Record<string, unknown>) => ({
          ...req,
          path: spec.path(n++),
          headers,
          ...(spec.body ? { body: spec.body } : {}),
        }),
      },
    ],
  });
  return {
    requestsPerSec: Math.round(r['2xx'] / r.duration),
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
  };
}

export interface OpenLoopResult {
  offeredPerSec: number;
  sent: number;
  ok: number;
  failed: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A latency histogram in microseconds, 1 µs .. 10 min, 3 significant digits. */
export function latencyHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

export function summarizeHistogram(h: hdr.Histogram): {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
} {
  const ms = (us: number) => Math.round(us / 10) / 100;
  return {
    p50Ms: ms(h.getValueAtPercentile(50)),
    p90Ms: ms(h.getValueAtPercentile(90)),
    p99Ms: ms(h.getValueAtPercentile(99)),
    maxMs: ms(h.maxValue),
  };
}

/** What one answered request reports to an open loop's `onAnswer`. */
export interface Answer {
  n: number;
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  /** performance.now() at which the request was due. */
  intendedAt: number;
}

/**
 * Open loop at `ratePerSec` for `durationS`: request n is due at start + n / rate and is sent then (a 1 ms
 * scheduler tick), however many are still unanswered. By default a request's latency is from its intended
 * time to its answer; `onAnswer` returning false takes over recording (e.g. until the write is visible).
 */
export async function openLoop(
  url: string,
  spec: RequestSpec,
  opts: {
    ratePerSec: number;
    durationS: number;
    maxSockets?: number;
    histogram?: hdr.Histogram;
    onAnswer?: (a: Answer) => boolean | undefined;
  },
): Promise<OpenLoopResult> {
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 256 });
  const hist = opts.histogram ?? latencyHistogram();
  const total = Math.max(1, Math.round(opts.ratePerSec * opts.durationS));
  let sent = 0;
  let ok = 0;
  let failed = 0;
  let answered = 0;
  const start = performance.now();
  const headers = { ...(spec.body ? { 'content-type': 'application/json' } : {}), ...spec.headers };
  await new Promise<void>((resolve) => {
    const fire = (n: number, intendedAt: number) => {
      const req = http.request(
        { host: u.hostname, port: u.port, method: spec.method, path: spec.path(n), headers, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            const a: Answer = {
              n,
              status,
              body: Buffer.concat(chunks).toString(),
              headers: res.headers,
              intendedAt,
            };
            const handled = opts.onAnswer?.(a) === false;
            if (status >= 200 && status < 300) {
              ok++;
              if (!handled)
                hist.recordValue(Math.max(1, Math.round((performance.now() - intendedAt) * 1000)));
            } else failed++;
            done();
          });
        },
      );
      req.on('error', () => {
        failed++;
        done();
      });
      req.end(spec.body);
    };
    const done = () => {
      answered++;
      if (answered === total) resolve();
    };
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * opts.ratePerSec) + 1);
      while (sent < due) {
        fire(sent, start + (sent * 1000) / opts.ratePerSec);
        sent++;
      }
      if (sent >= total) clearInterval(tick);
    }, 1);
  });
  agent.destroy();
  return { offeredPerSec: opts.ratePerSec, sent, ok, failed, ...summarizeHistogram(hist) };
}
