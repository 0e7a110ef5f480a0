// Pick cost as an application pays it: this file is bundled (tsup's build API, one ESM file) and
// run by plain Node, with none of the test runner's module wrapping — under vitest bench every
// read of an imported binding goes through a getter, which makes the same picks 1.5–2× slower.
// Run by bench/balancers/pick-app.mjs (npm run bench). Per balancer and fleet size: the best of
// ROUNDS rounds of PICKS picks; before each round 4 endpoints get a fresh latency sample at the
// round's clock reading, which the pick context carries (ctx.nowMs), as a request's does.
import type { Dispatcher } from 'undici';
import { EndpointLoad } from '../../src/load/endpoint-load.js';
import { Endpoint } from '../../src/core/endpoint.js';
import { parseEndpointSpec } from '../../src/core/endpoint-spec.js';
import { NoHealthyEndpointError } from '../../src/core/errors.js';
import type { BalancerDefinition } from '../../src/balancers/balancer.js';
import { leastRequest } from '../../src/balancers/least-request.js';
import { peakEwma } from '../../src/balancers/peak-ewma.js';
import { prequal } from '../../src/balancers/prequal.js';
import { maglev } from '../../src/balancers/maglev.js';
import { roundRobin } from '../../src/balancers/round-robin.js';

const ROUNDS = 30;
const PICKS = 100_000;
let seed = 42;
const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
const deps = { service: 'b', random: rnd, now: () => performance.now(), noEndpoint: { type: 'fail' as const, error: new NoHealthyEndpointError('b', 'none') } };
const balancers: [string, BalancerDefinition<any>][] = [
  ['round-robin', roundRobin],
  ['least-request', leastRequest],
  ['peak-ewma', peakEwma],
  ['prequal', prequal],
  ['maglev', maglev],
];

function fleet(n: number): Endpoint[] {
  const load = { inFlight: 0, recentLatency: true };
  return Array.from({ length: n }, (_, i) => {
    const e = new Endpoint(parseEndpointSpec({ url: `http://127.${(i >> 8) & 255}.${i & 255}.1:8080`, weight: 1 + (i % 3) }, 'b'), {} as Dispatcher, new EndpointLoad(10_000, load));
    e.load.inFlight = i % 7;
    e.load.observeLatency(1 + (i % 5), performance.now(), i % 7);
    return e;
  });
}

const out: Record<string, Record<number, number>> = {};
for (const n of [10, 1000]) {
  const eps = fleet(n);
  for (const [name, def] of balancers) {
    const picker = def.create(eps, def.parseOptions ? def.parseOptions({}, 'b') : {}, deps);
    const ctx = { hash: (n * 2654435761) >>> 0, hashLow: 0, attempt: 0, nowMs: 0, skip: (): boolean => false };
    let best = Infinity;
    for (let r = 0; r < ROUNDS; r++) {
      const t = performance.now();
      for (let j = 0; j < 4; j++) {
        const e = eps[(r * 4 + j) % n]!;
        e.load.observeLatency(1 + (j % 5), t, e.load.inFlight);
      }
      ctx.nowMs = t;
      for (let i = 0; i < PICKS; i++) {
        ctx.hash = (ctx.hash + 0x9e3779b9) >>> 0;
        picker.pick(ctx);
      }
      best = Math.min(best, ((performance.now() - t) * 1e6) / PICKS);
    }
    (out[name] ??= {})[n] = best;
  }
}
process.stdout.write(JSON.stringify(out));
