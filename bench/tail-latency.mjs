// (c) Tail latency with one slow replica (issue #12 §7): 5 replicas, four answering in FAST ms and
// one in 10 × FAST, in four scenarios — 1 ms / 10 ms and 2 ms / 20 ms, at 8 and 32 requests in
// flight (closed loop). Contenders: every balancer registered at run time (BENCH_BALANCERS=a,b
// narrows the list), undici BalancedPool over the same 5 replicas, and the all-fast baseline: 5
// fast replicas, meshlet round robin. Target: the default balancer's p99 ≤ 1.25 × the all-fast
// p99 in every scenario.
// All 10 replicas live in one backend process, so every contender meets the same one. The
// contenders alternate in 400 ms epochs within one load run (support/load.mjs runAlternating), so
// the other work on this shared machine lands on all of them alike; p99 is over all of a
// contender's epochs, and its ratio to the baseline is the median over cycles of the per-cycle
// ratio (robust to the one cycle a stall on the machine hits). Retries are off, so a balancer's choice is what is measured. Hash balancers
// get no hash key here and pick at random — expected; they are listed for completeness.
import { BalancedPool } from 'undici';
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { registeredBalancers, balancersFromEnv, defaultBalancer } from './support/balancers.mjs';
import { againstBaseline, runAlternating, sender, fmt } from './support/load.mjs';

const TARGET = 1.25;
// Per contender and scenario: 15 cycles of 400 ms. With 6 (2,400 ms, before 2026-12-02) the
// all-fast p99 itself moved 3.7–8.7 ms between runs and the default's median ratio 0.75–1.37 in
// twelve (two over 1.25); with 15, 0.91–1.20 in sixteen (four runs of the four scenarios).
const DURATION_MS = 6000;
export const SCENARIOS = [
  { fastMs: 1, concurrency: 8 },
  { fastMs: 1, concurrency: 32 },
  { fastMs: 2, concurrency: 8 },
  { fastMs: 2, concurrency: 32 },
];
const BASELINE = 'all fast (round-robin)';
const POOL = 'undici BalancedPool';

/**
 * @param durationMs measured time per contender and scenario (in epochs of `epochMs`)
 * @param inbound true: every replica is served through meshlet's mesh.inbound(), so each response
 *   carries its load report (bench/load-reports.mjs runs it so, issue #14 §4)
 * @returns one entry per scenario: { fastMs, slowMs, concurrency, rows: [{ name, p99Ms, vsAllFast, slowShare, ... }] }
 */
export async function tailLatency({ scenarios = SCENARIOS, durationMs = DURATION_MS, epochMs = 400, slowFactor = 10, balancers, inbound = false } = {}) {
  const names = await registeredBalancers(balancers ?? (await balancersFromEnv()), 'tail-latency');
  const def = await defaultBalancer();
  // 0–4: the fleet with one slow replica (0); 5–9: the all-fast fleet.
  const backends = await startBackends(Array.from({ length: 10 }, () => ({ inbound })));
  const withSlow = backends.urls.slice(0, 5);
  const allFast = backends.urls.slice(5);
  const out = [];
  try {
    for (const { fastMs, concurrency } of scenarios) {
      const slowMs = fastMs * slowFactor;
      for (let i = 0; i < 10; i++) await backends.set(i, { delayMs: i === 0 ? slowMs : fastMs });
      const contenders = [];
      const mesh = (name, balancer, urls) => {
        const m = createMesh({ services: { api: { endpoints: urls, balancer, retry: false } } });
        contenders.push({ name, balancer, mesh: m, send: sender(m.dispatcher, 'http://api'), close: () => m.close() });
      };
      mesh(BASELINE, 'round-robin', allFast);
      for (const b of names) mesh(b, b, withSlow);
      const pool = new BalancedPool(withSlow);
      contenders.push({ name: POOL, send: sender(pool, withSlow[0]), close: () => pool.close() });
      let r;
      try {
        r = await runAlternating(
          contenders.map((c) => c.send),
          { concurrency, epochMs, rampMs: 30, cycles: Math.max(3, Math.round(durationMs / epochMs)), warmupCycles: 1 },
        );
      } finally {
        for (const c of contenders) {
          if (c.mesh) {
            const eps = c.mesh.stats().services.api.endpoints;
            const total = eps.reduce((a, e) => a + e.requests, 0);
            c.slowShare = (eps.find((e) => e.url === withSlow[0])?.requests ?? 0) / total;
          }
          await c.close();
        }
      }
      const rows = contenders.map((c, i) => ({ name: c.name, isDefault: c.balancer === def && c.name !== BASELINE, ...againstBaseline(r, i), slowShare: c.slowShare }));
      print({ fastMs, slowMs, concurrency, durationMs, def, rows, inbound });
      out.push({ fastMs, slowMs, concurrency, rows });
    }
  } finally {
    await backends.close();
  }
  const d = out.map((s) => s.rows.find((x) => x.isDefault)).filter(Boolean);
  if (d.length) {
    const worst = Math.max(...d.map((x) => x.vsAllFast));
    console.log(`\n   default (${def}) p99 ÷ all-fast p99 per scenario: ${d.map((x) => fmt(x.vsAllFast, 2)).join(', ')} — target ≤ ${TARGET} in every one: ${worst <= TARGET ? 'met' : 'MISSED'}`);
  }
  return out;
}

function print({ fastMs, slowMs, concurrency, durationMs, def, rows, inbound }) {
  console.log(`\n(c) tail latency — 5 replicas${inbound ? ' behind mesh.inbound() (load reports on)' : ''}: 4 × ${fastMs} ms, 1 × ${slowMs} ms; c=${concurrency}; ${durationMs} ms per contender in alternating epochs; retries off`);
  console.log(`    baseline: 5 × ${fastMs} ms, round robin. Target: ${def} (the default) p99 ≤ ${TARGET}× the baseline's (median over cycles of the per-cycle ratio).`);
  console.log('| contender | req/s | p99 ms | p99 ÷ all fast | (over the whole run) | errors | slow replica share |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const x of rows) {
    const mark = x.isDefault ? (x.vsAllFast <= TARGET ? ' (default: target met)' : ' (default: target MISSED)') : '';
    const share = x.name === BASELINE ? '—' : x.slowShare === undefined ? 'n/a' : `${fmt(x.slowShare * 100, 2)} %`;
    console.log(`| ${x.name} | ${fmt(x.rps, 0)} | ${fmt(x.p99Ms, 2)} | ${fmt(x.vsAllFast, 2)}${mark} | ${fmt(x.vsAllFastMerged, 2)} | ${x.errors} | ${share} |`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const only = process.env.BENCH_SCENARIOS; // e.g. "1/8,2/32" (fast ms / in flight)
  const scenarios = only
    ? only.split(',').map((s) => {
        const [f, c] = s.split('/').map(Number);
        return { fastMs: f, concurrency: c };
      })
    : SCENARIOS;
  await tailLatency({ scenarios, durationMs: Number(process.env.BENCH_DURATION_MS ?? DURATION_MS) });
}
