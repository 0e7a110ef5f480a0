// npm run bench: every benchmark in one run, each against baselines measured in the same run.
//   1. pick cost per balancer, breaker cost, discovery convergence (vitest bench, in-process;
//      a folder not there yet is skipped with a message)
//   2. the hot-path targets of issue 10 §7 (hot-path.mjs): (a) 1 endpoint, meshlet (defaults, and every
//      policy off) vs undici Pool, client CPU per request and req/s as ratios, the contenders
//      alternating in short epochs within one load run, median of the per-cycle ratios; (b) vs a sidecar hop through HAProxy and nginx (installed with apt-get as root when
//      missing, skipped with a message otherwise): req/s and client + proxy CPU per request
//   3. overhead over 3 backends vs undici Pool / BalancedPool, per balancer
//   4. (c) tail latency with one slow replica (4 × 1 ms + 1 × 10 ms, and 2 ms / 20 ms; c=8 and c=32):
//      every balancer, undici BalancedPool and the all-fast baseline, alternating; (d) Linkerd's 2016
//      experiment scaled down: one of 10 replicas turns very slow mid-run, success within a timeout;
//      replicas of unequal capacity that report their load (ORCA), weighted-round-robin vs the
//      others (weighted-round-robin.mjs)
//   4b. hedging (hedging.mjs): the four slow-replica scenarios, hedging off and on vs all fast, and
//      the extra load hedging adds
//   5. resilience: failing / hanging / stopped replicas, policies on vs off; adaptive concurrency
//      (adaptive-concurrency.mjs): an upstream whose capacity halves mid-run, limits none / fixed /
//      gradient2 / vegas
//   6. memory per endpoint; garbage per request, Pool vs meshlet (allocation.mjs)
//   7. node:http through mesh.agent() vs undici.request through the mesh and a plain http.Agent (agent.mjs)
//   8. the inbound side: a server's req/s and CPU per request through mesh.inbound() vs the bare handler (inbound.mjs);
//      load reports (load-reports.mjs): the tail scenarios with every replica behind mesh.inbound(), and an
//      overloaded (CPU-bound) replica among five with four callers, prequal with and without its reports
// Results: bench/results/latest.json. Targets are printed, never asserted: the exit code is 0
// whatever the numbers (non-zero only if a benchmark itself crashes).
// Knobs: BENCH_DURATION_MS (measured window per run, default 3000; tail latency and overhead: 6000 per
// contender unless set), BENCH_CONCURRENCY (overhead and resilience; tail latency keeps its c=8 /
// c=32), BENCH_BALANCERS (tail latency and the slow replica).
// Backends run in a child process, killed at the end, on a crash and on Ctrl-C (support/backends.mjs).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hotPath } from './hot-path.mjs';
import { overhead } from './overhead.mjs';
import { tailLatency } from './tail-latency.mjs';
import { hedging, everyBalancer, SCENARIOS as HEDGING_SCENARIOS } from './hedging.mjs';
import { everyRegisteredBalancer } from './support/balancers.mjs';
import { slowReplica } from './slow-replica.mjs';
import { resilience } from './resilience.mjs';
import { adaptiveConcurrency } from './adaptive-concurrency.mjs';
import { weightedRoundRobinBench } from './weighted-round-robin.mjs';
import { agentBench } from './agent.mjs';
import { inboundBench } from './inbound.mjs';
import { loadReports } from './load-reports.mjs';
import { pickApp } from './balancers/pick-app.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
const concurrency = process.env.BENCH_CONCURRENCY ? Number(process.env.BENCH_CONCURRENCY) : undefined;
const env = { ...process.env, PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH}`, NO_COLOR: '1' };
const started = performance.now();
const results = { at: new Date().toISOString(), node: process.version, durationMs, concurrency: concurrency ?? null };

console.log('1. in-process micro-benchmarks (vitest bench)');
const microDirs = ['bench/balancers', 'bench/resilience', 'bench/discovery'].filter((d) => {
  if (existsSync(join(root, d))) return true;
  console.log(`   ${d}: not there yet; skipped`);
  return false;
});
const keepLine = (l) => /^\||ns per pick|breaker cost|discovery convergence/.test(l);
results.micro = [];
if (microDirs.length > 0) {
  const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
  const micro = spawnSync(process.execPath, [vitest, 'bench', '--run', ...microDirs], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
  const microOut = `${micro.stdout ?? ''}\n${micro.stderr ?? ''}`;
  results.micro = microOut.split('\n').filter(keepLine);
  for (const line of results.micro) console.log(line);
  if (micro.status !== 0) {
    console.log(`   vitest bench exited with ${micro.status ?? micro.signal}${micro.error ? ` (${micro.error.message})` : ''}; its last lines:`);
    console.log(microOut.trim().split('\n').slice(-15).map((l) => `   ${l}`).join('\n'));
  }
}

console.log('');
results.pickApp = await pickApp().catch((err) => (console.log(`   pick bench (bundled) failed: ${err.message}`), null));

console.log('\n2. hot-path targets (issue 10 §7)');
results.hotPath = await hotPath(concurrency ? { concurrency } : {});
console.log('\n3. overhead, 3 backends, per balancer');
results.overhead = await overhead({ ...(process.env.BENCH_DURATION_MS ? { durationMs } : {}), ...(concurrency ? { concurrency } : {}) });
console.log('\n4. tail latency');
results.tailLatency = await tailLatency(process.env.BENCH_DURATION_MS ? { durationMs } : {});
results.slowReplica = await slowReplica();
results.weightedRoundRobin = await weightedRoundRobinBench({ durationMs });
console.log('\n4b. hedging');
results.hedging = await hedging({ durationMs });
results.hedgingEveryBalancer = await hedging({ durationMs, scenarios: HEDGING_SCENARIOS.slice(0, 4), variantsFor: everyBalancer(await everyRegisteredBalancer()) });
console.log('\n5. resilience');
results.resilience = await resilience({ durationMs, ...(concurrency ? { concurrency } : {}) });
results.adaptiveConcurrency = await adaptiveConcurrency({ durationMs });

console.log('\n6. memory');
const mem = spawnSync(process.execPath, ['--expose-gc', join(root, 'bench', 'memory.mjs')], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
console.log((mem.stdout ?? '').trimEnd());
if (mem.status !== 0) console.log(`   memory bench exited with ${mem.status ?? mem.signal}: ${(mem.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`);
results.memory = mem.stdout;
// Garbage per request, in a process of its own (a heap the benches above filled would blur it).
const alloc = spawnSync(process.execPath, [join(root, 'bench', 'allocation.mjs')], { cwd: root, env, encoding: 'utf8', timeout: 180_000 });
console.log(`\n${(alloc.stdout ?? '').trimEnd()}`);
if (alloc.status !== 0) console.log(`   allocation bench exited with ${alloc.status ?? alloc.signal}: ${(alloc.stderr ?? '').trim().split('\n').slice(-3).join(' ')}`);
results.allocation = alloc.stdout;

console.log('\n7. node:http through the mesh (mesh.agent())');
results.agent = await agentBench(concurrency ? { concurrency } : {});

console.log('\n8. the inbound side (mesh.inbound)');
results.inbound = await inboundBench(concurrency ? { concurrency } : {});
console.log('\n8b. load reports (mesh.inbound replicas)');
results.loadReports = await loadReports(process.env.BENCH_DURATION_MS ? { durationMs } : {});

results.elapsedS = Math.round((performance.now() - started) / 1000);
mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'latest.json'), JSON.stringify(results, null, 2));
console.log(`\nresults written to bench/results/latest.json (${results.elapsedS} s)`);
