// Pick cost per balancer at 10, 100 and 1,000 endpoints (ns per pick), and picker build time at
// 1,000 endpoints. Run: npm run bench (or vitest bench --run bench/balancers).
// Each measured function does BATCH picks so timer overhead does not dominate a ~20 ns operation,
// and feeds 4 latency samples first so that estimates stay current, as under traffic.
import { expect, test } from 'vitest';
import type { Dispatcher } from 'undici';
import { EndpointLoad } from '../../src/load/endpoint-load.js';
import { Endpoint } from '../../src/core/endpoint.js';
import { parseEndpointSpec } from '../../src/core/endpoint-spec.js';
import { NoHealthyEndpointError } from '../../src/core/errors.js';
import type { BalancerDefinition, PickContext } from '../../src/balancers/balancer.js';
import { roundRobin } from '../../src/balancers/round-robin.js';
import { random } from '../../src/balancers/random.js';
import { leastRequest } from '../../src/balancers/least-request.js';
import { peakEwma } from '../../src/balancers/peak-ewma.js';
import { prequal } from '../../src/balancers/prequal.js';
import { ringHash } from '../../src/balancers/ring-hash.js';
import { maglev } from '../../src/balancers/maglev.js';
import { weightedRoundRobin } from '../../src/balancers/weighted-round-robin.js';
import { readLoadReport } from '../../src/load/orca.js';
import { xxh64Utf8 } from '../../src/balancers/xxhash64.js';

const BATCH = 1000;
const balancers: [string, BalancerDefinition<any>][] = [
  ['round-robin', roundRobin],
  ['random', random],
  ['least-request', leastRequest],
  ['peak-ewma', peakEwma],
  ['prequal', prequal],
  ['ring-hash', ringHash],
  ['maglev', maglev],
  ['weighted-round-robin', weightedRoundRobin],
];

let seed = 42;
const rnd = (): number => {
  seed = (seed * 1664525 + 1013904223) >>> 0;
  return seed / 4294967296;
};
const deps = { service: 'bench', random: rnd, now: () => performance.now(), noEndpoint: { type: 'fail' as const, error: new NoHealthyEndpointError('bench', 'none') } };

function fleet(n: number): Endpoint[] {
  const load = { inFlight: 0, recentLatency: true };
  return Array.from({ length: n }, (_, i) => {
    const e = new Endpoint(parseEndpointSpec({ url: `http://127.${(i >> 8) & 255}.${i & 255}.1:8080`, weight: 1 + (i % 3) }, 'b'), {} as Dispatcher, new EndpointLoad(10_000, load));
    e.load.inFlight = i % 7;
    // Sampled now, at the RIF it has: prequal reads these as current estimates (aged out after 1 s).
    e.load.observeLatency(1 + (i % 5), performance.now(), i % 7);
    // A load report 20 s old (past weighted-round-robin's blackout), so that it picks by weight.
    const r = readLoadReport({ 'endpoint-load-metrics': `TEXT cpu_utilization:${0.1 + (i % 9) / 10}, rps_fractional:100` });
    if (r?.type === 'report') e.load.report(r.report, performance.now() - 20_000);
    return e;
  });
}

// 64-bit request hashes (upper, lower halves interleaved), as the hash layer computes them.
const hashes = new Uint32Array(2 * 4096);
for (let i = 0; i < 4096; i++) xxh64Utf8(`user-${i}`, 0, hashes.subarray(2 * i, 2 * i + 2));
// nowMs: the clock reading a request hands its pick (it reads the clock anyway when it starts),
// set once per batch; the balancers then read no clock of their own.
const ctx = { hash: 0 as number | undefined, hashLow: 0, attempt: 0, nowMs: 0, skip: (): boolean => false } satisfies PickContext;
const results: Record<string, Record<number, number>> = {};

for (const n of [10, 100, 1000]) {
  test(`pick cost at ${n} endpoints`, async ({ bench }) => {
    const eps = fleet(n);
    const regs = balancers.map(([name, def]) => {
      const picker = def.create(eps, def.parseOptions ? def.parseOptions({}, 'b') : {}, deps);
      let k = 0;
      let fed = 0;
      return bench(name, () => {
        // As under traffic, endpoints keep answering: 4 samples per batch keep every estimate
        // current (1,000 endpoints, all within ~50 ms) on the same clock the pickers read.
        const t = performance.now();
        for (let j = 0; j < 4; j++, fed++) {
          const e = eps[fed % n]!;
          e.load.observeLatency(1 + (fed % 5), t, e.load.inFlight);
        }
        ctx.nowMs = t;
        for (let i = 0; i < BATCH; i++) {
          const j = 2 * (k++ & 4095);
          ctx.hash = hashes[j];
          ctx.hashLow = hashes[j + 1]!;
          picker.pick(ctx);
        }
      });
    });
    const storage = await bench.compare(...regs, { time: 300 });
    for (const [name] of balancers) {
      const r = storage.get(name as never) as unknown as { latency: { mean: number } };
      (results[name] ??= {})[n] = (r.latency.mean * 1e6) / BATCH;
      expect(r.latency.mean).toBeGreaterThan(0);
    }
  });
}

test('picker build time at 1,000 endpoints, and the summary', () => {
  const eps = fleet(1000);
  const build: Record<string, number> = {};
  for (const [name, def] of balancers) {
    const options = def.parseOptions ? def.parseOptions({}, 'b') : {};
    const t = performance.now();
    for (let i = 0; i < 5; i++) def.create(eps, options, deps);
    build[name] = (performance.now() - t) / 5;
  }
  const rows = balancers.map(([name]) => {
    const r = results[name] ?? {};
    return `| ${name.padEnd(13)} | ${[10, 100, 1000].map((n) => (r[n] ?? NaN).toFixed(1).padStart(7)).join(' | ')} | ${build[name]!.toFixed(2).padStart(8)} |`;
  });
  console.log(
    ['\nns per pick (target ≤ 200 at 1,000 for least-request, peak-ewma, prequal, maglev); build ms at 1,000', '| balancer      |      10 |     100 |    1000 | build ms |', '|---|---|---|---|---|', ...rows].join('\n'),
  );
  expect(Object.keys(build)).toHaveLength(balancers.length);
});
