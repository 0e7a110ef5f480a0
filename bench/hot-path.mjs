// The hot-path targets of issue 10 §7, measured in one run against baselines from the same run.
// (a) Overhead, 1 endpoint, c=64: undici `request(url, { dispatcher })` through meshlet's dispatcher
//     — default policies, and every policy off (retry, outlierDetection, circuitBreaker false) —
//     vs undici `Pool` straight to the backend (the backend in another process). Client CPU per
//     request (process.cpuUsage over the window ÷ requests) and req/s, each as a ratio to the Pool
//     run of the same round. Targets: CPU ≤ 1.03× Pool, req/s ≥ 0.97× Pool.
// (b) Against a sidecar hop: the same three backends behind HAProxy and behind nginx (one worker
//     each; support/proxies.mjs), reached with an undici Pool, vs meshlet's defaults balancing over
//     the three in-process. req/s ratio meshlet ÷ proxy path, and CPU per request of meshlet's client
//     vs client + proxy (the proxy's from /proc/<pid>/stat over the same window). Targets: ≥ 1.7×
//     req/s, ≤ 0.5× CPU. Skipped with a message when the proxies cannot be installed.
// This 2-core machine is noisy, so each part runs in many short interleaved rounds (the order
// rotates each round, a short warm-up per run, a fresh dispatcher per run: short runs keep the
// runs compared within a round close in time) and the median of the per-round ratios is reported,
// with every round's ratio beside it. Each run also reads, over its window, the backend's CPU and
// what processes outside this bench used (/proc/stat minus this bench's processes) and the
// hypervisor's steal: a part where that noise reaches BUSY_CORES has its verdicts marked "busy".
// Run alone: node bench/hot-path.mjs [a|b]   (knobs: BENCH_HOT_ROUNDS, BENCH_HOT_DURATION_MS)
// For a CPU profile of one contender of (a) alone: bench/profile.mjs.
import { availableParallelism, loadavg } from 'node:os';
import { Pool } from 'undici';
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { runLoad, requestSender, fmt } from './support/load.mjs';
import { ensureProxy, startProxy } from './support/proxies.mjs';
import { processCpuUs, systemCpuUs } from './support/cpu.mjs';

export const TARGETS = { cpu: 1.03, rps: 0.97, sidecarRps: 1.7, sidecarCpu: 0.5 };
const POLICIES_OFF = { retry: false, outlierDetection: false, circuitBreaker: false };

export const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
// A part whose runs saw other processes use this much CPU (median, in cores) is marked busy.
const BUSY_CORES = 0.15;
const noisy = (rows) => rows.some((r) => r.otherCores + r.stealCores >= BUSY_CORES);
const verdict = (ok, text, busy) => `${ok ? 'met' : 'MISSED'} (${text}${busy ? ', busy' : ''})`;
const cores = (r) => `${fmt(r.backendCores, 2)}, ${fmt(r.otherCores, 2)}, ${fmt(r.stealCores, 2)}`;
const list = (xs, d = 2) => xs.map((x) => fmt(x, d)).join(' ');

/**
 * runLoad, plus CPU readings over the same window: each of `pids` (the backend, the proxy) and
 * the machine's; `otherCores` is what processes outside this bench used (in cores), `stealCores`
 * the time the hypervisor took. Both say how far a run can be trusted on a shared machine.
 */
async function measuredLoad(send, opts, pids) {
  let p0, p1, s0, s1;
  const r = await runLoad(send, {
    ...opts,
    onWindowStart: () => {
      p0 = pids.map(processCpuUs);
      s0 = systemCpuUs();
    },
    onWindowEnd: () => {
      s1 = systemCpuUs();
      p1 = pids.map(processCpuUs);
    },
  });
  const pidUs = pids.map((_, i) => p1[i] - p0[i]);
  const windowUs = r.elapsedS * 1e6;
  const otherUs = s1.busyUs - s0.busyUs - (s1.stealUs - s0.stealUs) - r.cpuUs - pidUs.reduce((a, b) => a + b, 0);
  return { ...r, pidUs, otherCores: Math.max(0, otherUs) / windowUs, stealCores: (s1.stealUs - s0.stealUs) / windowUs };
}

/** The contenders of (a), by name; each `make()` gives a fresh `{ send, close }`. */
export function overheadContenders(url, concurrency) {
  const mesh = (extra) => () => {
    const m = createMesh({ services: { api: { endpoints: [url], pool: { connections: concurrency }, ...extra } } });
    return { send: requestSender(m.dispatcher, 'http://api/'), close: () => m.close() };
  };
  return {
    'undici Pool': () => {
      const d = new Pool(url, { connections: concurrency });
      return { send: requestSender(d, `${url}/`), close: () => d.close() };
    },
    'meshlet, default policies': mesh({}),
    'meshlet, every policy off': mesh(POLICIES_OFF),
  };
}

/** Runs `contenders` (name → async () => result) in `rounds` rounds, the order rotated each round. */
async function interleaved(contenders, rounds) {
  const names = Object.keys(contenders);
  const runs = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length];
      runs[name][round] = await contenders[name]();
    }
  }
  return runs;
}

async function partA({ concurrency, durationMs, warmupMs, rounds }) {
  const backends = await startBackends([{}]);
  let runs;
  try {
    const makers = overheadContenders(backends.urls[0], concurrency);
    const contenders = {};
    for (const [name, make] of Object.entries(makers)) {
      contenders[name] = async () => {
        const c = make();
        try {
          return await measuredLoad(c.send, { concurrency, durationMs, warmupMs }, [backends.pid]);
        } finally {
          await c.close();
        }
      };
    }
    runs = await interleaved(contenders, rounds);
  } finally {
    await backends.close();
  }
  const pool = runs['undici Pool'];
  const rows = Object.entries(runs).map(([name, rs]) => {
    const cpuRatios = rs.map((r, i) => r.cpuUsPerReq / pool[i].cpuUsPerReq);
    const rpsRatios = rs.map((r, i) => r.rps / pool[i].rps);
    return {
      name,
      rps: median(rs.map((r) => r.rps)),
      cpuUsPerReq: median(rs.map((r) => r.cpuUsPerReq)),
      cpuPercent: median(rs.map((r) => r.cpuPercent)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      backendCores: median(rs.map((r) => r.pidUs[0] / (r.elapsedS * 1e6))),
      otherCores: median(rs.map((r) => r.otherCores)),
      stealCores: median(rs.map((r) => r.stealCores)),
      cpuRatios,
      rpsRatios,
      cpuRatio: median(cpuRatios),
      rpsRatio: median(rpsRatios),
    };
  });
  console.log(`\n(a) hot-path overhead — 1 endpoint (backend in another process), c=${concurrency}, undici request(url, { dispatcher });`);
  console.log(`    ${rounds} interleaved rounds (order rotates), ${warmupMs} ms warm-up + ${durationMs} ms per run; ratios against the same round's Pool run, median of rounds`);
  const busy = noisy(rows);
  console.log(`| contender | req/s | client CPU µs/req | p99 ms | errors | backend, other, steal (cores) | CPU × Pool (rounds) | req/s × Pool (rounds) | CPU ≤ ${TARGETS.cpu}× | req/s ≥ ${TARGETS.rps}× |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const r of rows) {
    const isPool = r.name === 'undici Pool';
    console.log(
      `| ${r.name} | ${fmt(r.rps, 0)} | ${fmt(r.cpuUsPerReq, 1)} (${fmt(r.cpuPercent, 0)} %) | ${fmt(r.p99Ms, 2)} | ${r.errors} | ${cores(r)} | ` +
        `${isPool ? '1' : `**${fmt(r.cpuRatio, 3)}** (${list(r.cpuRatios, 3)})`} | ${isPool ? '1' : `**${fmt(r.rpsRatio, 3)}** (${list(r.rpsRatios, 3)})`} | ` +
        `${isPool ? '' : verdict(r.cpuRatio <= TARGETS.cpu, fmt(r.cpuRatio, 3), busy)} | ${isPool ? '' : verdict(r.rpsRatio >= TARGETS.rps, fmt(r.rpsRatio, 3), busy)} |`,
    );
  }
  console.log('    values are medians over the rounds; client CPU: user + system of this process per request (its share of one core);');
  console.log('    other: CPU used by processes outside this bench during the window, steal: taken by the hypervisor (/proc/stat).');
  if (busy) console.log(`    (busy) other processes used ≥ ${BUSY_CORES} cores during the runs: these ratios are not a baseline; rerun on a quiet machine.`);
  return { concurrency, durationMs, warmupMs, rounds, busy, rows };
}

async function partB({ concurrency, durationMs, warmupMs, rounds }) {
  const usable = [];
  for (const name of ['haproxy', 'nginx']) {
    const e = ensureProxy(name);
    if (e.ok) usable.push(name);
    else console.log(`   (b) ${name}: skipped — ${e.why}`);
  }
  if (usable.length === 0) {
    console.log('\n(b) vs a sidecar hop: SKIPPED — neither HAProxy nor nginx is available (see above)');
    return { skipped: true };
  }
  const backends = await startBackends([{}, {}, {}]);
  const proxies = {};
  let runs;
  try {
    for (const name of usable) {
      try {
        proxies[name] = await startProxy(name, backends.urls);
      } catch (err) {
        console.log(`   (b) ${name}: could not start (${err.message}); skipped`);
      }
    }
    const contenders = {
      'meshlet defaults (in-process, 3 backends)': async () => {
        const m = createMesh({ services: { api: { endpoints: backends.urls } } });
        try {
          const r = await measuredLoad(requestSender(m.dispatcher, 'http://api/'), { concurrency, durationMs, warmupMs }, [backends.pid]);
          return { ...r, proxyUsPerReq: 0, totalUsPerReq: r.cpuUsPerReq };
        } finally {
          await m.close();
        }
      },
    };
    for (const [name, proxy] of Object.entries(proxies)) {
      contenders[`undici Pool → ${name} → 3 backends`] = async () => {
        const pool = new Pool(proxy.origin, { connections: concurrency });
        try {
          const r = await measuredLoad(requestSender(pool, `${proxy.origin}/`), { concurrency, durationMs, warmupMs }, [backends.pid, proxy.pid]);
          const proxyUs = r.pidUs[1];
          const proxyUsPerReq = proxyUs / r.requests;
          return { ...r, proxyUsPerReq, proxyPercent: proxyUs / 1e4 / r.elapsedS, totalUsPerReq: r.cpuUsPerReq + proxyUsPerReq };
        } finally {
          await pool.close();
        }
      };
    }
    if (Object.keys(contenders).length === 1) {
      console.log('\n(b) vs a sidecar hop: SKIPPED — no proxy could be started (see above)');
      return { skipped: true };
    }
    runs = await interleaved(contenders, rounds);
  } finally {
    for (const p of Object.values(proxies)) await p.stop();
    await backends.close();
  }
  const [meshName, ...proxyNames] = Object.keys(runs);
  const mesh = runs[meshName];
  const summary = (name, rs) => ({
    name,
    rps: median(rs.map((r) => r.rps)),
    clientUsPerReq: median(rs.map((r) => r.cpuUsPerReq)),
    proxyUsPerReq: median(rs.map((r) => r.proxyUsPerReq)),
    proxyPercent: median(rs.map((r) => r.proxyPercent ?? 0)),
    totalUsPerReq: median(rs.map((r) => r.totalUsPerReq)),
    p99Ms: median(rs.map((r) => r.p99Ms)),
    errors: rs.reduce((a, r) => a + r.errors, 0),
    backendCores: median(rs.map((r) => r.pidUs[0] / (r.elapsedS * 1e6))),
    otherCores: median(rs.map((r) => r.otherCores)),
    stealCores: median(rs.map((r) => r.stealCores)),
  });
  const rows = [summary(meshName, mesh)];
  for (const name of proxyNames) {
    const rs = runs[name];
    const rpsRatios = rs.map((r, i) => mesh[i].rps / r.rps);
    const cpuRatios = rs.map((r, i) => mesh[i].totalUsPerReq / r.totalUsPerReq);
    rows.push({ ...summary(name, rs), rpsRatios, cpuRatios, rpsRatio: median(rpsRatios), cpuRatio: median(cpuRatios) });
  }
  console.log(`\n(b) vs a sidecar hop — the same 3 backends, c=${concurrency}; HAProxy and nginx with one worker each;`);
  console.log(`    ${rounds} interleaved rounds (order rotates), ${warmupMs} ms warm-up + ${durationMs} ms per run; ratios per round, median of rounds`);
  const busy = noisy(rows);
  console.log(`| path | req/s | client CPU µs/req | proxy CPU µs/req | client + proxy µs/req | p99 ms | errors | backend, other, steal (cores) | meshlet req/s ÷ this (rounds) | meshlet CPU ÷ this (rounds) | req/s ≥ ${TARGETS.sidecarRps}× | CPU ≤ ${TARGETS.sidecarCpu}× |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
  for (const r of rows) {
    const isMesh = r.name === meshName;
    console.log(
      `| ${r.name} | ${fmt(r.rps, 0)} | ${fmt(r.clientUsPerReq, 1)} | ${isMesh ? '—' : `${fmt(r.proxyUsPerReq, 1)} (${fmt(r.proxyPercent, 0)} %)`} | ${fmt(r.totalUsPerReq, 1)} | ${fmt(r.p99Ms, 2)} | ${r.errors} | ${cores(r)} | ` +
        `${isMesh ? '' : `**${fmt(r.rpsRatio, 2)}×** (${list(r.rpsRatios)})`} | ${isMesh ? '' : `**${fmt(r.cpuRatio, 2)}×** (${list(r.cpuRatios)})`} | ` +
        `${isMesh ? '' : verdict(r.rpsRatio >= TARGETS.sidecarRps, fmt(r.rpsRatio, 2), busy)} | ${isMesh ? '' : verdict(r.cpuRatio <= TARGETS.sidecarCpu, fmt(r.cpuRatio, 2), busy)} |`,
    );
  }
  console.log('    values are medians over the rounds; proxy CPU: utime + stime of the proxy\'s processes over the same window (share of one core);');
  console.log('    other / steal: CPU used outside this bench / taken by the hypervisor during the window (/proc/stat).');
  if (busy) console.log(`    (busy) other processes used ≥ ${BUSY_CORES} cores during the runs: these ratios are not a baseline; rerun on a quiet machine.`);
  return { concurrency, durationMs, warmupMs, rounds, busy, rows };
}

/** Prints and returns the 1-minute load average (this bench's own runs count in it too). */
function machineLoad() {
  const load = loadavg()[0];
  const cores = availableParallelism();
  console.log(`   load average (1 min) ${load.toFixed(2)} on ${cores} cores`);
  return { load, cores };
}

/** Both parts; `parts` picks a subset ('a', 'b'). */
export async function hotPath({ concurrency = 64, durationMs = 1500, warmupMs = 300, rounds = 7, sidecarRounds = 5, parts = ['a', 'b'] } = {}) {
  const out = { loadBefore: machineLoad() };
  if (parts.includes('a')) out.overhead = await partA({ concurrency, durationMs, warmupMs, rounds });
  if (parts.includes('b')) out.sidecar = await partB({ concurrency, durationMs, warmupMs, rounds: sidecarRounds });
  out.loadAfter = machineLoad();
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const parts = process.argv.slice(2).filter((a) => a === 'a' || a === 'b');
  const rounds = process.env.BENCH_HOT_ROUNDS ? Number(process.env.BENCH_HOT_ROUNDS) : undefined;
  await hotPath({
    ...(parts.length ? { parts } : {}),
    ...(process.env.BENCH_HOT_DURATION_MS ? { durationMs: Number(process.env.BENCH_HOT_DURATION_MS) } : {}),
    ...(rounds ? { rounds, sidecarRounds: rounds } : {}),
    ...(process.env.BENCH_CONCURRENCY ? { concurrency: Number(process.env.BENCH_CONCURRENCY) } : {}),
  });
}
