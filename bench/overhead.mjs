// (a) Overhead: meshlet over 3 backends vs undici Pool straight to one backend, and vs undici
// BalancedPool over the same 3 — same run, same backends (in another process), same load.
// Contenders run interleaved twice (A B C D A B C D); the better of the two runs is reported.
import { Pool, BalancedPool } from 'undici';
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { runLoad, sender, fmt } from './support/load.mjs';

export async function overhead({ concurrency = 64, durationMs = 3000 } = {}) {
  const backends = await startBackends([{}, {}, {}]);
  const contenders = {
    'undici Pool (1 backend)': () => {
      const d = new Pool(backends.urls[0], { connections: 64 });
      return { send: sender(d, backends.urls[0]), close: () => d.close() };
    },
    'undici BalancedPool (3)': () => {
      const d = new BalancedPool(backends.urls, { connections: 64 });
      return { send: sender(d, backends.urls[0]), close: () => d.close() };
    },
    'meshlet round-robin (3)': () => {
      const m = createMesh({ services: { api: { endpoints: backends.urls, balancer: 'round-robin' } } });
      return { send: sender(m.dispatcher, 'http://api'), close: () => m.close() };
    },
    'meshlet peak-ewma (3)': () => {
      const m = createMesh({ services: { api: { endpoints: backends.urls } } });
      return { send: sender(m.dispatcher, 'http://api'), close: () => m.close() };
    },
  };
  const best = {};
  try {
    for (let round = 0; round < 2; round++) {
      for (const [name, make] of Object.entries(contenders)) {
        const c = make();
        const r = await runLoad(c.send, { concurrency, durationMs, warmupMs: 700 });
        await c.close();
        if (!best[name] || r.rps > best[name].rps) best[name] = r;
      }
    }
  } finally {
    await backends.close();
  }
  const base = best['undici Pool (1 backend)'].rps;
  const rows = Object.entries(best).map(([name, r]) => ({ name, ...r, ratio: r.rps / base }));
  console.log(`\n(a) overhead — c=${concurrency}, ${durationMs} ms per run, best of 2 interleaved runs; target: meshlet ≥ 0.9× Pool`);
  console.log('| contender | req/s | p50 ms | p99 ms | × Pool |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.name} | ${fmt(r.rps, 0)} | ${fmt(r.p50Ms, 2)} | ${fmt(r.p99Ms, 2)} | ${fmt(r.ratio, 2)} |`);
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) await overhead({ durationMs: Number(process.env.BENCH_DURATION_MS ?? 3000) });
