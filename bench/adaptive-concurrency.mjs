// Adaptive concurrency (issue 12 §5): an upstream whose capacity halves mid-run and comes back.
// The upstream (another process) serves `workers` requests at once, each for `serviceMs`, and
// queues the rest (FIFO) — a worker-limited server; a request whose caller gave up still takes
// its worker, as it would there. Load is open loop: `ratePerS` requests a second, whatever
// happens, with a 1 s deadline (timeoutMs), 0.75× the full capacity — so 1.5× the halved one.
// Contenders, each against a fresh upstream: no limit (the default limits: 1024 in flight),
// a fixed limit tuned for the full capacity (maxRequests = workers, no queue) and one tuned for
// the halved capacity, and the adaptive
// limits (gradient2, vegas; their defaults, no queue). Each runs a warm-up at full capacity first
// (not reported: the adaptive limits start at 20 and grow to the load). Per phase: goodput
// (responses within the deadline, per second), p99 of those, the share refused locally
// (OVERLOADED) or timed out, and the limit sampled every 100 ms.
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { fmt } from './support/load.mjs';

const CONTENDERS = [
  ['none', {}],
  ['fixed (full capacity)', (workers) => ({ maxRequests: workers, maxPendingRequests: 0 })],
  ['fixed (half capacity)', (workers) => ({ maxRequests: workers / 2, maxPendingRequests: 0 })],
  ['gradient2', { maxPendingRequests: 0, adaptive: { algorithm: 'gradient2' } }],
  ['vegas', { maxPendingRequests: 0, adaptive: { algorithm: 'vegas' } }],
];

/** Send at `ratePerS` for `ms`, tagging each request with the phase it was sent in. */
async function openLoop(mesh, { ratePerS, phases, onTick }) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const stats = phases.map(() => ({ sent: 0, ok: 0, shed: 0, timedOut: 0, other: 0, latencies: [], limits: [] }));
  const pending = [];
  const send = (p) => {
    const t0 = performance.now();
    p.sent++;
    pending.push(
      mesh.dispatcher.request({ origin: 'http://api', path: '/', method: 'GET' }).then(
        async (res) => {
          await res.body.dump();
          if (res.statusCode < 500) {
            p.ok++;
            p.latencies.push(performance.now() - t0);
          } else p.other++;
        },
        (err) => {
          if (err.code === 'OVERLOADED') p.shed++;
          else if (err.code === 'TIMEOUT' || err.code === 'DEADLINE_EXCEEDED') p.timedOut++;
          else p.other++;
        },
      ),
    );
  };
  for (let i = 0; i < phases.length; i++) {
    await phases[i].enter();
    const p = stats[i];
    const start = performance.now();
    let sent = 0;
    let lastTick = start;
    while (performance.now() - start < phases[i].ms) {
      const due = Math.floor(((performance.now() - start) / 1000) * ratePerS);
      while (sent < due) (send(p), sent++);
      if (performance.now() - lastTick >= 100) {
        lastTick = performance.now();
        p.limits.push(onTick());
      }
      await sleep(2);
    }
    p.elapsedS = (performance.now() - start) / 1000;
  }
  await Promise.allSettled(pending);
  return stats.map((p) => {
    p.latencies.sort((a, b) => a - b);
    return {
      goodput: p.ok / p.elapsedS,
      p99Ms: p.latencies.length ? p.latencies[Math.floor(p.latencies.length * 0.99)] : NaN,
      shedPercent: (100 * p.shed) / p.sent,
      timedOutPercent: (100 * (p.timedOut + p.other)) / p.sent,
      limit: p.limits.length ? { min: Math.min(...p.limits), max: Math.max(...p.limits), end: p.limits.at(-1) } : null,
    };
  });
}

export async function adaptiveConcurrency({ durationMs = 3000, workers = 40, serviceMs = 200 } = {}) {
  const capacity = (workers * 1000) / serviceMs;
  const ratePerS = Math.round(capacity * 0.75);
  const names = ['warm-up', 'full', 'halved', 'restored'];
  const rows = [];
  for (const [name, limitsOf] of CONTENDERS) {
    const backends = await startBackends([{ delayMs: serviceMs, workers }]);
    try {
      const limits = typeof limitsOf === 'function' ? limitsOf(workers) : limitsOf;
      const mesh = createMesh({ services: { api: { endpoints: backends.urls, timeoutMs: 1_000, limits } } });
      const phases = [
        { ms: durationMs, enter: () => backends.set(0, { workers }) },
        { ms: durationMs, enter: () => backends.set(0, { workers }) },
        { ms: Math.round(durationMs * 1.5), enter: () => backends.set(0, { workers: workers / 2 }) },
        { ms: durationMs, enter: () => backends.set(0, { workers }) },
      ];
      const result = await openLoop(mesh, { ratePerS, phases, onTick: () => mesh.stats().services.api.concurrencyLimit });
      await mesh.close({ graceMs: 100 });
      result.forEach((r, i) => i > 0 && rows.push({ limits: name, phase: names[i], ...r }));
    } finally {
      await backends.close();
    }
  }
  console.log(`\nadaptive concurrency — 1 upstream, ${workers} workers × ${serviceMs} ms (${capacity} req/s), halved to ${workers / 2} for the middle phase; open loop at ${ratePerS} req/s, 1 s deadline`);
  console.log('| limits | phase | goodput req/s | p99 ms | refused (OVERLOADED) | timed out | limit min–max (end) |');
  console.log('|---|---|---:|---:|---:|---:|---|');
  for (const r of rows) {
    const l = r.limit === null ? '—' : `${r.limit.min}–${r.limit.max} (${r.limit.end})`;
    console.log(`| ${r.limits} | ${r.phase} | ${fmt(r.goodput, 0)} | ${fmt(r.p99Ms, 0)} | ${fmt(r.shedPercent, 1)} % | ${fmt(r.timedOutPercent, 1)} % | ${l} |`);
  }
  return { workers, serviceMs, ratePerS, rows };
}

if (import.meta.url === `file://${process.argv[1]}`) await adaptiveConcurrency({ durationMs: Number(process.env.BENCH_DURATION_MS ?? 3000) });
