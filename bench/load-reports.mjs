// Load reports closing the loop (issue #14 §4): replicas served through meshlet's own
// mesh.inbound(), whose responses carry an ORCA load report (process CPU, event-loop utilization,
// requests in flight), and callers whose balancers read it.
//  (a) the four scenarios of tail-latency.mjs (one of five replicas 10× slower, a fixed delay)
//      with every replica behind mesh.inbound(): every balancer, undici BalancedPool, all fast.
//  (b) a replica slow because it is overloaded, not because of a fixed delay: four replicas answer
//      after FAST_MS (a timer), the fifth spends CPU_MS of CPU on every request, on its own event
//      loop in its own process, so that the share round robin gives it is more than it can serve
//      and its requests queue. CLIENTS independent callers (one mesh each: each sees only its own
//      requests in flight) share the load. Contenders: prequal (the default: it goes by what this
//      caller sees), prequal with `reportedRif: true` (adding the requests in flight the replicas
//      report), the other balancers, undici BalancedPool; baseline: five fast replicas, round
//      robin. Alternating epochs, as tail-latency.mjs.
// Run alone: node bench/load-reports.mjs (after a build). Results print as tables; nothing is asserted.
import { BalancedPool } from 'undici';
import { createMesh } from '../dist/index.mjs';
import { startBackends } from './support/backends.mjs';
import { registeredBalancers, defaultBalancer } from './support/balancers.mjs';
import { againstBaseline, runAlternating, sender, fmt } from './support/load.mjs';
import { tailLatency } from './tail-latency.mjs';

const FAST_MS = 1;
const CPU_MS = 2;
const CLIENTS = 4;
const BASELINE = 'all fast (round-robin)';

/** (b): one CPU-bound replica among five, several callers. */
export async function overloadedReplica({ durationMs = 2400, epochMs = 400, concurrency = 32, clients = CLIENTS, cpuMs = CPU_MS, fastMs = FAST_MS, slowDelayMs = 0 } = {}) {
  const def = await defaultBalancer();
  const names = await registeredBalancers(['prequal', 'peak-ewma', 'least-request', 'weighted-round-robin', 'round-robin'], 'load-reports');
  // Fast replicas 0–3 of the fleet and 4–8 of the baseline share a process (timers only); the
  // CPU-bound one has a process of its own, so its busy loop delays only its own requests.
  const fast = await startBackends(Array.from({ length: 9 }, () => ({ inbound: true, delayMs: fastMs })));
  const hot = await startBackends([{ inbound: true, cpuMs, delayMs: slowDelayMs }]);
  const fleet = [...fast.urls.slice(0, 4), hot.urls[0]];
  const allFast = fast.urls.slice(4);
  const contenders = [];
  const callers = (name, balancer, urls, path = '/') => {
    const meshes = Array.from({ length: clients }, () => createMesh({ services: { api: { endpoints: urls, balancer, retry: false } } }));
    const sends = meshes.map((m) => sender(m.dispatcher, 'http://api', path));
    let k = 0;
    contenders.push({ name, balancer, meshes, send: () => sends[k++ % clients](), close: () => Promise.all(meshes.map((m) => m.close())) });
  };
  try {
    callers(BASELINE, 'round-robin', allFast);
    for (const b of names) callers(b === def ? `${b} (the default)` : b, b, fleet);
    // prequal adding the requests in flight the replicas report (its reportedRif option).
    if (names.includes('prequal')) callers('prequal, reportedRif: true', { type: 'prequal', reportedRif: true }, fleet);
    const pools = Array.from({ length: clients }, () => new BalancedPool(fleet));
    let k = 0;
    const poolSends = pools.map((p) => sender(p, fleet[0]));
    contenders.push({ name: 'undici BalancedPool', send: () => poolSends[k++ % clients](), close: () => Promise.all(pools.map((p) => p.close())) });
    let r;
    try {
      r = await runAlternating(contenders.map((c) => c.send), { concurrency, epochMs, rampMs: 50, cycles: Math.max(3, Math.round(durationMs / epochMs)), warmupCycles: 1 });
    } finally {
      for (const c of contenders) {
        if (c.meshes) {
          let total = 0;
          let onHot = 0;
          for (const m of c.meshes) {
            for (const e of m.stats().services.api.endpoints) {
              total += e.requests;
              if (e.url === hot.urls[0]) onHot += e.requests;
            }
          }
          c.hotShare = total ? onHot / total : NaN;
        }
        await c.close();
      }
    }
    const rows = contenders.map((c, i) => ({ name: c.name, ...againstBaseline(r, i), hotShare: c.hotShare }));
    console.log(`\n(b) an overloaded replica — 5 replicas behind mesh.inbound(): 4 answer after ${fastMs} ms, 1 spends ${cpuMs} ms of CPU per request (at most ${Math.round(1000 / cpuMs)} req/s);`);
    console.log(`    ${clients} callers (a mesh each) share c=${concurrency}; ${durationMs} ms per contender in alternating epochs; retries off. Baseline: 5 fast replicas, round robin.`);
    console.log('| contender | req/s | p99 ms | p99 ÷ all fast | errors | overloaded replica share |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const x of rows) {
      const share = x.name === BASELINE ? '—' : Number.isFinite(x.hotShare) ? `${fmt(x.hotShare * 100, 2)} %` : 'n/a';
      console.log(`| ${x.name} | ${fmt(x.rps, 0)} | ${fmt(x.p99Ms, 2)} | ${fmt(x.vsAllFast, 2)} | ${x.errors} | ${share} |`);
    }
    return { fastMs, cpuMs, clients, concurrency, rows };
  } finally {
    await fast.close();
    await hot.close();
  }
}

export async function loadReports({ durationMs } = {}) {
  console.log('\n(a) the tail-latency scenarios with every replica behind mesh.inbound() (load reports on)');
  const tail = await tailLatency({ inbound: true, ...(durationMs ? { durationMs } : {}) });
  const overloaded = await overloadedReplica(durationMs ? { durationMs } : {});
  return { tail, overloaded };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.env.BENCH_PART === 'b') await overloadedReplica({ cpuMs: Number(process.env.BENCH_CPU_MS ?? CPU_MS), slowDelayMs: Number(process.env.BENCH_SLOW_MS ?? 0) });
  else await loadReports(process.env.BENCH_DURATION_MS ? { durationMs: Number(process.env.BENCH_DURATION_MS) } : {});
}
