// (d) Linkerd's 2016 experiment ("Beyond round robin: load balancing for latency": 11 backends,
// 1000 qps, one made to take 2 s for 30 s, 1 s timeout), scaled to this machine: 10 replicas in one
// backend process answering in 2–6 ms; open-loop load at RATE requests/s; for SLOW_FOR ms in the
// middle of the run one replica answers in SLOW_MS. Every request has a TIMEOUT_MS budget (the
// mesh's `timeoutMs`; undici's `headersTimeout` for BalancedPool). Per balancer: the success rate
// (answered within the timeout) over the run and over the slow period, and p50 / p99 / p99.9 over
// every request (a failed one counts at the time it failed). Retries, outlier detection and the
// circuit breaker are off so the balancer's choice is what is measured; one more row runs the
// default balancer with the default policies, as a service gets it.
import { createHistogram } from 'node:perf_hooks';
import { BalancedPool } from 'undici';
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { registeredBalancers, balancersFromEnv, defaultBalancer } from './support/balancers.mjs';
import { fmt } from './support/load.mjs';

const REPLICAS = 10;
const FAST = { delayMs: 2, jitterMs: 4 };
const OFF = { retry: false, outlierDetection: false, circuitBreaker: false };

/** Open-loop load: `rate` requests/s for `durationMs`, each timed; `at(ms)` is called on every tick. */
async function openLoop(send, { rate, durationMs, at }) {
  const hist = createHistogram();
  let ok = 0;
  let failed = 0;
  let sent = 0;
  let inFlight = 0;
  const windows = [];
  const errors = {};
  const one = async (t0, slot) => {
    inFlight++;
    let good = false;
    try {
      const status = await send();
      good = status < 400;
      if (!good) errors[status] = (errors[status] ?? 0) + 1;
    } catch (err) {
      good = false;
      const code = err?.code ?? err?.name ?? 'error';
      errors[code] = (errors[code] ?? 0) + 1;
    }
    inFlight--;
    hist.record(Math.max(1, Number(process.hrtime.bigint() - t0)));
    if (good) ok++;
    else failed++;
    if (slot) slot[good ? 'ok' : 'failed']++;
  };
  const start = performance.now();
  const tick = 2;
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= durationMs) break;
    const slot = at(elapsed, windows);
    const due = Math.floor((elapsed / 1000) * rate);
    // At most 2,000 outstanding: a contender that falls that far behind is failing anyway.
    for (; sent < due && inFlight < 2000; sent++) one(process.hrtime.bigint(), slot);
    await new Promise((r) => setTimeout(r, tick));
  }
  for (let w = 0; inFlight > 0 && w < 400; w++) await new Promise((r) => setTimeout(r, 5)); // drain, ≤ 2 s
  const total = ok + failed + inFlight;
  return { ok, failed, errors, unfinished: inFlight, total, successRate: ok / total, p50Ms: hist.percentile(50) / 1e6, p99Ms: hist.percentile(99) / 1e6, p999Ms: hist.percentile(99.9) / 1e6 };
}

export async function slowReplica({ rate = 800, durationMs = 6000, slowForMs = 2000, slowMs = 1000, timeoutMs = 300, balancers } = {}) {
  const names = await registeredBalancers(balancers ?? (await balancersFromEnv()), 'slow-replica');
  const def = await defaultBalancer();
  const backends = await startBackends(Array.from({ length: REPLICAS }, () => FAST));
  const urls = backends.urls;
  const contenders = names.map((b) => ({ name: b, make: () => createMesh({ services: { api: { endpoints: urls, balancer: b, timeoutMs, ...OFF } } }) }));
  contenders.push({ name: `${def}, default policies`, make: () => createMesh({ services: { api: { endpoints: urls, timeoutMs } } }) });
  contenders.push({ name: 'undici BalancedPool', pool: true });
  const rows = [];
  const slowFrom = (durationMs - slowForMs) / 2;
  try {
    for (const c of contenders) {
      await backends.set(0, FAST);
      let send;
      let close;
      if (c.pool) {
        const pool = new BalancedPool(urls);
        const opts = { origin: urls[0], path: '/', method: 'GET', headersTimeout: timeoutMs };
        send = async () => {
          const res = await pool.request(opts);
          await res.body.dump();
          return res.statusCode;
        };
        close = () => pool.close();
      } else {
        const mesh = c.make();
        const opts = { origin: 'http://api', path: '/', method: 'GET' };
        send = async () => {
          const res = await mesh.dispatcher.request(opts);
          await res.body.dump();
          return res.statusCode;
        };
        close = () => mesh.close({ graceMs: 100 });
      }
      try {
        await openLoop(send, { rate, durationMs: 500, at: () => null }); // warm-up: connections, estimates
        let phase = 0; // 0 before, 1 slow, 2 after
        const during = { ok: 0, failed: 0 };
        const r = await openLoop(send, {
          rate,
          durationMs,
          at: (t) => {
            if (phase === 0 && t >= slowFrom) {
              phase = 1;
              backends.set(0, { delayMs: slowMs, jitterMs: 0 });
            } else if (phase === 1 && t >= slowFrom + slowForMs) {
              phase = 2;
              backends.set(0, FAST);
            }
            return phase === 1 ? during : null;
          },
        });
        rows.push({ name: c.name, ...r, slowSuccessRate: during.ok / (during.ok + during.failed) });
      } finally {
        await close();
      }
    }
  } finally {
    await backends.close();
  }
  console.log(`\n(d) one replica turns slow — Linkerd's 2016 experiment scaled down: ${REPLICAS} replicas at ${FAST.delayMs}–${FAST.delayMs + FAST.jitterMs} ms, open loop at ${rate} req/s for ${durationMs} ms;`);
  console.log(`    one replica takes ${slowMs} ms from ${slowFrom} to ${slowFrom + slowForMs} ms; timeout ${timeoutMs} ms; retries, outlier detection and breaker off (but for the "default policies" row)`);
  console.log('| balancer | success | success while slow | p50 ms | p99 ms | p99.9 ms |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const x of rows) {
    console.log(`| ${x.name} | ${fmt(x.successRate * 100, 2)} % | ${fmt(x.slowSuccessRate * 100, 2)} % | ${fmt(x.p50Ms, 2)} | ${fmt(x.p99Ms, 1)} | ${fmt(x.p999Ms, 1)} |`);
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await slowReplica({ rate: Number(process.env.BENCH_RATE ?? 800), durationMs: Number(process.env.BENCH_SLOW_RUN_MS ?? 6000) });
}
