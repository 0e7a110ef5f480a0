// Cost of the health model per recorded outcome, with the opossum-fed circuit vs without it
// (outlier detection only), and of opossum's own fire() for comparison. Target: the breaker adds
// ≤ 0.5 µs per request.
import { expect, test } from 'vitest';
import CircuitBreaker from 'opossum';
import type { Dispatcher } from 'undici';
import { Endpoint } from '../../src/core/endpoint.js';
import { parseEndpointSpec } from '../../src/core/endpoint-spec.js';
import { MeshEvents } from '../../src/core/events.js';
import { ServiceHealth, parseHealthConfig } from '../../src/health/endpoint-health.js';

const BATCH = 1000;

function health(raw: Record<string, unknown>): { h: ServiceHealth; e: Endpoint } {
  const h = new ServiceHealth(parseHealthConfig(raw, 'b'), {
    service: 'b',
    changed: () => {},
    now: () => performance.now(),
    random: Math.random,
    log: { debug: () => {}, warn: () => {} },
    events: new MeshEvents(() => {}),
  });
  const e = new Endpoint(parseEndpointSpec('http://127.0.0.1:80', 'b'), {} as Dispatcher);
  h.add(e, false);
  return { h, e };
}

test('recording an outcome: breaker on vs off, vs opossum fire()', async ({ bench }) => {
  const on = health({ outlierDetection: { consecutive5xxErrors: 0 } });
  const off = health({ outlierDetection: { consecutive5xxErrors: 0 }, circuitBreaker: false });
  const cb = new CircuitBreaker(async () => 1, { timeout: false, rollingPercentilesEnabled: false, enableSnapshots: false, volumeThreshold: 1e9 });
  let i = 0;
  const r = await bench.compare(
    bench('health, breaker off', () => {
      for (let k = 0; k < BATCH; k++) off.h.record(off.e, k % 10 === 0 ? 'http-5xx' : 'success', 0);
    }),
    bench('health, breaker on', () => {
      for (let k = 0; k < BATCH; k++) on.h.record(on.e, k % 10 === 0 ? 'http-5xx' : 'success', 0);
    }),
    bench('opossum fire() (for comparison)', async () => {
      for (let k = 0; k < BATCH; k++) await cb.fire();
      i++;
    }),
    { time: 400 },
  );
  const per = (name: string) => ((r.get(name as never) as unknown as { latency: { mean: number } }).latency.mean * 1e6) / BATCH;
  const added = per('health, breaker on') - per('health, breaker off');
  console.log(`\nbreaker cost: ${per('health, breaker on').toFixed(0)} ns/outcome with, ${per('health, breaker off').toFixed(0)} ns without → adds ${added.toFixed(0)} ns (target ≤ 500); opossum fire(): ${per('opossum fire() (for comparison)').toFixed(0)} ns`);
  expect(i).toBeGreaterThan(0);
  on.h.close();
  off.h.close();
  cb.shutdown();
});
