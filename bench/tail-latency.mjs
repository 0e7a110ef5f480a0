// (c) Tail latency: 5 backends, four answering in ~2 ms and one 10× slower (~20 ms). p50/p99 and
// the slow backend's share per balancer, and each p99 against round robin's.
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { runLoad, sender, fmt } from './support/load.mjs';

const BALANCERS = ['round-robin', 'random', 'least-request', 'peak-ewma', 'ring-hash', 'maglev'];

export async function tailLatency({ concurrency = 8, durationMs = 3000 } = {}) {
  const specs = [{ delayMs: 20 }, { delayMs: 2 }, { delayMs: 2 }, { delayMs: 2 }, { delayMs: 2 }];
  const backends = await startBackends(specs);
  const rows = [];
  try {
    for (const balancer of BALANCERS) {
      const mesh = createMesh({ services: { api: { endpoints: backends.urls, balancer, retry: false } } });
      const r = await runLoad(sender(mesh.dispatcher, 'http://api'), { concurrency, durationMs, warmupMs: 700 });
      const eps = mesh.stats().services.api.endpoints;
      const total = eps.reduce((a, e) => a + e.requests, 0);
      const slowShare = eps.find((e) => e.url === backends.urls[0]).requests / total;
      await mesh.close();
      rows.push({ balancer, ...r, slowShare });
    }
  } finally {
    await backends.close();
  }
  const rr = rows.find((r) => r.balancer === 'round-robin').p99Ms;
  console.log(`\n(c) tail latency — 5 backends, one 10× slower; c=${concurrency}; target: peak-ewma p99 ≤ 1/3 of round robin's`);
  console.log('| balancer | req/s | p50 ms | p99 ms | p99 / round-robin | slow backend share |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.balancer} | ${fmt(r.rps, 0)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.p99Ms / rr, 2)} | ${fmt(r.slowShare * 100, 1)} % |`);
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) await tailLatency({ durationMs: Number(process.env.BENCH_DURATION_MS ?? 3000) });
