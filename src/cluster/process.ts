import fs from 'node:fs';

/** OS-process helpers for the broker JVMs. Linux /proc is used to tell paused and zombie processes apart. */

export type ProcState = 'running' | 'paused' | 'dead';

export function procState(pid: number): ProcState {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3 follows the parenthesised command name, which may itself contain spaces.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return 'dead';
    if (state === 'T' || state === 't') return 'paused';
    return 'running';
  } catch {
    return 'dead';
  }
}

export function isAlive(pid: number): boolean {
  return procState(pid) !== 'dead';
}

/** True when `pid` is a live process whose command line mentions `marker` (guards against pid reuse). */
export function isProcessOf(pid: number, marker: string): boolean {
  try {
    return isAlive(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

/** Signal the process group led by `pid` (brokers are spawned detached, as group leaders), else the pid. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

export async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(100);
  }
  return !isAlive(pid);
}

/** SIGTERM, a bounded wait, then SIGKILL. A paused process is resumed first so it can see the SIGTERM. */
export async function terminate(pid: number, graceMs: number): Promise<'clean' | 'killed' | 'gone'> {
  if (!isAlive(pid)) return 'gone';
  signal(pid, 'SIGCONT');
  signal(pid, 'SIGTERM');
  if (await waitExit(pid, graceMs)) return 'clean';
  signal(pid, 'SIGKILL');
  await waitExit(pid, 5000);
  return 'killed';
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Process resident memory in bytes (VmRSS), or undefined. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
