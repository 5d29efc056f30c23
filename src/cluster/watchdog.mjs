// Lagoon broker watchdog (plain JS so it starts in milliseconds, no TypeScript loader).
// Usage: node watchdog.mjs OWNER_PID KAFKA_DIR
// When the owner process (a test run, `lagoon up`) dies — even by SIGKILL — it stops every broker whose
// pid file is under KAFKA_DIR: no JVM outlives its owner. It leaves quietly if another watchdog takes over
// (watchdog.pid no longer holds its pid) or the owner stops the cluster itself.
import fs from 'node:fs';
import path from 'node:path';

const ownerPid = Number(process.argv[2]);
const kafkaDir = process.argv[3];
const selfFile = path.join(kafkaDir, 'watchdog.pid');

const alive = (pid) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const s = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return s !== 'Z' && s !== 'X';
  } catch {
    return false;
  }
};
const ours = (pid) => {
  try {
    return alive(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(kafkaDir);
  } catch {
    return false;
  }
};
const sig = (pid, s) => {
  try {
    process.kill(-pid, s);
  } catch {
    try {
      process.kill(pid, s);
    } catch {}
  }
};
const brokerPids = () => {
  let dirs = [];
  try {
    dirs = fs.readdirSync(kafkaDir).filter((d) => d.startsWith('broker-'));
  } catch {}
  return dirs
    .map((d) => {
      try {
        return Number.parseInt(fs.readFileSync(path.join(kafkaDir, d, 'broker.pid'), 'utf8'), 10);
      } catch {
        return 0;
      }
    })
    .filter((pid) => pid > 0 && ours(pid));
};
const stillMine = () => {
  try {
    return Number.parseInt(fs.readFileSync(selfFile, 'utf8'), 10) === process.pid;
  } catch {
    return false;
  }
};

async function reap() {
  const pids = brokerPids();
  for (const pid of pids) {
    sig(pid, 'SIGCONT');
    sig(pid, 'SIGTERM');
  }
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 200));
  for (const pid of pids) if (alive(pid)) sig(pid, 'SIGKILL');
  try {
    fs.rmSync(selfFile, { force: true });
  } catch {}
  process.exit(0);
}

let reaping = false;
setInterval(() => {
  if (reaping) return;
  if (!stillMine()) process.exit(0);
  if (!alive(ownerPid)) {
    reaping = true;
    void reap();
  }
}, 500);
