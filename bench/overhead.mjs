// (a) Overhead: meshlet over 3 backends vs undici Pool straight to one backend (the baseline), and
// vs undici BalancedPool over the same 3 — same backends (in another process), same closed-loop
// load. The contenders stay open and alternate in short epochs within one load run
// (support/load.mjs runAlternating, the order rotating every cycle), so the other work on this
// shared machine lands on all of them alike; a contender's ratio to Pool is taken per block of
// BLOCK cycles and the median over the blocks reported, with its interquartile range. (Until
// 2026-12-02 each contender ran alone, best of two 3 s runs: those swung by up to 25 % between
// runs of the same contender.) Target: meshlet ≥ 0.9× Pool.
import { Pool, BalancedPool } from 'undici';
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { registeredBalancers } from './support/balancers.mjs';
import { runAlternating, sender, fmt } from './support/load.mjs';
import { median, quantile } from './hot-path.mjs';

const TARGET = 0.9;
const BLOCK = 4;
const EPOCH_MS = 250;
const BASE = 'undici Pool (1 backend)';

/** @param durationMs measured time per contender (in epochs of EPOCH_MS) */
export async function overhead({ concurrency = 64, durationMs = 6000 } = {}) {
  const balancers = await registeredBalancers(['round-robin', 'peak-ewma', 'prequal'], 'overhead');
  const backends = await startBackends([{}, {}, {}]);
  // Connections: as many as there are workers, so no contender queues for a socket.
  const contenders = {
    [BASE]: () => {
      const d = new Pool(backends.urls[0], { connections: concurrency });
      return { send: sender(d, backends.urls[0]), close: () => d.close() };
    },
    'undici BalancedPool (3)': () => {
      const d = new BalancedPool(backends.urls, { connections: concurrency });
      return { send: sender(d, backends.urls[0]), close: () => d.close() };
    },
  };
  for (const balancer of balancers) {
    contenders[`meshlet ${balancer} (3)`] = () => {
      const m = createMesh({ services: { api: { endpoints: backends.urls, balancer, pool: { connections: concurrency } } } });
      return { send: sender(m.dispatcher, 'http://api'), close: () => m.close() };
    };
  }
  const names = Object.keys(contenders);
  const cycles = Math.max(BLOCK, Math.round(durationMs / EPOCH_MS / BLOCK) * BLOCK);
  const made = [];
  let run;
  try {
    for (const make of Object.values(contenders)) made.push(make());
    run = await runAlternating(made.map((c) => c.send), { concurrency, epochMs: EPOCH_MS, rampMs: 50, cycles, warmupCycles: 2 });
  } finally {
    for (const c of made) await c.close().catch(() => {});
    await backends.close();
  }
  const sum = (list, f) => list.reduce((a, e) => a + f(e), 0);
  const blocks = (list) => Array.from({ length: cycles / BLOCK }, (_, b) => list.slice(b * BLOCK, b * BLOCK + BLOCK));
  const rpsOf = (list) => sum(list, (e) => e.ok) / sum(list, (e) => e.elapsedS);
  const base = blocks(run.epochs[0]);
  const rows = run.epochs.map((list, i) => {
    const ratios = blocks(list).map((b, k) => rpsOf(b) / rpsOf(base[k]));
    const requests = sum(list, (e) => e.requests);
    const elapsedS = sum(list, (e) => e.elapsedS);
    return {
      name: names[i],
      rps: rpsOf(list),
      p99Ms: run.p99Ms[i],
      errors: sum(list, (e) => e.failed),
      cpuUsPerReq: sum(list, (e) => e.cpuUs) / requests,
      cpuPercent: sum(list, (e) => e.cpuUs) / 1e4 / elapsedS,
      ratios,
      ratio: median(ratios),
    };
  });
  console.log(`\n(a) overhead — 3 backends (no delay) in another process, c=${concurrency}; the contenders alternate in ${EPOCH_MS} ms epochs,`);
  console.log(`    ${cycles} cycles (order rotates); req/s ratio per block of ${BLOCK} cycles against Pool's: median [interquartile range]; target: meshlet ≥ ${TARGET}× Pool`);
  console.log('| contender | req/s | p99 ms | errors | client CPU µs/req | × Pool | target |');
  console.log('|---|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const verdict = r.name.startsWith('meshlet') ? (r.ratio >= TARGET ? `met (≥ ${TARGET})` : `MISSED (< ${TARGET})`) : '';
    const ratio = r.name === BASE ? '1' : `**${fmt(r.ratio, 2)}** [${fmt(quantile(r.ratios, 0.25), 2)}–${fmt(quantile(r.ratios, 0.75), 2)}]`;
    console.log(`| ${r.name} | ${fmt(r.rps, 0)} | ${fmt(r.p99Ms, 2)} | ${r.errors} | ${fmt(r.cpuUsPerReq, 1)} (${fmt(r.cpuPercent, 0)} %) | ${ratio} | ${verdict} |`);
  }
  console.log("    client CPU: the load process's CPU time per request (and its share of one core) over its epochs;");
  console.log('    when it is well under 100 % the backend process, not the client, limits req/s.');
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await overhead({
    durationMs: Number(process.env.BENCH_DURATION_MS ?? 6000),
    ...(process.env.BENCH_CONCURRENCY ? { concurrency: Number(process.env.BENCH_CONCURRENCY) } : {}),
  });
}
