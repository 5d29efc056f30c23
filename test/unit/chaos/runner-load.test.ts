import { describe, expect, it } from 'vitest';
import type { HistoryOp, NodeFinal } from '../../../src/chaos/history.js';
import {
  chooseOp,
  classifyNoAnswer,
  classifyRead,
  classifyWrite,
  DEFAULT_MIX,
  resolvePending,
} from '../../../src/chaos/load.js';
import { mulberry32 } from '../../../src/chaos/scenarios.js';

describe('chooseOp', () => {
  it('follows the mix: ~60% writes, ~40% reads over three levels, only the given keys', () => {
    const rng = mulberry32(11);
    const keys = ['a', 'b', 'c'];
    const seen = new Map([['a', '1-5']]);
    const counts: Record<string, number> = {};
    let bad = 0;
    for (let i = 0; i < 20_000; i++) {
      const op = chooseOp(rng, keys, i, seen);
      if (!keys.includes(op.key)) bad++;
      const label =
        op.kind === 'read'
          ? op.consistency
          : op.method === 'DELETE'
            ? 'delete'
            : op.ifMatch
              ? 'ifMatch'
              : op.ifNoneMatch
                ? 'ifNoneMatch'
                : 'put';
      counts[label] = (counts[label] ?? 0) + 1;
      if (op.kind === 'write' && op.method === 'PUT' && op.value !== i) bad++;
      if (op.kind === 'write' && op.ifMatch && op.ifMatch !== '1-5') bad++;
    }
    expect(bad).toBe(0);
    const frac = (k: string) => (counts[k] ?? 0) / 20_000;
    expect(frac('eventual')).toBeCloseTo(DEFAULT_MIX.eventual, 1);
    expect(frac('session')).toBeCloseTo(DEFAULT_MIX.session, 1);
    expect(frac('strong')).toBeCloseTo(DEFAULT_MIX.strong, 1);
    expect(frac('put')).toBeGreaterThan(0.45);
    expect(frac('delete')).toBeGreaterThan(0.03);
    expect(frac('ifMatch')).toBeGreaterThan(0.005);
    expect(frac('ifNoneMatch')).toBeGreaterThan(0.02);
  });
});

describe('classify', () => {
  it('writes', () => {
    expect(classifyWrite({ status: 200, body: { version: '1-2' } }, false)).toEqual({
      outcome: 'ok',
      status: 200,
      version: '1-2',
    });
    expect(classifyWrite({ status: 200, body: { version: '1-2' } }, true).verdict).toBe('applied');
    expect(
      classifyWrite({ status: 412, body: { code: 'precondition_failed', version: '1-3' } }, true),
    ).toEqual({
      outcome: 'fail',
      status: 412,
      code: 'precondition_failed',
      version: '1-3',
      verdict: 'rejected',
    });
    expect(classifyWrite({ status: 202, body: { version: '1-4', status: 'pending' } }, true)).toMatchObject({
      outcome: 'unknown',
      version: '1-4',
    });
    expect(
      classifyWrite({ status: 503, body: { code: 'kafka_unavailable', definite: true } }, false).outcome,
    ).toBe('fail');
    expect(classifyWrite({ status: 503, body: { code: 'x', definite: false } }, false).outcome).toBe(
      'unknown',
    );
    expect(
      classifyWrite({ status: 504, body: { code: 'write_outcome_unknown', definite: false } }, false).outcome,
    ).toBe('unknown');
    expect(classifyWrite({ status: 500, body: undefined }, false).outcome).toBe('unknown');
    expect(classifyWrite({ status: 400, body: { code: 'invalid_key' } }, false).outcome).toBe('fail');
  });

  it('reads', () => {
    expect(classifyRead({ status: 200, body: { value: 7, version: '0-1' } })).toEqual({
      outcome: 'ok',
      status: 200,
      value: 7,
      version: '0-1',
    });
    expect(classifyRead({ status: 404, body: { code: 'not_found' } })).toEqual({
      outcome: 'ok',
      status: 404,
      value: null,
    });
    expect(classifyRead({ status: 504, body: { code: 'session_timeout' } }).outcome).toBe('fail');
    expect(classifyRead({ status: 503, body: { code: 'kafka_unavailable' } }).outcome).toBe('fail');
  });

  it('no answer: refused is definite, timeouts and resets are not', () => {
    const refused = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
    expect(classifyNoAnswer(refused)).toEqual({ outcome: 'fail', code: 'ECONNREFUSED' });
    const reset = Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } });
    expect(classifyNoAnswer(reset)).toEqual({ outcome: 'unknown', code: 'ECONNRESET' });
    expect(classifyNoAnswer(new DOMException('t', 'TimeoutError')).outcome).toBe('unknown');
  });
});

describe('resolvePending', () => {
  it('gives a 202 write the verdict the replicas reached', () => {
    const ops: HistoryOp[] = [
      {
        kind: 'write',
        id: 1,
        process: 0,
        node: 'n1',
        key: 'k',
        value: 1,
        ifNoneMatch: true,
        invokeAt: 0,
        completeAt: 1,
        outcome: 'unknown',
        status: 202,
        version: '0-1',
      },
      {
        kind: 'write',
        id: 2,
        process: 1,
        node: 'n1',
        key: 'k',
        value: 2,
        ifMatch: '0-1',
        invokeAt: 0,
        completeAt: 1,
        outcome: 'unknown',
        status: 202,
        version: '0-2',
      },
      {
        kind: 'write',
        id: 3,
        process: 2,
        node: 'n1',
        key: 'k',
        value: 3,
        ifMatch: '0-1',
        invokeAt: 0,
        completeAt: 1,
        outcome: 'unknown',
        status: 202,
        version: '0-3',
      },
    ];
    const final: NodeFinal = {
      node: 'n1',
      digests: [],
      values: {},
      writes: {
        '0-1': { status: 'applied', key: 'k' },
        '0-2': { status: 'rejected', key: 'k' },
        '0-3': { status: 'pending', key: null },
      },
      endOffsets: {},
    };
    expect(resolvePending(ops, [final])).toBe(2);
    expect(ops.map((o) => o.outcome)).toEqual(['ok', 'fail', 'unknown']);
    expect(ops[1]!.kind === 'write' && ops[1]!.verdict).toBe('rejected');
  });
});
