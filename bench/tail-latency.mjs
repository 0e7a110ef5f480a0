// (c) Tail latency: 5 backends (in another process), four answering in ~FAST ms and one 10× slower.
// For every balancer registered at run time (BENCH_BALANCERS=a,b narrows the list; unknown names
// are skipped with a message), a fresh mesh under the same closed-loop load: req/s, p50, p99, each backend's share
// of requests, and p99 against round robin's. Target: peak-ewma p99 ≤ 1/3 of round robin's.
// Retries are off so a balancer's choice is what is measured. Hash balancers get no hash key
// here, so they pick at random — expected; they are listed for completeness.
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { registeredBalancers, balancersFromEnv } from './support/balancers.mjs';
import { runLoad, sender, fmt } from './support/load.mjs';

const TARGET = 1 / 3;

export async function tailLatency({ concurrency = 8, durationMs = 3000, warmupMs = 700, fastMs = 1, slowFactor = 10, balancers } = {}) {
  const names = await registeredBalancers(balancers ?? (await balancersFromEnv()), 'tail-latency');
  if (!names.includes('round-robin')) console.log('   tail-latency: round-robin is not in the list; no p99 ratio');
  const slowMs = fastMs * slowFactor;
  // The slow backend is the first; the table lists it first too.
  const specs = [{ delayMs: slowMs }, { delayMs: fastMs }, { delayMs: fastMs }, { delayMs: fastMs }, { delayMs: fastMs }];
  const backends = await startBackends(specs);
  const rows = [];
  try {
    for (const balancer of names) {
      const mesh = createMesh({ services: { api: { endpoints: backends.urls, balancer, retry: false } } });
      try {
        const r = await runLoad(sender(mesh.dispatcher, 'http://api'), { concurrency, durationMs, warmupMs });
        // Shares over the whole run (warm-up included): the balancer's choices, not the window's.
        const eps = mesh.stats().services.api.endpoints;
        const total = eps.reduce((a, e) => a + e.requests, 0);
        const shares = backends.urls.map((u) => (eps.find((e) => e.url === u)?.requests ?? 0) / total);
        rows.push({ balancer, ...r, shares, slowShare: shares[0] });
      } finally {
        await mesh.close();
      }
    }
  } finally {
    await backends.close();
  }
  const rr = rows.find((r) => r.balancer === 'round-robin')?.p99Ms;
  for (const r of rows) r.p99VsRoundRobin = rr ? r.p99Ms / rr : NaN;
  console.log(`\n(c) tail latency — 5 backends: 4 × ${fastMs} ms, 1 × ${slowMs} ms (the "slow" column); c=${concurrency}, ${warmupMs} ms warm-up + ${durationMs} ms; retries off`);
  console.log(`    target: peak-ewma p99 ≤ 1/3 of round robin's. ring-hash and maglev get no hash key here and pick at random (expected).`);
  console.log('| balancer | req/s | p50 ms | p99 ms | errors | p99 ÷ round-robin | share: slow / fast ×4 |');
  console.log('|---|---:|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const shares = r.shares.map((s) => `${fmt(s * 100, 1)}`).join(' / ');
    const mark = r.balancer === 'peak-ewma' && rr ? (r.p99VsRoundRobin <= TARGET ? ' (target met)' : ' (target MISSED)') : '';
    console.log(`| ${r.balancer} | ${fmt(r.rps, 0)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${r.errors} | ${fmt(r.p99VsRoundRobin, 2)}${mark} | ${shares} % |`);
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await tailLatency({
    durationMs: Number(process.env.BENCH_DURATION_MS ?? 3000),
    ...(process.env.BENCH_CONCURRENCY ? { concurrency: Number(process.env.BENCH_CONCURRENCY) } : {}),
  });
}
