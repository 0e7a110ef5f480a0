import { expect, test } from 'vitest';
import { AGE_OUT_MS, RecentLatency, rifBucket } from '../../src/load/recent-latency.js';
import { EndpointLoad } from '../../src/load/endpoint-load.js';

test('RIF buckets are log2: 0, 1, 2–3, 4–7, … 64 and over', () => {
  expect([0, 1, 2, 3, 4, 7, 8, 15, 16, 63, 64, 10_000].map(rifBucket)).toEqual([0, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 7]);
});

test('a stall moves the estimate by at most 8^0.25, however many answers it releases at once; a lasting change is followed', () => {
  const one = new RecentLatency();
  one.observe(1, 0, 0, false);
  one.observe(30, 100, 0, false); // a 30 ms stall on a 1 ms replica
  expect(one.atRif(0, 100)).toBeCloseTo(8 ** 0.25, 6);
  const burst = new RecentLatency();
  burst.observe(1, 0, 0, false);
  for (let k = 0; k < 32; k++) burst.observe(30, 100 + k * 0.01, 0, false); // 32 in flight, all answered together
  expect(burst.atRif(0, 101)).toBeLessThan(1.75);
  const r = new RecentLatency();
  r.observe(1, 0, 0, false);
  for (let t = 1; t <= 200; t++) r.observe(10, t, 0, false); // it really is 10 ms now, one answer per ms
  expect(r.atRif(0, 200)).toBeGreaterThan(9.5);
  expect(r.atRif(0, 200)).toBeLessThanOrEqual(10);
  for (let t = 201; t <= 400; t++) r.observe(1, t, 0, false); // and back
  expect(r.atRif(0, 400)).toBeLessThan(1.05);
});

test('an estimate with no sample for AGE_OUT_MS starts afresh: lower at once (a recovered replica reads fast), higher by at most 4×', () => {
  const r = new RecentLatency();
  for (let t = 0; t < 20; t++) r.observe(100, t, 0, false);
  r.observe(1, 19 + AGE_OUT_MS + 1, 0, false);
  expect(r.atRif(0, 20 + AGE_OUT_MS)).toBe(1);
  expect(r.ageMs(20 + AGE_OUT_MS)).toBe(0);
  // The first answer after a quiet spell is the one a stall delays most often: 25 ms on a 1 ms replica reads 4 ms.
  r.observe(25, 21 + 2 * AGE_OUT_MS, 0, false);
  expect(r.atRif(0, 21 + 2 * AGE_OUT_MS)).toBe(4);
});

test('the estimate read is the one for the RIF asked, while it is current; else the one over all RIFs', () => {
  const r = new RecentLatency();
  expect(r.atRif(0, 0)).toBe(0);
  expect(r.ageMs(0)).toBe(Infinity);
  r.observe(10, 0, 0, false); // idle: 10 ms
  r.observe(2, 50, 8, false); // at 8 in flight: 2 ms
  expect(r.atRif(0, 51)).toBe(10);
  expect(r.atRif(9, 51)).toBe(2); // same bucket as 8
  const all = r.atRif(3, 51); // bucket 2–3 never measured: the estimate over all RIFs
  expect(all).toBeGreaterThan(2);
  expect(all).toBeLessThan(10);
  // Past AGE_OUT_MS a bucket's estimate is not current: the overall one is read.
  r.observe(5, 600, 3, false);
  const later = 600 + AGE_OUT_MS - 100; // the RIF-8 sample (t = 50) is old now, the RIF-3 one is not
  expect(r.atRif(3, later)).toBe(5);
  expect(r.atRif(8, later)).not.toBe(2);
  expect(r.atRif(8, later)).toBe(r.atRif(30, later)); // both read the estimate over all RIFs
  const out = new Float64Array(2);
  r.read(3, 700, out);
  expect([out[0], out[1]]).toEqual([100, 5]);
});

test('failures are not clipped: at least 100 ms, then twice the estimate each time', () => {
  const r = new RecentLatency();
  r.observe(1, 0, 0, false);
  r.observe(0.2, 1, 0, true); // a refused connection, or a fast 503
  expect(r.atRif(0, 1)).toBe(100);
  r.observe(0.2, 2, 0, true);
  expect(r.atRif(0, 2)).toBe(200);
});

test('EndpointLoad feeds both estimates; start returns the RIF the request met', () => {
  const load = new EndpointLoad(300);
  expect(load.start(0)).toBe(0);
  expect(load.start(0)).toBe(1);
  load.observeLatency(4, 5, 1);
  expect(load.latencyMs(5)).toBe(4);
  expect(load.recent.atRif(1, 5)).toBe(4);
  load.observeLatency(0.1, 6, 0, true); // a 5xx: peak EWMA takes it as it is, recent as a failure
  expect(load.latencyMs(6)).toBeLessThan(4);
  expect(load.recent.atRif(0, 6)).toBe(100);
  load.observeFailure(1, 7, 1);
  expect(load.recent.atRif(1, 7)).toBe(100);
});
