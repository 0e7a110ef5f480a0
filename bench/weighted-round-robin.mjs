// Weighted round robin on reported load (issue 12 §2): three replicas of unequal capacity — two
// with 8 workers, one with 2, each request 10 ms (800, 800 and 200 req/s) — that report their
// utilization and rate in ORCA headers (support/backend-process.mjs `orca`). Closed loop, c=16:
// round robin sends the small replica a third of the requests and its queue sets the p99;
// weighted-round-robin reads weight = rps / utilization ≈ each replica's capacity. Compared with
// the other balancers in the same run. The blackout is shortened to 1 s so that the 2 s warm-up
// covers it (the default, 10 s, would only lengthen the run).
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { fmt, runLoad, sender } from './support/load.mjs';

const BALANCERS = [
  ['round-robin', 'round-robin'],
  ['least-request', 'least-request'],
  ['peak-ewma', 'peak-ewma'],
  ['weighted-round-robin', { type: 'weighted-round-robin', blackoutPeriodMs: 1_000 }],
];

export async function weightedRoundRobinBench({ durationMs = 3000, concurrency = 16 } = {}) {
  const rows = [];
  for (const [name, balancer] of BALANCERS) {
    const backends = await startBackends([8, 8, 2].map((workers) => ({ delayMs: 10, workers, orca: true })));
    try {
      const mesh = createMesh({ services: { api: { endpoints: backends.urls, balancer } } });
      // Shares over the measured window only (the warm-up holds the blackout's round robin).
      const counts = () => mesh.stats().services.api.endpoints.map((e) => e.requests);
      let before = [];
      let after = [];
      const r = await runLoad(sender(mesh.dispatcher, 'http://api'), {
        concurrency,
        durationMs,
        warmupMs: 2_500,
        onWindowStart: () => (before = counts()),
        onWindowEnd: () => (after = counts()),
      });
      const served = after.map((n, i) => n - before[i]);
      await mesh.close({ graceMs: 100 });
      rows.push({ balancer: name, ...r, smallShare: served[2] / served.reduce((a, b) => a + b, 0) });
    } finally {
      await backends.close();
    }
  }
  console.log(`\nweighted round robin — 3 replicas of 8, 8 and 2 workers × 10 ms reporting ORCA load, c=${concurrency}, ${durationMs} ms`);
  console.log('| balancer | req/s | p50 ms | p99 ms | share of the small replica (its capacity: 11 %) |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.balancer} | ${fmt(r.rps, 0)} | ${fmt(r.p50Ms, 1)} | ${fmt(r.p99Ms, 1)} | ${fmt(r.smallShare * 100, 1)} % |`);
  return { rows };
}

if (import.meta.url === `file://${process.argv[1]}`) await weightedRoundRobinBench({ durationMs: Number(process.env.BENCH_DURATION_MS ?? 3000) });
