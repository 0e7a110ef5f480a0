// Hedged requests against one slow replica: 5 backends (in another process), four answering in
// FAST ms and one 10× slower, at 1 ms / 10 ms and 2 ms / 20 ms, 8 and 32 requests in flight. Per
// scenario, fresh meshes with the default balancer under the same closed-loop load:
//   - all fast: the slow backend made fast for the run — the baseline p99;
//   - hedging off: the defaults;
//   - hedging on: `hedge: true` (the adaptive delay: p95 of recent latencies, 2 copies, 5 % budget);
//   - hedging on, fixed delay: `hedge: { delayMs: 2 × FAST }`.
// Reported: req/s, p50, p99, p99 ÷ all-fast, and the extra load — attempts the backends were sent
// ÷ requests the callers made (1.00 = no extra) — with hedges sent, won and refused by the budget.
// Retries are left at their defaults (nothing fails here, so none is sent).
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { runLoad, sender, fmt } from './support/load.mjs';

const SCENARIOS = [
  { fastMs: 1, concurrency: 8 },
  { fastMs: 1, concurrency: 32 },
  { fastMs: 2, concurrency: 8 },
  { fastMs: 2, concurrency: 32 },
];

const variants = (fastMs) => [
  { name: 'all fast (baseline)', allFast: true, service: {} },
  { name: 'hedging off', service: {} },
  { name: 'hedging on (p95)', service: { hedge: true } },
  { name: `hedging on (${2 * fastMs} ms)`, service: { hedge: { delayMs: 2 * fastMs } } },
];

async function measure(urls, service, { concurrency, durationMs, warmupMs }) {
  const mesh = createMesh({ services: { api: { endpoints: urls, ...service } } });
  try {
    let calls = 0;
    const send = sender(mesh.dispatcher, 'http://api');
    const r = await runLoad(() => (calls++, send()), { concurrency, durationMs, warmupMs });
    const s = mesh.stats().services.api;
    // Attempts over the whole run (warm-up included), against the calls made over the same run.
    const attempts = s.endpoints.reduce((a, e) => a + e.requests + e.inFlight, 0);
    const slowShare = (s.endpoints.find((e) => e.url === urls[0])?.requests ?? 0) / Math.max(1, attempts);
    return { ...r, calls, attempts, extraLoad: attempts / Math.max(1, calls), hedges: s.hedges, hedgesWon: s.hedgesWon, hedgeBudgetExhausted: s.hedgeBudgetExhausted, slowShare };
  } finally {
    await mesh.close();
  }
}

export async function hedging({ durationMs = 3000, warmupMs = 700, scenarios = SCENARIOS } = {}) {
  const results = [];
  for (const sc of scenarios) {
    const slowMs = sc.fastMs * 10;
    const backends = await startBackends([{ delayMs: slowMs }, ...Array.from({ length: 4 }, () => ({ delayMs: sc.fastMs }))]);
    const rows = [];
    try {
      for (const v of variants(sc.fastMs)) {
        if (v.allFast) await backends.set(0, { delayMs: sc.fastMs });
        try {
          rows.push({ variant: v.name, ...(await measure(backends.urls, v.service, { concurrency: sc.concurrency, durationMs, warmupMs })) });
        } finally {
          if (v.allFast) await backends.set(0, { delayMs: slowMs });
        }
      }
    } finally {
      await backends.close();
    }
    const base = rows[0].p99Ms;
    for (const r of rows) r.p99VsAllFast = r.p99Ms / base;
    console.log(`\nhedging — 5 backends: 4 × ${sc.fastMs} ms, 1 × ${slowMs} ms; c=${sc.concurrency}, ${warmupMs} ms warm-up + ${durationMs} ms; default balancer`);
    console.log('| variant | req/s | p50 ms | p99 ms | p99 ÷ all fast | extra load | hedges sent / won / refused | slow share |');
    console.log('|---|---:|---:|---:|---:|---:|---|---:|');
    for (const r of rows) {
      const h = r.variant.startsWith('hedging on') ? `${r.hedges} / ${r.hedgesWon} / ${r.hedgeBudgetExhausted}` : '—';
      console.log(`| ${r.variant} | ${fmt(r.rps, 0)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.p99VsAllFast, 2)} | ${fmt(r.extraLoad, 3)} | ${h} | ${fmt(r.slowShare * 100, 1)} % |`);
    }
    results.push({ ...sc, slowMs, rows });
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await hedging({ durationMs: Number(process.env.BENCH_DURATION_MS ?? 3000) });
}
