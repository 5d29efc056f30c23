import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LagoonClient } from '../../src/client/index.js';
import { LAGOON_BIN } from '../../src/node/spawn.js';
import { eventually } from '../support/kafka.js';
import { http, kvUrl, type NodeProc, startNodes } from '../support/nodes.js';

/**
 * API authentication (LAGOON_API_TOKENS) on two real nodes against the run's Kafka cluster: 401/403 as
 * problem+json, the probes open, /metrics and /v1/lag behind `read`, a refused write changes nothing, the typed
 * client's `token` option works, the nodes still read each other's digests, and no token reaches a log.
 */

const secret = () => randomBytes(18).toString('base64url');
const RW = secret();
const RO = secret();
const ADMIN = secret();
const TOKENS = `app:${RW}:read+write,dash:${RO}:read,ops:${ADMIN}:admin`;
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

let nodes: NodeProc[];
let stopAll: () => Promise<void>;

beforeAll(async () => {
  ({ nodes, stopAll } = await startNodes(2, {
    // No heartbeat records: nothing but this test's writes moves the replicas' offsets and digests.
    // Debug logging: every request is logged, so the check that no token is logged means something.
    env: { LAGOON_API_TOKENS: TOKENS, LAGOON_HEARTBEAT_MS: '0', LOG_LEVEL: 'debug' },
  }));
});
afterAll(async () => {
  await stopAll?.();
});

describe('API tokens on real nodes', () => {
  it('401 problem+json without a token and with a wrong one; the probes stay open', async () => {
    const [a] = nodes as [NodeProc];
    const none = await http('GET', kvUrl(a, 'k'));
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toContain('application/problem+json');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.body).toMatchObject({ status: 401, code: 'unauthorized', retryable: false, definite: true });
    const wrong = await http('GET', kvUrl(a, 'k'), { headers: bearer(secret()) });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe('unauthorized');
    expect(wrong.headers.get('www-authenticate')).toContain('invalid_token');
    expect((await http('GET', `${a.url}/healthz`)).status).toBe(200);
    expect((await http('GET', `${a.url}/readyz`)).status).toBe(200);
    // The dashboard page itself loads (it takes its token from #token=…); its data does not without one.
    expect((await http('GET', `${a.url}/dashboard`)).status).toBe(200);
  });

  it('a read token cannot write, and a refused write changes nothing', async () => {
    const [a, b] = nodes as [NodeProc, NodeProc];
    const digest = async () => {
      const r = await http('GET', `${a.url}/v1/digest`, { headers: bearer(RO) });
      expect(r.status).toBe(200);
      return r.body.partitions;
    };
    const before = await digest();
    const put = await http('PUT', kvUrl(a, 'refused'), { body: { x: 1 }, headers: bearer(RO) });
    expect(put.status).toBe(403);
    expect(put.headers.get('content-type')).toContain('application/problem+json');
    expect(put.body).toMatchObject({ code: 'forbidden', scope: 'write' });
    expect(put.headers.get('www-authenticate')).toContain('insufficient_scope');
    expect((await http('PUT', kvUrl(a, 'refused'), { body: { x: 2 } })).status).toBe(401);
    expect((await http('PUT', kvUrl(a, 'refused'), { body: { x: 3 }, headers: bearer(ADMIN) })).status).toBe(
      403,
    );
    expect((await http('DELETE', kvUrl(b, 'refused'), { headers: bearer(RO) })).status).toBe(403);
    const batch = await http('POST', `${a.url}/v1/batch`, {
      body: { ops: [{ op: 'put', key: 'refused', value: 4 }] },
      headers: bearer(RO),
    });
    expect(batch.status).toBe(403);
    // A strong read waits until the replica applied everything in the key's partition: nothing is there.
    const read = await http('GET', kvUrl(a, 'refused', 'consistency=strong'), { headers: bearer(RO) });
    expect(read.status).toBe(404);
    expect(await digest()).toEqual(before);
  });

  it('a write token writes; the typed client sends its token as Bearer', async () => {
    const [a, b] = nodes as [NodeProc, NodeProc];
    const put = await http('PUT', kvUrl(a, 'greeting'), { body: { hello: 'auth' }, headers: bearer(RW) });
    expect(put.status).toBe(200);
    const get = await http('GET', kvUrl(b, 'greeting', 'consistency=session'), {
      headers: { ...bearer(RO), 'Lagoon-Session': put.headers.get('lagoon-session')! },
    });
    expect(get.status).toBe(200);
    expect(get.body.value).toEqual({ hello: 'auth' });

    const client = new LagoonClient({ nodes: [a.url, b.url], token: RW });
    await client.put('typed', [1, 2, 3]);
    const r = await client.get('typed', { consistency: 'session' });
    expect(r.found && r.value).toEqual([1, 2, 3]);
    const reader = new LagoonClient({ nodes: a.url, token: RO, maxAttempts: 1 });
    await expect(reader.put('typed', 0)).rejects.toMatchObject({ code: 'forbidden', status: 403 });
    const anonymous = new LagoonClient({ nodes: a.url, maxAttempts: 1 });
    await expect(anonymous.get('typed')).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
  });

  it('/metrics, /v1/lag and /v1/status need read; events need admin to post', async () => {
    const [a] = nodes as [NodeProc];
    for (const p of ['/metrics', '/v1/lag', '/v1/lag/history', '/v1/status', '/v1/digest', '/openapi.json']) {
      expect((await http('GET', `${a.url}${p}`)).status, p).toBe(401);
      expect((await http('GET', `${a.url}${p}`, { headers: bearer(ADMIN) })).status, p).toBe(403);
      expect((await http('GET', `${a.url}${p}`, { headers: bearer(RO) })).status, p).toBe(200);
    }
    const status = await http('GET', `${a.url}/v1/status`, { headers: bearer(RO) });
    for (const t of [RW, RO, ADMIN]) expect(JSON.stringify(status.body)).not.toContain(t);
    const event = { kind: 'deploy_start', message: 'auth test' };
    expect((await http('POST', `${a.url}/v1/events`, { body: event, headers: bearer(RW) })).status).toBe(403);
    expect((await http('POST', `${a.url}/v1/events`, { body: event, headers: bearer(ADMIN) })).status).toBe(
      201,
    );
    // Unknown routes: 401 for strangers, 404 for token holders.
    expect((await http('GET', `${a.url}/v1/nope`)).status).toBe(401);
    expect((await http('GET', `${a.url}/v1/nope`, { headers: bearer(RO) })).status).toBe(404);
  });

  it("the nodes still read each other's digests (with a read token of their own list)", async () => {
    const [a, b] = nodes as [NodeProc, NodeProc];
    await eventually('both digests on node A', async () => {
      const lag = await http('GET', `${a.url}/v1/lag`, { headers: bearer(RO) });
      const seen = (lag.body.digests.nodes as Array<{ node: string; digest: string | null }>).filter(
        (n) => n.digest !== null,
      );
      return seen.some((n) => n.node === b.id) && seen.some((n) => n.node === a.id) ? true : undefined;
    });
  });
});

const CHROMIUM = process.env.LAGOON_CHROMIUM ?? '/usr/bin/chromium';

describe.skipIf(!fs.existsSync(CHROMIUM))('the dashboard with API tokens, in a headless browser', () => {
  /** The node id the page shows once it rendered a /v1/lag report, and the stale banner's text. */
  const shown = (page: import('playwright-core').Page) =>
    page.evaluate(() => {
      const doc = (
        globalThis as unknown as {
          document: { getElementById(id: string): { textContent: string | null; hidden: boolean } | null };
        }
      ).document;
      const banner = doc.getElementById('stale-banner');
      return {
        node: doc.getElementById('node-id')?.textContent ?? '',
        banner: banner && !banner.hidden ? (banner.textContent ?? '') : '',
      };
    });

  it('takes its token from #token=…, or asks for it, and shows the data', async () => {
    const [a] = nodes as [NodeProc];
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    try {
      // From the fragment: the page removes it from the address bar and keeps it for the tab.
      const page = await (await browser.newContext()).newPage();
      await page.goto(`${a.url}/dashboard#token=${RO}`);
      await eventually(
        'the report on the page',
        async () => ((await shown(page)).node === a.id ? true : undefined),
        60_000,
      );
      expect(page.url()).not.toContain(RO);
      expect(
        await page.evaluate(() =>
          (
            globalThis as unknown as { sessionStorage: { getItem(k: string): string | null } }
          ).sessionStorage.getItem('lagoon.apiToken'),
        ),
      ).toBe(RO);
      expect((await shown(page)).banner).toBe('');

      // No token: the first 401 asks for one.
      const asked = await (await browser.newContext()).newPage();
      const prompts: string[] = [];
      asked.on('dialog', (d) => {
        prompts.push(d.type());
        void d.accept(RO);
      });
      await asked.goto(`${a.url}/dashboard`);
      await eventually(
        'the report after the prompt',
        async () => ((await shown(asked)).node === a.id ? true : undefined),
        60_000,
      );
      expect(prompts).toEqual(['prompt']);

      // Asked and refused: the page says what it needs, and asks no more.
      const refused = await (await browser.newContext()).newPage();
      let dialogs = 0;
      refused.on('dialog', (d) => {
        dialogs++;
        void d.dismiss();
      });
      await refused.goto(`${a.url}/dashboard`);
      const banner = await eventually(
        'the 401 banner',
        async () => {
          const v = await shown(refused);
          return v.banner.includes('401') ? v.banner : undefined;
        },
        60_000,
      );
      expect(banner).toContain('#token=');
      await new Promise((r) => setTimeout(r, 1500));
      expect(dialogs).toBe(1);
    } finally {
      await browser.close();
    }
  });
});

describe('a malformed LAGOON_API_TOKENS', () => {
  it('keeps the node from starting, with a config error that shows no token', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-auth-'));
    try {
      const bad = secret();
      const r = spawnSync(
        process.execPath,
        [LAGOON_BIN, 'node', '--id', 'bad', '--port', '0', '--kafka', '127.0.0.1:1', '--db', `${dir}/x.db`],
        {
          env: { ...process.env, LAGOON_API_TOKENS: `app:${RW}:read,dash:${bad}:read+sudo` },
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/Invalid node configuration: apiTokens: LAGOON_API_TOKENS entry 2 of 2/);
      expect(r.stderr + r.stdout).not.toContain(bad);
      expect(r.stderr + r.stdout).not.toContain(RW);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Last, after every request above (the browser's too).
describe('the logs', () => {
  it('no token value appears in the nodes’ logs', async () => {
    for (const n of nodes) {
      const log = fs.readFileSync(n.logFile, 'utf8');
      expect(log.length).toBeGreaterThan(0);
      for (const t of [RW, RO, ADMIN]) expect(log, n.id).not.toContain(t);
    }
  });
});
