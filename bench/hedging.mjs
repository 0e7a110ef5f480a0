// Hedged requests against one slow replica (issue #12 §3, §7): 5 backends, four answering in FAST
// ms and one 10× slower, at 1 ms / 10 ms and 2 ms / 20 ms with 8 and 32 requests in flight (and
// 10 ms / 100 ms at 8, where the slow replica rather than the machine sets the tail). Per
// scenario, with the default balancer:
//   - all fast: 5 backends of FAST ms (another backend process), round robin — the baseline p99;
//   - hedging off: the defaults;
//   - hedging on: `hedge: true` (the adaptive delay: p95 of recent latencies, 2 copies, 5 % budget);
//   - hedging on, fixed delay: `hedge: { delayMs: 2 × FAST }`.
// The contenders take turns in short epochs within one closed-loop run (support/load.mjs
// runAlternating): on a shared machine, load from elsewhere comes and goes over seconds, and runs
// taken one after the other would compare that noise. Reported: p99 and p99 ÷ all-fast, req/s
// (median epoch), the extra load — attempts sent to the backends ÷ requests the callers made
// (1.000 = none) — and hedges sent / won / refused by the budget.
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { runAlternating, sender, fmt } from './support/load.mjs';

export const SCENARIOS = [
  { fastMs: 1, concurrency: 8 },
  { fastMs: 1, concurrency: 32 },
  { fastMs: 2, concurrency: 8 },
  { fastMs: 2, concurrency: 32 },
  // Scaled up, so that the slow replica — not the caller's own stalls on a busy machine — sets the tail.
  { fastMs: 10, concurrency: 8 },
];

const variants = (fastMs) => [
  { name: 'all fast, round robin (baseline)', allFast: true, service: { balancer: 'round-robin' } },
  { name: 'hedging off', service: {} },
  { name: 'hedging on (p95)', service: { hedge: true } },
  { name: `hedging on (${2 * fastMs} ms)`, service: { hedge: { delayMs: 2 * fastMs } } },
];

/**
 * Every balancer, hedging off and on (the adaptive delay), against the same all-fast baseline:
 * issue #12 §7's "every balancer, with hedging off and on". `names`: the balancers to run.
 */
export const everyBalancer = (names) => () => [
  { name: 'all fast, round robin (baseline)', allFast: true, service: { balancer: 'round-robin' } },
  ...names.flatMap((b) => [
    { name: `${b}, hedging off`, service: { balancer: b } },
    { name: `${b}, hedging on (p95)`, service: { balancer: b, hedge: true } },
  ]),
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};

export async function hedging({ durationMs = 3000, epochMs = 250, scenarios = SCENARIOS, variantsFor = variants } = {}) {
  const results = [];
  const cycles = Math.max(8, Math.round(durationMs / epochMs));
  for (const sc of scenarios) {
    const slowMs = sc.fastMs * 10;
    const mixed = await startBackends([{ delayMs: slowMs }, ...Array.from({ length: 4 }, () => ({ delayMs: sc.fastMs }))]);
    const fast = await startBackends(Array.from({ length: 5 }, () => ({ delayMs: sc.fastMs })));
    const vs = variantsFor(sc.fastMs);
    const meshes = vs.map((v) => createMesh({ services: { api: { endpoints: (v.allFast ? fast : mixed).urls, ...v.service } } }));
    const calls = vs.map(() => 0);
    try {
      const senders = meshes.map((m, i) => {
        const send = sender(m.dispatcher, 'http://api');
        return () => (calls[i]++, send());
      });
      const run = await runAlternating(senders, { concurrency: sc.concurrency, epochMs, cycles });
      const rows = vs.map((v, i) => {
        const s = meshes[i].stats().services.api;
        // Attempts over the whole run (warm-up included), against the calls made over the same run.
        const attempts = s.endpoints.reduce((a, e) => a + e.requests + e.inFlight, 0);
        const slow = v.allFast ? 0 : (s.endpoints.find((e) => e.url === mixed.urls[0])?.requests ?? 0);
        return {
          variant: v.name,
          p99Ms: run.p99Ms[i],
          rps: median(run.epochs[i].map((e) => e.rps)),
          errors: run.epochs[i].reduce((n, e) => n + e.failed, 0),
          extraLoad: attempts / Math.max(1, calls[i]),
          hedges: s.hedges,
          hedgesWon: s.hedgesWon,
          hedgeBudgetExhausted: s.hedgeBudgetExhausted,
          slowShare: slow / Math.max(1, attempts),
        };
      });
      for (const r of rows) r.p99VsAllFast = r.p99Ms / rows[0].p99Ms;
      console.log(`\nhedging — 5 backends: 4 × ${sc.fastMs} ms, 1 × ${slowMs} ms; c=${sc.concurrency}; ${cycles} epochs of ${epochMs} ms per row, interleaved${vs.some((v) => v.service.balancer && !v.allFast) ? '' : '; default balancer'}`);
      console.log('| variant | req/s | p99 ms | p99 ÷ all fast | extra load | hedges sent / won / refused | slow share | errors |');
      console.log('|---|---:|---:|---:|---:|---|---:|---:|');
      for (const r of rows) {
        const h = r.hedges + r.hedgeBudgetExhausted > 0 ? `${r.hedges} / ${r.hedgesWon} / ${r.hedgeBudgetExhausted}` : '—';
        console.log(`| ${r.variant} | ${fmt(r.rps, 0)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.p99VsAllFast, 2)} | ${fmt(r.extraLoad, 3)} | ${h} | ${fmt(r.slowShare * 100, 1)} % | ${r.errors} |`);
      }
      results.push({ ...sc, slowMs, rows, unfinished: run.unfinished });
    } finally {
      await Promise.all(meshes.map((m) => m.close()));
      await Promise.all([mixed.close(), fast.close()]);
    }
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
  if (process.env.BENCH_EVERY_BALANCER) {
    const { everyRegisteredBalancer } = await import('./support/balancers.mjs');
    await hedging({ durationMs, scenarios: SCENARIOS.slice(0, 4), variantsFor: everyBalancer(await everyRegisteredBalancer()) });
  } else await hedging({ durationMs });
}
