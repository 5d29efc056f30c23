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
  /** Log offset of a write known to have taken effect: such writes all linearize, in offset order. */
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
  ordered: number;
  /** A read taken because it matched: alternatives at this point are no better, so backtracking skips them. */
  forced: boolean;
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
  // Writes with a log order must all take effect, so only the lowest one not yet linearized may go next.
  const orders = ops.flatMap((op) => (op.order === undefined ? [] : [op.order])).sort((a, b) => a - b);
  let ordered = 0;
  let entry = head.next;
  let steps = 0;
  let best: { depth: number; stuck: RegOp; prefix: RegOp[] } | undefined;
  const push = (e: Entry, next: { state: number | null; ordered: number }, forced: boolean) => {
    stack.push({ entry: e, state, ordered, forced });
    state = next.state;
    ordered = next.ordered;
    lift(e);
    entry = head.next;
  };
  /** Undoes frames down to the last real choice; false when none is left. */
  const backtrack = (): boolean => {
    for (;;) {
      const top = stack.pop();
      if (!top) return false;
      setBit(bits, top.entry.op, false);
      state = top.state;
      ordered = top.ordered;
      unlift(top.entry);
      if (top.forced) continue;
      // An optional write gets a second chance at the same place, as a no-op (the cache skips what was tried).
      entry = (ops[top.entry.op] as RegOp).optional ? top.entry : top.entry.next;
      return true;
    }
  };
  const fail = (): SearchResult => ({ result: 'fail', steps, ...(best as NonNullable<typeof best>) });
  while (head.next !== null && entry !== null) {
    if (++steps > maxSteps) return { result: 'unknown', steps };
    if (entry === head.next) {
      // A pending read that matches the register now can always go now: reads do not change the state.
      const read = matchingRead(head, ops, state);
      if (read) {
        if (markNew(bits, read.op, cache, state)) push(read, { state, ordered }, true);
        else if (!backtrack()) return fail();
        continue;
      }
    }
    if (entry.call) {
      const next = tryStep(ops[entry.op] as RegOp, state, orders[ordered], ordered, bits, entry.op, cache);
      if (next) push(entry, next, false);
      else entry = entry.next;
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
    if (!backtrack()) return fail();
  }
  return { result: 'ok', steps };
}

/** The first callable read (call before the earliest pending return) whose value the register holds. */
function matchingRead(head: Entry, ops: readonly RegOp[], state: number | null): Entry | undefined {
  for (let e = head.next; e?.call; e = e.next) {
    const op = ops[e.op] as RegOp;
    if (op.kind === 'read' && op.value === state) return e;
  }
  return undefined;
}

/** Marks op `index` linearized; true if (linearized set, state) is a configuration not seen before. */
function markNew(bits: Uint16Array, index: number, cache: Set<string>, state: number | null): boolean {
  setBit(bits, index, true);
  const k = `${String.fromCharCode(...bits)}|${state}`;
  if (cache.has(k)) {
    setBit(bits, index, false);
    return false;
  }
  cache.add(k);
  return true;
}

/**
 * Applies `op` to the register if the model allows it and the resulting configuration is new; marks it
 * linearized in `bits` on success. An optional write first tries to take effect, then to be a no-op.
 */
function tryStep(
  op: RegOp,
  state: number | null,
  nextOrder: number | undefined,
  ordered: number,
  bits: Uint16Array,
  index: number,
  cache: Set<string>,
): { state: number | null; ordered: number } | undefined {
  const candidates: Array<{ state: number | null; ordered: number }> = [];
  if (op.kind === 'read') {
    if (op.value === state) candidates.push({ state, ordered });
  } else {
    // Writes known to be in the log take effect in log order.
    if (op.order === undefined) candidates.push({ state: op.value, ordered });
    else if (op.order === nextOrder) candidates.push({ state: op.value, ordered: ordered + 1 });
    if (op.optional) candidates.push({ state, ordered });
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
