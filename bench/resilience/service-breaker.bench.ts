// Per-request cost of the service breaker (serviceBreaker): opossum's fire() around an action
// that returns an immediately-resolved promise, with the options the layer uses, against awaiting
// the same action bare. What the layer adds per request on top is one `call.onEnd` listener.
// No target was set; for scale, a loopback request through meshlet costs tens of µs.
import { expect, test } from 'vitest';
import CircuitBreaker from 'opossum';

const BATCH = 1000;

test('opossum fire() around an immediately-resolved promise vs the bare promise', async ({ bench }) => {
  const action = (): Promise<void> => Promise.resolve();
  // As layers/service-breaker.ts builds it (its defaults: 50 %, 20 requests, 10 s in 10 buckets, 30 s).
  const cb = new CircuitBreaker(action, {
    timeout: false,
    errorThresholdPercentage: 50,
    volumeThreshold: 20,
    rollingCountTimeout: 10_000,
    rollingCountBuckets: 10,
    resetTimeout: 30_000,
    rollingPercentilesEnabled: false,
    enableSnapshots: false,
  });
  let fired = 0;
  const r = await bench.compare(
    bench('bare promise', async () => {
      for (let k = 0; k < BATCH; k++) await action();
    }),
    bench('opossum fire()', async () => {
      for (let k = 0; k < BATCH; k++) await cb.fire();
      fired += BATCH;
    }),
    { time: 400 },
  );
  const per = (name: string) => ((r.get(name as never) as unknown as { latency: { mean: number } }).latency.mean * 1e6) / BATCH;
  const added = per('opossum fire()') - per('bare promise');
  console.log(`\nservice breaker cost: opossum fire() ${per('opossum fire()').toFixed(0)} ns/call, bare promise ${per('bare promise').toFixed(0)} ns → adds ${added.toFixed(0)} ns per request`);
  expect(fired).toBeGreaterThan(0);
  expect(cb.closed).toBe(true);
  cb.shutdown();
});
