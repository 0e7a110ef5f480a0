import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type ServiceConfig } from '../../src/index.js';
import { TokenBucket } from '../../src/layers/rate-limit.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { hold } from '../support/holding.js';

let backends: Backend[];
let mesh: Mesh | null = null;

beforeEach(async () => {
  backends = await startBackends(1);
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll(backends);
});

function meshWith(service: Partial<ServiceConfig>, extra: { now?: () => number } = {}): Mesh {
  mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url], ...service } }, ...extra });
  return mesh;
}

const get = (m: Mesh) =>
  request('http://api/x', { dispatcher: m.dispatcher }).then(
    async (r) => {
      await r.body.dump();
      return r.statusCode;
    },
    (e: { code?: string }) => e.code ?? 'error',
  );

describe('concurrency limits', () => {
  test('beyond maxRequests, requests queue up to maxPendingRequests; the rest fail fast with OVERLOADED', async () => {
    backends[0]!.fault = { kind: 'delay', ms: 200 };
    const m = meshWith({ limits: { maxRequests: 2, maxPendingRequests: 1, maxQueueTimeMs: 5_000 } });
    const overloaded: string[] = [];
    m.on('overloaded', (e) => overloaded.push(e.limit));
    const started = performance.now();
    const results = await Promise.all([get(m), get(m), get(m), get(m), get(m)]);
    expect(results.filter((r) => r === 200)).toHaveLength(3);
    expect(results.filter((r) => r === 'OVERLOADED')).toHaveLength(2);
    expect(overloaded).toEqual(['maxPendingRequests', 'maxPendingRequests']);
    // The queued request waited for a slot: two rounds of 200 ms.
    expect(performance.now() - started).toBeGreaterThanOrEqual(390);
    expect(backends[0]!.received).toHaveLength(3);
    expect(m.stats().services.api).toMatchObject({ overloaded: 2, pending: 0, inFlight: 0 });
  });

  test('a queued request that waits longer than maxQueueTimeMs fails with OVERLOADED', async () => {
    backends[0]!.fault = { kind: 'delay', ms: 300 };
    const m = meshWith({ limits: { maxRequests: 1, maxPendingRequests: 10, maxQueueTimeMs: 50 } });
    const results = await Promise.all([get(m), get(m)]);
    expect(results).toEqual([200, 'OVERLOADED']);
    expect(backends[0]!.received).toHaveLength(1);
  });

  test('every refusal is one overloaded event and one count in stats: a full queue, and a wait past maxQueueTimeMs', async () => {
    // The first request is held until the test answers it: the queued ones expire whatever the machine's speed.
    const held = hold(backends[0]!);
    const m = meshWith({ limits: { maxRequests: 1, maxPendingRequests: 2, maxQueueTimeMs: 50 } });
    const overloaded: string[] = [];
    m.on('overloaded', (e) => overloaded.push(e.limit));
    const first = get(m);
    const h = await held.next();
    // Two wait (and expire after 50 ms), two find the queue full.
    const refused = await Promise.all([get(m), get(m), get(m), get(m)]);
    h.answer();
    expect(await first).toBe(200);
    expect(refused).toEqual(['OVERLOADED', 'OVERLOADED', 'OVERLOADED', 'OVERLOADED']);
    expect(overloaded).toEqual(['maxPendingRequests', 'maxPendingRequests', 'maxQueueTimeMs', 'maxQueueTimeMs']);
    expect(m.stats().services.api).toMatchObject({ overloaded: 4, pending: 0, inFlight: 0 });
    expect(backends[0]!.received).toHaveLength(1);
  });

  test('a retry limits.maxRetries refuses is one overloaded event and one count in stats; the caller gets the response', async () => {
    backends[0]!.fault = { kind: 'status', status: 503 };
    const m = meshWith({ limits: { maxRetries: 0 }, retry: { attempts: 2, retryOn: ['5xx'], budget: false } });
    const overloaded: string[] = [];
    m.on('overloaded', (e) => overloaded.push(e.limit));
    expect(await get(m)).toBe(503);
    expect(overloaded).toEqual(['maxRetries']);
    expect(m.stats().services.api).toMatchObject({ overloaded: 1, retries: 0 });
    expect(backends[0]!.received).toHaveLength(1);
  });

  test('an aborted queued request frees its place and never reaches the backend', async () => {
    backends[0]!.fault = { kind: 'delay', ms: 150 };
    const m = meshWith({ limits: { maxRequests: 1, maxPendingRequests: 1 } });
    const first = get(m);
    const ac = new AbortController();
    const second = request('http://api/x', { dispatcher: m.dispatcher, signal: ac.signal }).catch((e: Error) => e.name);
    ac.abort();
    expect(await second).toBe('AbortError');
    const third = get(m);
    expect(await Promise.all([first, third])).toEqual([200, 200]);
    expect(backends[0]!.received).toHaveLength(2);
  });
});

describe('rate limit', () => {
  test('the token bucket refills at the configured rate (injected clock)', () => {
    let now = 0;
    const bucket = new TokenBucket({ requestsPerSecond: 10, ratePerMs: 10 / 1000, burst: 5 }, now);
    let taken = 0;
    for (let i = 0; i < 10; i++) if (bucket.tryTake(now)) taken++;
    expect(taken).toBe(5);
    // Over 10 s at 10/s: exactly 100 more, whatever the calling pattern.
    for (let t = 1; t <= 10_000; t++) {
      now = t;
      while (bucket.tryTake(now)) taken++;
    }
    expect(taken).toBe(105);
  });

  test('reserve() queues waiters in order and refuses waits beyond the limit', () => {
    const bucket = new TokenBucket({ requestsPerSecond: 10, ratePerMs: 1 / 100, burst: 1 }, 0);
    expect(bucket.reserve(0, 1000)).toBe(0);
    expect(bucket.reserve(0, 1000)).toBe(100);
    expect(bucket.reserve(0, 1000)).toBe(200);
    expect(bucket.reserve(0, 150)).toBe(-1);
    expect(bucket.reserve(300, 1000)).toBe(0);
  });

  test('reject mode: past the burst, requests fail with RATE_LIMITED and never reach the backend', async () => {
    let now = 0;
    const m = meshWith({ rateLimit: { requestsPerSecond: 2, burst: 3 } }, { now: () => now });
    const limited: string[] = [];
    m.on('rate-limited', (e) => limited.push(e.scope));
    const results: (number | string)[] = [];
    for (let i = 0; i < 5; i++) results.push(await get(m));
    expect(results).toEqual([200, 200, 200, 'RATE_LIMITED', 'RATE_LIMITED']);
    now = 500; // one token back
    results.push(await get(m), await get(m));
    expect(results.slice(5)).toEqual([200, 'RATE_LIMITED']);
    expect(backends[0]!.received).toHaveLength(4);
    expect(limited).toHaveLength(3);
    expect(m.stats().services.api!.rateLimited).toBe(3);
  });

  test('wait mode: requests wait for their token, in order, up to maxWaitMs', async () => {
    const m = meshWith({ rateLimit: { requestsPerSecond: 20, burst: 1, mode: 'wait', maxWaitMs: 120 } });
    const started = performance.now();
    const results = await Promise.all([get(m), get(m), get(m), get(m)]);
    // Tokens at 0, 50, 100 ms; the fourth would wait 150 ms > 120 ms.
    expect(results).toEqual([200, 200, 200, 'RATE_LIMITED']);
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);
  });

  test('per-endpoint buckets steer traffic to endpoints with tokens left', async () => {
    const more = await startBackends(1, 'c');
    backends.push(...more);
    const m = (mesh = createMesh({
      services: {
        api: {
          endpoints: backends.map((b) => b.url),
          balancer: 'round-robin',
          rateLimit: { requestsPerSecond: 1000, perEndpoint: { requestsPerSecond: 0.001, burst: 2 } },
        },
      },
    }));
    const results: (number | string)[] = [];
    for (let i = 0; i < 5; i++) results.push(await get(m));
    expect(results).toEqual([200, 200, 200, 200, 'RATE_LIMITED']);
    expect(backends.map((b) => b.received.length)).toEqual([2, 2]);
  });

  test('bad rate-limit config is rejected with its path', () => {
    expect(() => createMesh({ services: { api: { endpoints: [backends[0]!.url], rateLimit: {} as never } } })).toThrowError(
      /services\.api\.rateLimit\.requestsPerSecond: required/,
    );
    expect(() =>
      createMesh({ services: { api: { endpoints: [backends[0]!.url], rateLimit: { requestsPerSecond: 0 } } } }),
    ).toThrowError(/services\.api\.rateLimit\.requestsPerSecond: expected a number > 0/);
    expect(() =>
      createMesh({ services: { api: { endpoints: [backends[0]!.url], limits: { maxRequests: 0 } } } }),
    ).toThrowError(/services\.api\.limits\.maxRequests/);
    expect(() =>
      createMesh({ services: { api: { endpoints: [backends[0]!.url], retry: { retryOn: ['sometimes'] as never } } } }),
    ).toThrowError(/services\.api\.retry\.retryOn\[0\]/);
  });
});
