// npm run bench: every benchmark in one run, each against baselines measured in the same run.
//   1. pick cost per balancer and the breaker's cost (vitest bench, in-process)
//   2. (a) overhead vs undici Pool / BalancedPool      3. (c) tail latency with a slow replica
//   4. resilience: failing / hanging / stopped replicas, policies on vs off
//   5. memory per endpoint
// Results: bench/results/latest.json. Targets are printed, never asserted.
// BENCH_DURATION_MS (default 3000) and BENCH_CONCURRENCY tune the HTTP runs.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { overhead } from './overhead.mjs';
import { tailLatency } from './tail-latency.mjs';
import { resilience } from './resilience.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const durationMs = Number(process.env.BENCH_DURATION_MS ?? 3000);
const concurrency = process.env.BENCH_CONCURRENCY ? Number(process.env.BENCH_CONCURRENCY) : undefined;
const env = { ...process.env, PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH}`, NO_COLOR: '1' };

console.log('1. in-process micro-benchmarks (vitest bench)');
const micro = spawnSync(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'bench', '--run', 'bench/balancers', 'bench/resilience', 'bench/discovery'], {
  cwd: root,
  env,
  encoding: 'utf8',
});
const microOut = `${micro.stdout}\n${micro.stderr}`;
for (const line of microOut.split('\n')) if (/^\||ns per pick|breaker cost|discovery convergence/.test(line)) console.log(line);

const results = { at: new Date().toISOString(), node: process.version, durationMs };
results.overhead = await overhead({ durationMs, ...(concurrency ? { concurrency } : {}) });
results.tailLatency = await tailLatency({ durationMs, concurrency: concurrency ?? 8 });
results.tailLatencyHighConcurrency = await tailLatency({ durationMs, concurrency: 32 });
results.resilience = await resilience({ durationMs, ...(concurrency ? { concurrency } : {}) });

const mem = spawnSync(process.execPath, ['--expose-gc', join(root, 'bench', 'memory.mjs')], { cwd: root, env, encoding: 'utf8' });
console.log(mem.stdout.trimEnd());
results.memory = mem.stdout;
results.micro = microOut.split('\n').filter((l) => /^\||ns per pick|breaker cost|discovery convergence/.test(l));

mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'latest.json'), JSON.stringify(results, null, 2));
console.log('\nresults written to bench/results/latest.json');
