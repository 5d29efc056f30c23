// Lagoon live consumer-lag dashboard (SPEC §5). Plain browser JS, no build step. On load it fetches
// the node's last 15 minutes (GET /v1/lag/history: 1 s samples kept by the node), so a page opened
// after a fault still shows it, then polls GET /v1/lag (same origin) every 0.5 s, keeping 15 minutes
// client-side, and renders it with uPlot (loaded before this script as the global `uPlot`). Fault
// windows (a fault event to its heal event) are shaded on the charts. When /v1/lag fails it keeps
// the last data, shows a "stale since …" banner and keeps polling; an older node without the
// history endpoint just starts with empty charts.
/* global uPlot */
(() => {
  const POLL_MS = 500;
  const FETCH_TIMEOUT_MS = 2500;
  const HISTORY_S = 900;
  const HISTORY_TIMEOUT_MS = 5000;
  /** A hole wider than this between history samples (tracker stalled) is drawn as a gap. */
  const HISTORY_GAP_S = 3;
  const MIN_WINDOW_S = 60;
  const TREND_WINDOW_S = 15;
  const RATE_WINDOW_S = 5;
  const MAX_EVENTS = 200;
  const CHART_HEIGHT = 180;
  // Severity order, as LAG_STATUS_ORDER on the server: GAP (records never applied were deleted by
  // retention) is the worst.
  const STATUS_RANK = { OK: 0, WARN: 1, STALL: 2, STOP: 3, REWIND: 4, GAP: 5 };
  const PALETTE = ['#2563eb', '#d97706', '#059669', '#db2777', '#7c3aed', '#0891b2', '#65a30d', '#dc2626'];
  const EVENT_COLORS = {
    broker_kill: '#cf2b2b',
    broker_stop: '#cf2b2b',
    broker_pause: '#e0661b',
    node_kill: '#cf2b2b',
    broker_start: '#2e9e5b',
    broker_resume: '#2e9e5b',
    node_pause: '#e0661b',
    node_stop: '#cf2b2b',
    node_resume: '#2e9e5b',
    node_start: '#2e9e5b',
  };
  // Same rule as faultWindows() in src/lag/history.ts: kinds are `<subject>_<verb>`; a fault verb opens
  // a window for its subject and target, the next heal verb of the same subject and target closes it.
  const FAULT_VERBS = new Set([
    'kill',
    'stop',
    'pause',
    'crash',
    'fail',
    'down',
    'partition',
    'blackhole',
    'slow',
  ]);
  const HEAL_VERBS = new Set(['start', 'resume', 'restart', 'heal', 'up', 'recover']);

  const $ = (id) => document.getElementById(id);

  // ---------- API token (a node started with LAGOON_API_TOKENS) ----------
  // Given in the URL fragment (/dashboard#token=…: a browser never sends a fragment to a server, so no access
  // log has it), removed from the address bar at once, kept in sessionStorage (this tab only) and sent as
  // Authorization: Bearer on every fetch. Without one, the first 401 asks for it (once per page load).
  const TOKEN_KEY = 'lagoon.apiToken';
  const auth = { token: '', asked: false };

  function loadToken() {
    try {
      const params = new URLSearchParams(location.hash.slice(1));
      const t = params.get('token');
      if (t) {
        sessionStorage.setItem(TOKEN_KEY, t);
        params.delete('token');
        const rest = params.toString();
        history.replaceState(null, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
      }
      auth.token = sessionStorage.getItem(TOKEN_KEY) || '';
    } catch (err) {
      console.warn('dashboard: no sessionStorage for the API token', err);
    }
  }

  /** After a 401: forget the refused token and ask for another, once per page load; true if one was given. */
  function askToken() {
    auth.token = '';
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // nothing stored
    }
    if (auth.asked) return false;
    auth.asked = true;
    const t = (window.prompt('This Lagoon node needs an API token with the read scope:', '') || '').trim();
    if (!t) return false;
    auth.token = t;
    try {
      sessionStorage.setItem(TOKEN_KEY, t);
    } catch {
      // kept in memory for this page only
    }
    return true;
  }

  /** GET `url` from this node with the token if there is one; 401/403 become errors that say what to do. */
  async function apiFetch(url, timeoutMs) {
    for (let attempt = 0; ; attempt++) {
      const res = await fetch(url, {
        cache: 'no-store',
        headers: {
          accept: 'application/json',
          ...(auth.token ? { authorization: `Bearer ${auth.token}` } : {}),
        },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (res.status === 401 && attempt === 0 && askToken()) continue;
      if (res.status === 401)
        throw new Error(
          'HTTP 401: this node needs an API token with the read scope (open /dashboard#token=TOKEN)',
        );
      if (res.status === 403) throw new Error('HTTP 403: the API token lacks the read scope');
      return res;
    }
  }

  const state = {
    /** Last good report. */
    report: null,
    /** Client time (ms) of the last good report, and server − client clock offset. */
    lastOkAt: 0,
    skewMs: 0,
    failingSince: 0,
    lastError: '',
    /** History samples, oldest first: { t (s, server clock), ok, writes, replicas: { node: {...} } }. */
    samples: [],
    /** Every replica ever seen, in display order (self first). */
    nodes: [],
    selfNode: '',
    /** Every broker id ever seen: a broker that drops out of the metadata is shown as down. */
    brokerIds: new Set(),
    events: new Map(),
    /** Closed fault windows { from, to (ms), kind, healKind, target }, from the events. */
    windows: [],
    /** What GET /v1/lag/history gave: { state: loading|ok|missing|error, samples, from, to }. */
    history: { state: 'loading', samples: 0, from: 0, to: 0, peaks: {} },
    charts: [],
    chartsKey: '',
  };

  // ---------- formatting ----------

  const fmtInt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
  function fmtSecs(s) {
    if (!Number.isFinite(s)) return '–';
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 120) return `${Math.round(s)} s`;
    if (s < 7200) return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
    return `${(s / 3600).toFixed(1)} h`;
  }
  function fmtRate(r) {
    if (!Number.isFinite(r)) return '–';
    const sign = r > 0.05 ? '+' : '';
    return `${sign}${Math.abs(r) >= 100 ? Math.round(r) : r.toFixed(1)}/s`;
  }
  const pad2 = (n) => String(n).padStart(2, '0');
  function fmtClock(ms) {
    const d = new Date(ms);
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // ---------- history & derived metrics ----------

  const sum = (xs) => xs.reduce((a, b) => a + b, 0);

  function replicaSample(r) {
    const parts = r.partitions || [];
    return {
      lag: sum(parts.map((p) => p.lagRecords || 0)),
      lagSec: r.maxLagSeconds || 0,
      applied: sum(parts.map((p) => p.appliedOffset || 0)),
      end: sum(parts.map((p) => p.endOffset || 0)),
      active: r.active,
      source: r.source,
    };
  }

  /** The oldest good sample of `node` at least `windowS` before `now`, or the oldest within it. */
  function baseline(node, now, windowS) {
    let base = null;
    for (let i = state.samples.length - 1; i >= 0; i--) {
      const s = state.samples[i];
      if (!s.ok || !s.replicas[node]) continue;
      base = s;
      if (now - s.t >= windowS) break;
    }
    return base;
  }

  /** Least-squares slope of a replica's lag (records/s) over the trend window; > 0 = falling behind. */
  function trendOf(node, now, lagNow) {
    const xs = [now];
    const ys = [lagNow];
    for (let i = state.samples.length - 1; i >= 0; i--) {
      const s = state.samples[i];
      if (now - s.t > TREND_WINDOW_S) break;
      if (!s.ok || !s.replicas[node]) continue;
      xs.push(s.t);
      ys.push(s.replicas[node].lag);
    }
    if (xs.length < 3 || now - Math.min(...xs) < 2) return null;
    const mx = sum(xs) / xs.length;
    const my = sum(ys) / ys.length;
    let num = 0;
    let den = 0;
    for (let i = 0; i < xs.length; i++) {
      num += (xs[i] - mx) * (ys[i] - my);
      den += (xs[i] - mx) ** 2;
    }
    return den > 0 ? num / den : null;
  }

  function addSample(report) {
    const curs = {};
    for (const r of report.replicas) curs[r.node] = replicaSample(r);
    finishSample(
      report.generatedAt / 1000,
      report.rates?.writesPerSec ?? null,
      report.rates?.appliedPerSec,
      curs,
    );
  }

  /**
   * Derives rates and trend for one sample's replicas ({ lag, lagSec, applied, end, active, source })
   * against the samples before it, and appends it. Live reports and history samples both go through here.
   */
  function finishSample(t, writes, selfApplyRate, curs) {
    const replicas = {};
    for (const [node, cur] of Object.entries(curs)) {
      const r = { node, source: cur.source };
      const base = baseline(r.node, t, RATE_WINDOW_S);
      const dt = base ? t - base.t : 0;
      if (base && dt > 0.5) {
        const b = base.replicas[r.node];
        cur.applyRate = Math.max(0, (cur.applied - b.applied) / dt);
        cur.writeRate = Math.max(0, (cur.end - b.end) / dt);
      } else {
        cur.applyRate = null;
        cur.writeRate = null;
      }
      // This node measures its own apply rate itself; prefer it.
      if (r.source === 'self' && Number.isFinite(selfApplyRate)) cur.applyRate = selfApplyRate;
      // Caught up means not falling behind, whatever the window's history says.
      cur.trend = cur.lag === 0 ? 0 : trendOf(r.node, t, cur.lag);
      replicas[r.node] = cur;
    }
    pushSample({ t, ok: true, writes, replicas });
  }

  function pushSample(s) {
    const last = state.samples[state.samples.length - 1];
    if (last && s.t <= last.t) return; // the same report twice, or a clock step back
    state.samples.push(s);
    const cutoff = s.t - HISTORY_S - 5;
    while (state.samples.length && state.samples[0].t < cutoff) state.samples.shift();
  }

  /** Estimated time to catch up: lag / (apply rate − write rate), when that is positive. */
  function etaOf(cur) {
    if (!cur) return { text: '–', state: 'unknown' };
    if (cur.lag === 0) return { text: 'caught up', state: 'caught-up' };
    if (cur.applyRate === null || cur.applyRate === undefined)
      return { text: 'measuring…', state: 'unknown' };
    const writeRate = cur.writeRate ?? state.report?.rates?.writesPerSec ?? 0;
    const net = cur.applyRate - writeRate;
    if (net <= 0) return { text: 'not catching up', state: 'not-catching-up' };
    return { text: `~${fmtSecs(cur.lag / net)}`, state: 'catching-up' };
  }

  // ---------- header ----------

  function renderHeader(report) {
    setText($('node-id'), report.node);
    setText($('topic'), report.topic);

    const kr = $('kafka-reachable');
    const reach = report.kafkaReachable ? 'up' : 'down';
    kr.dataset.state = reach;
    kr.className = `pill ${reach}`;
    setText(kr, report.kafkaReachable ? 'Kafka reachable' : 'Kafka unreachable');

    const up = new Map();
    for (const b of report.brokers || []) {
      state.brokerIds.add(b.id);
      up.set(b.id, !!b.up);
    }
    const box = $('brokers');
    const ids = [...state.brokerIds].sort((a, b) => a - b);
    if (box.childElementCount !== ids.length) {
      box.replaceChildren(...ids.map((id) => el('span', { 'data-testid': `broker-${id}`, class: 'pill' })));
    }
    ids.forEach((id, i) => {
      const b = box.children[i];
      const isUp = up.get(id) === true;
      b.className = `pill ${isUp ? 'up' : 'down'}`;
      b.dataset.up = String(isUp);
      b.title = isUp
        ? `broker ${id}: registered and unfenced`
        : up.has(id)
          ? `broker ${id}: fenced or not registered`
          : `broker ${id}: gone from the cluster metadata`;
      setText(b, `${id} ${isUp ? 'up' : 'down'}`);
    });
    if (!ids.length) box.replaceChildren(el('span', { class: 'pill unknown', text: 'none known' }));

    const c = $('controller');
    c.dataset.controller = report.controller === null ? '' : String(report.controller);
    setText(c, report.controller === null ? 'unknown' : `broker ${report.controller}`);

    // Buffered writes waiting on this node for Kafka, and how long the oldest has waited.
    const depth = report.outboxDepth;
    const oldest = report.outboxOldestSeconds;
    const ob = $('outbox-depth');
    ob.dataset.records = String(Number.isFinite(depth) ? depth : '');
    ob.className = `value${depth > 0 ? ' outbox-waiting' : ''}`;
    setText(
      ob,
      depth > 0 && Number.isFinite(oldest) ? `${fmtInt(depth)} (oldest ${fmtSecs(oldest)})` : fmtInt(depth),
    );

    const agree = report.digests ? report.digests.agree : null;
    const dstate = agree === true ? 'agree' : agree === false ? 'disagree' : 'unknown';
    const d = $('digest-agreement');
    d.dataset.state = dstate;
    d.className = `pill ${dstate}`;
    setText(d, dstate);
    renderDigests(report.digests);
  }

  function renderDigests(digests) {
    const body = $('digest-body');
    const rows = digests?.nodes || [];
    if (!rows.length) {
      body.replaceChildren(
        el('tr', {}, el('td', { colspan: 3, class: 'empty', text: 'no peers reachable' })),
      );
      return;
    }
    const counts = new Map();
    for (const n of rows) if (n.digest) counts.set(n.digest, (counts.get(n.digest) || 0) + 1);
    const majority = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    body.replaceChildren(
      ...rows.map((n) =>
        el(
          'tr',
          {
            'data-testid': `digest-${n.node}`,
            // Digests are comparable only at equal applied offsets: flag a row only when the node says they disagree.
            class: digests.agree === false && n.digest && majority && n.digest !== majority ? 'mismatch' : '',
          },
          el('td', { text: n.node }),
          el('td', {
            class: 'mono',
            title: n.digest || '',
            text: n.digest ? n.digest.slice(0, 16) : 'unknown',
          }),
          el('td', { class: 'mono', text: (n.appliedOffsets || []).join(' · ') }),
        ),
      ),
    );
  }

  // ---------- replicas × partitions table ----------

  function orderNodes(report) {
    for (const r of report.replicas) {
      if (r.source === 'self') state.selfNode = r.node;
      if (!state.nodes.includes(r.node)) state.nodes.push(r.node);
    }
    state.nodes.sort((a, b) => (a === state.selfNode ? -1 : b === state.selfNode ? 1 : a.localeCompare(b)));
  }

  let tableKey = '';

  function renderTable(report) {
    const replicas = state.nodes.map((n) => report.replicas.find((r) => r.node === n)).filter(Boolean);
    const partitions = [...new Set(replicas.flatMap((r) => r.partitions.map((p) => p.partition)))].sort(
      (a, b) => a - b,
    );
    const key = `${replicas.map((r) => r.node).join(',')}|${partitions.join(',')}`;
    if (key !== tableKey) {
      tableKey = key;
      $('lag-head').replaceChildren(
        el(
          'tr',
          {},
          el('th', { class: 'replica', text: 'replica' }),
          ...partitions.map((p) => el('th', { text: `p${p}` })),
        ),
      );
      $('lag-body').replaceChildren(
        ...replicas.map((r) => {
          const head = el(
            'th',
            { class: 'replica', scope: 'row' },
            el(
              'div',
              { class: 'rline' },
              el('span', { class: 'rname', text: r.node }),
              el('span', { class: 'badge src', 'data-testid': `source-${r.node}` }),
              el('span', { class: 'badge', 'data-testid': `active-${r.node}` }),
              el('span', { class: 'badge status', 'data-testid': `status-${r.node}` }),
            ),
            el(
              'div',
              { class: 'rstats' },
              'max ',
              el('b', { 'data-testid': `maxlag-${r.node}` }),
              ' · ',
              el('b', { 'data-testid': `maxlagsec-${r.node}` }),
              ' · trend ',
              el('b', { 'data-testid': `trend-${r.node}` }),
              ' · catch-up ',
              el('b', { 'data-testid': `eta-${r.node}` }),
            ),
          );
          return el(
            'tr',
            { 'data-testid': `replica-${r.node}`, 'data-node': r.node },
            head,
            ...partitions.map((p) =>
              el(
                'td',
                { class: 'cell', 'data-testid': `cell-${r.node}-${p}` },
                el('div', { class: 'rec' }),
                el('div', { class: 'sec' }),
              ),
            ),
          );
        }),
      );
      if (!replicas.length) {
        $('lag-body').replaceChildren(
          el('tr', {}, el('td', { class: 'empty', text: 'no replicas reported' })),
        );
      }
    }

    const last = state.samples[state.samples.length - 1];
    for (const r of replicas) {
      const row = document.querySelector(`[data-testid="replica-${CSS.escape(r.node)}"]`);
      if (!row) continue;
      const q = (id) => row.querySelector(`[data-testid="${CSS.escape(`${id}-${r.node}`)}"]`);
      row.className = r.active ? 'active' : 'inactive';
      row.dataset.active = String(!!r.active);
      row.dataset.status = r.status;
      row.dataset.source = r.source;

      setText(q('source'), r.source === 'self' ? 'self · SQLite' : 'kafka · committed');
      q('source').title =
        r.source === 'self'
          ? 'this node’s own replica, from its SQLite'
          : 'another replica, from its consumer group’s committed offsets';
      const act = q('active');
      act.className = `badge ${r.active ? 'active' : 'inactive'}`;
      act.title = r.active
        ? 'the consumer group has live members'
        : 'no live members: the replica is stopped, paused, dead or unreachable';
      setText(act, r.active ? 'active' : 'inactive');
      const st = q('status');
      st.className = `badge status ${r.status}`;
      st.dataset.status = r.status;
      setText(st, r.status);
      const worst = r.partitions.reduce(
        (w, p) => (STATUS_RANK[p.status] > STATUS_RANK[w.status] ? p : w),
        r.partitions[0] || { status: 'OK', reason: '' },
      );
      st.title = worst.reason ? `worst: p${worst.partition} ${worst.status} — ${worst.reason}` : r.status;

      const cur = last?.ok ? last.replicas[r.node] : null;
      const mx = q('maxlag');
      mx.dataset.value = String(r.maxLagRecords);
      setText(mx, `${fmtInt(r.maxLagRecords)} rec`);
      setText(q('maxlagsec'), fmtSecs(r.maxLagSeconds));
      const tr = q('trend');
      const trend = cur?.trend;
      tr.dataset.value = trend === null || trend === undefined ? '' : trend.toFixed(3);
      setText(tr, trend === null || trend === undefined ? 'measuring…' : fmtRate(trend));
      const eta = etaOf(cur);
      const e = q('eta');
      e.dataset.state = eta.state;
      setText(e, eta.text);

      for (const p of r.partitions) {
        const cell = row.querySelector(`[data-testid="${CSS.escape(`cell-${r.node}-${p.partition}`)}"]`);
        if (!cell) continue;
        cell.className = `cell ${p.status}`;
        cell.dataset.status = p.status;
        cell.dataset.lagRecords = String(p.lagRecords);
        cell.dataset.lagSeconds = String(p.lagSeconds);
        cell.title =
          `${r.node} · partition ${p.partition}: ${p.status}${p.reason ? ` — ${p.reason}` : ''}\n` +
          `end offset ${p.endOffset} · applied ${p.appliedOffset}` +
          (p.logStartOffset > 0 ? ` · log start ${p.logStartOffset}` : '') +
          ` · ${p.lagRecords} records, ${p.lagSeconds.toFixed(1)} s behind`;
        setText(cell.children[0], fmtInt(p.lagRecords));
        setText(cell.children[1], fmtSecs(p.lagSeconds));
      }
    }
  }

  // ---------- events ----------

  const eventKey = (e) => `${e.at}|${e.kind}|${e.target ?? ''}|${e.message ?? ''}|${e.source ?? ''}`;
  const eventLabel = (e) => `${e.kind}${e.target ? ` ${e.target}` : ''}`;

  /** Events sorted oldest first (for the charts). */
  let sortedEvents = [];

  function mergeEvents(events) {
    let changed = false;
    for (const e of events || []) {
      const k = eventKey(e);
      if (!state.events.has(k)) {
        state.events.set(k, e);
        changed = true;
      }
    }
    if (!changed) return false;
    sortedEvents = [...state.events.values()].sort((a, b) => a.at - b.at);
    while (sortedEvents.length > MAX_EVENTS) state.events.delete(eventKey(sortedEvents.shift()));
    state.windows = faultWindows(sortedEvents);
    return true;
  }

  /** Closed fault windows from events sorted oldest first; an unhealed fault stays a marker only. */
  function faultWindows(events) {
    const open = new Map();
    const out = [];
    for (const e of events) {
      const i = e.kind.lastIndexOf('_');
      if (i <= 0) continue;
      const subject = e.kind.slice(0, i);
      const verb = e.kind.slice(i + 1);
      const key = `${subject}|${e.target ?? ''}`;
      if (FAULT_VERBS.has(verb)) {
        if (!open.has(key)) open.set(key, e);
      } else if (HEAL_VERBS.has(verb) && open.has(key)) {
        const f = open.get(key);
        open.delete(key);
        out.push({ from: f.at, to: e.at, kind: f.kind, healKind: e.kind, target: f.target ?? '' });
      }
    }
    return out;
  }

  function renderEvents() {
    const list = $('events');
    if (!sortedEvents.length) {
      list.replaceChildren(el('li', { class: 'empty', text: 'no events yet' }));
      return;
    }
    list.replaceChildren(
      ...sortedEvents
        .slice()
        .reverse()
        .map((e) =>
          el(
            'li',
            { 'data-testid': 'event', 'data-kind': e.kind, 'data-target': e.target ?? '', 'data-at': e.at },
            el('span', { class: 'ev-time', text: fmtClock(e.at) }),
            el('span', { class: 'ev-kind', text: e.kind }),
            e.target ? el('span', { class: 'ev-target', text: e.target }) : null,
            e.message ? el('span', { class: 'ev-msg', text: e.message }) : null,
            e.source ? el('span', { class: 'ev-src', text: e.source }) : null,
          ),
        ),
    );
  }

  /** uPlot plugin: a dashed vertical line and a label at each event's time. */
  function eventMarkers(container) {
    return {
      hooks: {
        draw: [
          (u) => {
            const { min, max } = u.scales.x;
            const ctx = u.ctx;
            const { left, top, width, height } = u.bbox;
            const px = uPlot.pxRatio || 1;
            let drawn = 0;
            ctx.save();
            ctx.beginPath();
            ctx.rect(left, top, width, height);
            ctx.clip();
            ctx.font = `${Math.round(10 * px)}px system-ui, sans-serif`;
            ctx.textBaseline = 'top';
            for (const e of sortedEvents) {
              const t = e.at / 1000;
              if (min === undefined || max === undefined || t < min || t > max) continue;
              const x = Math.round(u.valToPos(t, 'x', true)) + 0.5;
              const color = EVENT_COLORS[e.kind] || '#475569';
              ctx.strokeStyle = color;
              ctx.lineWidth = 1.5 * px;
              ctx.setLineDash([5 * px, 3 * px]);
              ctx.beginPath();
              ctx.moveTo(x, top);
              ctx.lineTo(x, top + height);
              ctx.stroke();
              ctx.setLineDash([]);
              const label = eventLabel(e);
              const y = top + (2 + (drawn % 3) * 12) * px;
              const w = ctx.measureText(label).width;
              const lx = x + 3 * px + w > left + width ? x - 3 * px - w : x + 3 * px;
              ctx.lineJoin = 'round';
              ctx.lineWidth = 3 * px;
              ctx.strokeStyle = 'rgba(255,255,255,0.9)';
              ctx.strokeText(label, lx, y);
              ctx.fillStyle = color;
              ctx.fillText(label, lx, y);
              drawn++;
            }
            ctx.restore();
            container.dataset.markers = String(drawn);
          },
        ],
      },
    };
  }

  /** uPlot plugin: shades each closed fault window under the series (drawClear runs before them). */
  function faultShading(container) {
    return {
      hooks: {
        drawClear: [
          (u) => {
            const { min, max } = u.scales.x;
            const { left, top, width, height } = u.bbox;
            const px = uPlot.pxRatio || 1;
            const ctx = u.ctx;
            let drawn = 0;
            ctx.save();
            ctx.beginPath();
            ctx.rect(left, top, width, height);
            ctx.clip();
            // No label here: the fault and heal markers (eventMarkers) already name both ends.
            for (const w of state.windows) {
              const from = w.from / 1000;
              const to = w.to / 1000;
              if (min === undefined || max === undefined || to < min || from > max) continue;
              const x0 = u.valToPos(Math.max(from, min), 'x', true);
              const x1 = u.valToPos(Math.min(to, max), 'x', true);
              const color = EVENT_COLORS[w.kind] || '#475569';
              ctx.globalAlpha = 0.12;
              ctx.fillStyle = color;
              // At least 2 px, so a sub-second fault is still visible at a 15-minute scale.
              ctx.fillRect(x0, top, Math.max(2 * px, x1 - x0), height);
              ctx.globalAlpha = 1;
              drawn++;
            }
            ctx.restore();
            container.dataset.windows = String(drawn);
          },
        ],
      },
    };
  }

  // ---------- charts ----------

  function xRange(_u, _min, max) {
    const last = state.samples[state.samples.length - 1];
    const first = state.samples[0];
    const hi = last ? last.t : max;
    const span = first && last ? Math.min(HISTORY_S, Math.max(MIN_WINDOW_S, last.t - first.t)) : MIN_WINDOW_S;
    return [hi - span, hi];
  }

  const color = (i) => PALETTE[i % PALETTE.length];
  const nodeLabel = (n) => (n === state.selfNode ? `${n} (self)` : n);

  function chartSpecs() {
    const nodes = state.nodes;
    const perNode = (pick, fmt) =>
      nodes.map((n, i) => ({
        label: nodeLabel(n),
        stroke: color(i),
        width: 2,
        value: (_u, v) => (v === null || v === undefined ? '–' : fmt(v)),
        pick: (s) => (s.ok && s.replicas[n] ? pick(s.replicas[n]) : null),
      }));
    return [
      {
        id: 'chart-lag',
        yLabel: 'records',
        series: perNode((r) => r.lag, fmtInt),
      },
      {
        id: 'chart-lag-seconds',
        yLabel: 'seconds',
        series: perNode((r) => r.lagSec, fmtSecs),
      },
      {
        id: 'chart-rates',
        yLabel: 'records/s',
        series: [
          {
            label: 'writes/s (topic)',
            stroke: '#111827',
            width: 2.5,
            dash: [6, 4],
            value: (_u, v) => (v === null || v === undefined ? '–' : v.toFixed(1)),
            pick: (s) => (s.ok ? s.writes : null),
          },
          ...perNode(
            (r) => r.applyRate,
            (v) => v.toFixed(1),
          ).map((s) => ({ ...s, label: `${s.label} applied/s` })),
        ],
      },
      {
        id: 'chart-trend',
        yLabel: 'records/s',
        series: perNode((r) => r.trend, fmtRate),
      },
    ];
  }

  function buildCharts() {
    for (const c of state.charts) c.u.destroy();
    state.charts = chartSpecs().map((spec) => {
      const container = $(spec.id);
      container.replaceChildren();
      const opts = {
        width: Math.max(300, container.clientWidth),
        height: CHART_HEIGHT,
        pxAlign: 0,
        cursor: { drag: { x: false, y: false } },
        legend: { live: true },
        scales: { x: { time: true, range: xRange } },
        axes: [
          { stroke: '#5d6b7e', grid: { stroke: '#eef1f5' }, ticks: { stroke: '#dde3ea' } },
          {
            stroke: '#5d6b7e',
            grid: { stroke: '#eef1f5' },
            ticks: { stroke: '#dde3ea' },
            label: spec.yLabel,
            labelSize: 16,
            size: 56,
          },
        ],
        series: [
          {},
          ...spec.series.map(({ pick: _pick, ...s }) => ({ spanGaps: false, points: { show: false }, ...s })),
        ],
        plugins: [faultShading(container), eventMarkers(container)],
      };
      const u = new uPlot(opts, chartData(spec), container);
      return { spec, u, container };
    });
    state.chartsKey = state.nodes.join(',');
  }

  function chartData(spec) {
    const xs = state.samples.map((s) => s.t);
    return [xs, ...spec.series.map((s) => state.samples.map((smp) => s.pick(smp) ?? null))];
  }

  function renderCharts() {
    if (state.chartsKey !== state.nodes.join(',') || !state.charts.length) buildCharts();
    else for (const c of state.charts) c.u.setData(chartData(c.spec), true);
    // What each chart holds, for tests and curious users: sample count and first/last sample times (ms).
    const first = state.samples[0];
    const last = state.samples[state.samples.length - 1];
    for (const c of state.charts) {
      c.container.dataset.samples = String(state.samples.length);
      c.container.dataset.firstT = first ? String(Math.round(first.t * 1000)) : '';
      c.container.dataset.lastT = last ? String(Math.round(last.t * 1000)) : '';
    }
  }

  function redrawMarkers() {
    for (const c of state.charts) c.u.redraw(false, false);
  }

  if (typeof ResizeObserver === 'function') {
    const ro = new ResizeObserver(() => {
      for (const c of state.charts) {
        const w = Math.max(300, c.container.clientWidth);
        if (Math.abs(w - c.u.width) > 2) c.u.setSize({ width: w, height: CHART_HEIGHT });
      }
    });
    for (const id of ['chart-lag', 'chart-lag-seconds', 'chart-rates', 'chart-trend']) ro.observe($(id));
  }

  // ---------- banners ----------

  function renderBanners() {
    const stale = $('stale-banner');
    if (state.failingSince) {
      const since = state.lastOkAt
        ? `stale since ${fmtClock(state.lastOkAt)} (${Math.round((Date.now() - state.lastOkAt) / 1000)} s ago), showing the last data`
        : `no data yet (failing since ${fmtClock(state.failingSince)})`;
      setText(stale, `Node unreachable — GET /v1/lag failed: ${state.lastError}. ${since}. Still polling…`);
      stale.hidden = false;
      document.body.classList.add('stale');
    } else {
      stale.hidden = true;
      document.body.classList.remove('stale');
    }
    const kb = $('kafka-banner');
    const r = state.report;
    if (r && !r.kafkaReachable && !state.failingSince) {
      setText(
        kb,
        `Kafka is unreachable from ${r.node}: end offsets, committed offsets and broker states may be out of date.`,
      );
      kb.hidden = false;
    } else {
      kb.hidden = true;
    }
    const upd = $('updated');
    if (state.lastOkAt) {
      setText(upd, `${fmtClock(state.lastOkAt)}${state.failingSince ? ' (stale)' : ''}`);
      upd.dataset.at = String(state.lastOkAt);
    }
  }

  // ---------- history from the node ----------

  /**
   * GET /v1/lag/history: the node's own 1 s samples of the last 15 minutes, as columns. Loaded once,
   * before the first poll, so the charts start with what happened before the page was opened.
   * A node without the endpoint (older version) answers 404: the page then starts empty, as before.
   */
  async function loadHistory() {
    const h = state.history;
    try {
      const res = await apiFetch('/v1/lag/history', HISTORY_TIMEOUT_MS);
      if (res.status === 404) {
        h.state = 'missing';
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = await res.json();
      if (!body || !Array.isArray(body.t) || !body.replicas || typeof body.replicas !== 'object')
        throw new Error('malformed history');
      applyHistory(body);
      h.state = 'ok';
    } catch (err) {
      // Half-applied history is worse than none: start clean and let the live polls fill in.
      state.samples = [];
      h.state = 'error';
      h.error = err?.name === 'TimeoutError' ? 'timed out' : String(err?.message || err);
      console.warn('dashboard: no history', err);
    } finally {
      renderHistory();
    }
  }

  function applyHistory(h) {
    const self = typeof h.node === 'string' ? h.node : '';
    if (self) state.selfNode = self;
    const names = Object.keys(h.replicas);
    for (const n of names) if (!state.nodes.includes(n)) state.nodes.push(n);
    state.nodes.sort((a, b) => (a === state.selfNode ? -1 : b === state.selfNode ? 1 : a.localeCompare(b)));
    for (const id of h.brokers || []) state.brokerIds.add(id);
    const peaks = {};
    let prev = null;
    for (let k = 0; k < h.t.length; k++) {
      const t = h.t[k] / 1000;
      // The node's tracker stalled (or its clock stepped): draw a gap, not a straight line across.
      if (prev !== null && t - prev > HISTORY_GAP_S)
        pushSample({ t: prev + 1, ok: false, writes: null, replicas: {} });
      const curs = {};
      for (const n of names) {
        const c = h.replicas[n];
        const lag = c.lagRecords?.[k];
        if (lag === null || lag === undefined) continue;
        const applied = c.applied?.[k] ?? 0;
        const lagSec = c.lagSeconds?.[k] ?? 0;
        curs[n] = {
          lag,
          lagSec,
          applied,
          end: applied + lag,
          active: c.active?.[k] ?? null,
          source: n === self ? 'self' : 'kafka',
        };
        peaks[n] ??= { lag: 0, at: 0, seconds: 0 };
        const p = peaks[n];
        if (lag > p.lag) {
          p.lag = lag;
          p.at = h.t[k];
        }
        p.seconds = Math.max(p.seconds, lagSec);
      }
      finishSample(t, h.writeRate?.[k] ?? null, h.applyRate?.[k], curs);
      prev = t;
    }
    const hist = state.history;
    hist.samples = h.t.length;
    hist.from = h.t[0] ?? 0;
    hist.to = h.t[h.t.length - 1] ?? 0;
    hist.peaks = peaks;
    mergeEvents(h.events);
    hist.windows = state.windows.filter((w) => w.to >= hist.from);
    renderEvents();
    if (state.samples.length) renderCharts();
  }

  function renderHistory() {
    const h = state.history;
    const e = $('history');
    if (!e) return;
    e.dataset.state = h.state;
    e.dataset.samples = String(h.samples);
    e.dataset.from = h.from ? String(h.from) : '';
    e.dataset.to = h.to ? String(h.to) : '';
    e.dataset.peaks = JSON.stringify(h.peaks);
    e.dataset.windows = JSON.stringify(h.windows || []);
    if (h.state === 'ok')
      e.title = `${h.samples} samples kept by the node, ${h.from ? fmtClock(h.from) : '–'} to ${h.to ? fmtClock(h.to) : '–'}`;
    setText(
      e,
      h.state === 'ok'
        ? h.samples
          ? `from ${fmtClock(h.from)}`
          : 'none yet'
        : h.state === 'missing'
          ? 'not kept by this node'
          : `unavailable (${h.error})`,
    );
  }

  // ---------- polling ----------

  function onReport(report) {
    const now = Date.now();
    state.report = report;
    state.lastOkAt = now;
    state.skewMs = report.generatedAt - now;
    state.failingSince = 0;
    state.lastError = '';
    orderNodes(report);
    addSample(report);
    const eventsChanged = mergeEvents(report.events);
    renderHeader(report);
    renderTable(report);
    if (eventsChanged) renderEvents();
    renderCharts();
    renderBanners();
  }

  function onFailure(err) {
    const now = Date.now();
    if (!state.failingSince) state.failingSince = now;
    state.lastError =
      err?.name === 'TimeoutError' ? `timed out after ${FETCH_TIMEOUT_MS} ms` : String(err?.message || err);
    // A gap in the history, so the charts show the outage and keep moving.
    if (state.report) pushSample({ t: (now + state.skewMs) / 1000, ok: false, writes: null, replicas: {} });
    if (state.charts.length) renderCharts();
    renderBanners();
  }

  async function poll() {
    const started = Date.now();
    let report = null;
    try {
      const res = await apiFetch('/v1/lag', FETCH_TIMEOUT_MS);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      report = await res.json();
      if (!report || !Array.isArray(report.replicas)) throw new Error('malformed report');
    } catch (err) {
      onFailure(err);
    }
    if (report) {
      try {
        onReport(report);
      } catch (err) {
        console.error('dashboard render failed', err);
      }
    }
    setTimeout(poll, Math.max(0, POLL_MS - (Date.now() - started)));
  }

  window.lagoonDashboard = { state, redrawMarkers };
  loadToken();
  // History first (bounded by its timeout), then live: live samples continue where history ends.
  loadHistory().finally(poll);
})();
