// CPU readings from /proc (Linux; NaN elsewhere), in µs, in clock ticks (usually 10 ms each).
// processCpuUs(pid): utime + stime of a process and all its descendants (/proc/<pid>/stat).
// systemCpuUs(): the whole machine's busy and steal time (/proc/stat), so a bench can tell how much
// CPU processes other than its own used during a window — the noise on a shared 2-core machine.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICK_US = 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100);

export { TICK_US };

/** utime + stime of `pid` and every descendant, in µs, from /proc (Linux only; NaN elsewhere). */
export function processCpuUs(pid) {
  let procs;
  try {
    procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return NaN;
  }
  const stat = new Map(); // pid → { ppid, ticks }
  for (const d of procs) {
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
      stat.set(Number(d), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // exited meanwhile
    }
  }
  if (!stat.has(pid)) return NaN;
  let ticks = 0;
  const tree = new Set([pid]);
  // Parents have lower pids almost always, but not surely: iterate to a fixed point.
  for (let changed = true; changed; ) {
    changed = false;
    for (const [p, s] of stat) if (!tree.has(p) && tree.has(s.ppid)) (tree.add(p), (changed = true));
  }
  for (const p of tree) ticks += stat.get(p).ticks;
  return ticks * TICK_US;
}

/** Whole-machine CPU since boot: busy (user+nice+system+irq+softirq+steal), steal, in µs. */
export function systemCpuUs() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    return { busyUs: (user + nice + system + irq + softirq + steal) * TICK_US, stealUs: steal * TICK_US };
  } catch {
    return { busyUs: NaN, stealUs: NaN };
  }
}
