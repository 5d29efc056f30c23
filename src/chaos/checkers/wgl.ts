/**
 * Wing & Gong linearizability search with Lowe's memoisation (as in Knossos and Porcupine), specialised to
 * a single register: try to linearize, in time order, any op whose call precedes the earliest pending
 * return; backtrack when a return is reached with its op not yet linearized. A cache of
 * (set of linearized ops, register value) prunes states already explored.
 */

/** One register op: an interval [call, ret] (ret = Infinity when it may take effect any time later). */
export interface RegOp {
  /** The history op id, for messages. */
  id: number;
  kind: 'read' | 'write';
  /** Value written or read; null = absent (initial, or deleted). */
  value: number | null;
  call: number;
  ret: number;
  /** Log offset of a write known to have taken effect: such writes linearize in offset order. */
  order?: number;
  /** A write that may never take effect (unknown outcome): it may also linearize as a no-op. */
  optional?: boolean;
}

/** The outcome of a search: linearizable, not (with where it got stuck), or search budget exhausted. */
export type SearchResult =
  | { result: 'ok'; steps: number }
  | { result: 'unknown'; steps: number }
  | { result: 'fail'; steps: number; stuck: RegOp; prefix: RegOp[]; depth: number };

interface Entry {
  op: number;
  call: boolean;
  /** For a call entry, its return entry. */
  match: Entry | null;
  prev: Entry | null;
  next: Entry | null;
}

interface Frame {
  entry: Entry;
  state: number | null;
  maxOrder: number;
}

/** Searches for a linearization of `ops` on a register starting at `initial`; gives up after `maxSteps`. */
export function searchRegister(
  ops: readonly RegOp[],
  initial: number | null,
  maxSteps: number,
): SearchResult {
  const head = buildList(ops);
  const bits = new Uint16Array(Math.ceil(ops.length / 16) + 1);
  const cache = new Set<string>();
  const stack: Frame[] = [];
  let state = initial;
  let maxOrder = Number.NEGATIVE_INFINITY;
  let entry = head.next;
  let steps = 0;
  let best: { depth: number; stuck: RegOp; prefix: RegOp[] } | undefined;
  while (head.next !== null && entry !== null) {
    if (++steps > maxSteps) return { result: 'unknown', steps };
    if (entry.call) {
      const op = ops[entry.op] as RegOp;
      const next = tryStep(op, state, maxOrder, bits, entry.op, cache);
      if (next) {
        stack.push({ entry, state, maxOrder });
        state = next.state;
        maxOrder = next.maxOrder;
        lift(entry);
        entry = head.next;
      } else {
        entry = entry.next;
      }
      continue;
    }
    // A return reached while its op is still pending: this prefix cannot be extended, backtrack.
    if (!best || stack.length >= best.depth) {
      best = {
        depth: stack.length,
        stuck: ops[entry.op] as RegOp,
        prefix: stack.slice(-3).map((f) => ops[f.entry.op] as RegOp),
      };
    }
    const top = stack.pop();
    if (!top) return { result: 'fail', steps, ...(best as NonNullable<typeof best>) };
    setBit(bits, top.entry.op, false);
    state = top.state;
    maxOrder = top.maxOrder;
    unlift(top.entry);
    // An optional write gets a second chance at the same place, as a no-op (the cache skips what was tried).
    entry = (ops[top.entry.op] as RegOp).optional ? top.entry : top.entry.next;
  }
  return { result: 'ok', steps };
}

/**
 * Applies `op` to the register if the model allows it and the resulting configuration is new; marks it
 * linearized in `bits` on success. An optional write first tries to take effect, then to be a no-op.
 */
function tryStep(
  op: RegOp,
  state: number | null,
  maxOrder: number,
  bits: Uint16Array,
  index: number,
  cache: Set<string>,
): { state: number | null; maxOrder: number } | undefined {
  const candidates: Array<{ state: number | null; maxOrder: number }> = [];
  if (op.kind === 'read') {
    if (op.value === state) candidates.push({ state, maxOrder });
  } else {
    // Writes known to be in the log take effect in log order.
    if (op.order === undefined) candidates.push({ state: op.value, maxOrder });
    else if (op.order > maxOrder) candidates.push({ state: op.value, maxOrder: op.order });
    if (op.optional) candidates.push({ state, maxOrder });
  }
  setBit(bits, index, true);
  const key = String.fromCharCode(...bits);
  for (const c of candidates) {
    const k = `${key}|${c.state}`;
    if (cache.has(k)) continue;
    cache.add(k);
    return c;
  }
  setBit(bits, index, false);
  return undefined;
}

/** Builds the doubly linked list of call and return entries in time order (calls first on ties). */
function buildList(ops: readonly RegOp[]): Entry {
  const events: Array<{ t: number; entry: Entry }> = [];
  ops.forEach((op, i) => {
    const ret: Entry = { op: i, call: false, match: null, prev: null, next: null };
    const call: Entry = { op: i, call: true, match: ret, prev: null, next: null };
    events.push({ t: op.call, entry: call }, { t: op.ret, entry: ret });
  });
  // Closed intervals: an op invoked at the instant another returns may still overlap it.
  events.sort((a, b) => a.t - b.t || Number(b.entry.call) - Number(a.entry.call) || 0);
  const head: Entry = { op: -1, call: false, match: null, prev: null, next: null };
  let last = head;
  for (const { entry } of events) {
    last.next = entry;
    entry.prev = last;
    last = entry;
  }
  return head;
}

/** Removes a call entry and its return from the list. */
function lift(call: Entry): void {
  const ret = call.match as Entry;
  (call.prev as Entry).next = call.next;
  if (call.next) call.next.prev = call.prev;
  (ret.prev as Entry).next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

/** Puts a lifted call entry and its return back, in reverse order of removal. */
function unlift(call: Entry): void {
  const ret = call.match as Entry;
  (ret.prev as Entry).next = ret;
  if (ret.next) ret.next.prev = ret;
  (call.prev as Entry).next = call;
  if (call.next) call.next.prev = call;
}

function setBit(bits: Uint16Array, i: number, on: boolean): void {
  const w = i >> 4;
  const m = 1 << (i & 15);
  bits[w] = on ? (bits[w] as number) | m : (bits[w] as number) & ~m;
}
