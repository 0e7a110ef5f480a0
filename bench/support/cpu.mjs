// CPU readings from /proc (Linux; NaN elsewhere), in µs, in clock ticks (usually 10 ms each).
// processCpuUs(pid): utime + stime of a process and all its descendants (/proc/<pid>/stat);
// processTree + pidsCpuUs do the same in two steps, for readings every few hundred ms.
// systemCpuUs(): the whole machine's busy and steal time (/proc/stat), so a bench can tell how much
// CPU processes other than its own used during a window — the noise on a shared 2-core machine.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICK_US = 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100);

/** utime + stime of `pid` and every descendant, in µs. */
export function processCpuUs(pid) {
  try {
    return pidsCpuUs(processTree(pid));
  } catch {
    return NaN;
  }
}

/**
 * Whole-machine CPU since boot, in µs: `procUs` = user + nice + system (time charged to processes),
 * `irqUs` = irq + softirq (loopback traffic's kernel work lands here, charged to no process),
 * `stealUs` = time the hypervisor gave to other guests.
 */
export function systemCpuUs() {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = f;
    return { procUs: (user + nice + system) * TICK_US, irqUs: (irq + softirq) * TICK_US, stealUs: steal * TICK_US };
  } catch {
    return { procUs: NaN, irqUs: NaN, stealUs: NaN };
  }
}

/** `pid` and its descendants now (e.g. nginx's master and worker), to read with pidsCpuUs. */
export function processTree(pid) {
  const parent = new Map();
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const tree = new Set([pid]);
  for (let changed = true; changed; ) {
    changed = false;
    for (const [p, pp] of parent) if (!tree.has(p) && tree.has(pp)) (tree.add(p), (changed = true));
  }
  return [...tree];
}

/** utime + stime summed over `pids` (a fixed list: cheap enough to read every 250 ms), in µs. */
export function pidsCpuUs(pids) {
  let ticks = 0;
  for (const p of pids) {
    try {
      const s = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      return NaN;
    }
  }
  return ticks * TICK_US;
}
