import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { appendEvent, EventLog, MAX_EVENTS_FILE_BYTES } from '../../../src/lag/events.js';

const dirs: string[] = [];
function tmpFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lagoon-events-'));
  dirs.push(dir);
  return path.join(dir, 'events.jsonl');
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('events file', () => {
  it('is rotated instead of growing forever, and readers follow the new file', () => {
    const file = tmpFile();
    const log = new EventLog({ file, max: 50 });
    log.start(60_000);
    const message = 'm'.repeat(400);
    const n = Math.ceil(MAX_EVENTS_FILE_BYTES / 400) + 200;
    for (let i = 0; i < n; i++) appendEvent(file, { at: i, kind: 'note', message });
    expect(fs.statSync(file).size).toBeLessThanOrEqual(MAX_EVENTS_FILE_BYTES + 1000);
    expect(fs.existsSync(`${file}.1`)).toBe(true);
    log.add({ at: n, kind: 'broker_kill', target: 'broker-2' });
    const events = log.list();
    expect(events.length).toBeLessThanOrEqual(50);
    expect(events.at(-1)).toMatchObject({ kind: 'broker_kill', target: 'broker-2' });
    log.close();
  });

  it('reads only the tail of a long file at start, skipping the torn first line', () => {
    const file = tmpFile();
    const lines: string[] = [];
    for (let i = 0; i < 5000; i++)
      lines.push(JSON.stringify({ at: i, kind: 'note', message: 'x'.repeat(100) }));
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    const log = new EventLog({ file, max: 10 });
    log.start(60_000);
    const events = log.list();
    expect(events.map((e) => e.at)).toEqual([4990, 4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999]);
    log.close();
  });
});
