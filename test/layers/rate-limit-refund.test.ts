/**
 * Wait mode reserves a token up front: a request that ends before its turn (its caller's abort,
 * its deadline) gives it back, so the bucket is not left in debt for requests that never went.
 * The service's clock is injected: the bucket refills only when the test moves it.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { TokenBucket } from '../../src/layers/rate-limit.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

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

const get = (m: Mesh, path: string, signal?: AbortSignal) =>
  request(`http://api${path}`, { dispatcher: m.dispatcher, signal }).then(
    async (r) => {
      await r.body.dump();
      return r.statusCode;
    },
    (e: { code?: unknown; name?: string }) => (typeof e.code === 'string' ? e.code : (e.name ?? 'error')),
  );

describe('rate limit, wait mode', () => {
  test('a request aborted while it waits for its token gives the token back', async () => {
    let now = 0;
    // 20/s, burst 1: a token every 50 ms of the injected clock; a wait of up to 60 ms is allowed.
    mesh = createMesh({
      now: () => now,
      services: { api: { endpoints: [backends[0]!.url], retry: false, rateLimit: { requestsPerSecond: 20, burst: 1, mode: 'wait', maxWaitMs: 60 } } },
    });
    const m = mesh;
    const limited: string[] = [];
    m.on('rate-limited', (e) => limited.push(e.scope));
    expect(await get(m, '/a')).toBe(200); // the burst's token
    const ac = new AbortController();
    const waiter = get(m, '/waiter', ac.signal); // reserves the token due at 50 ms
    ac.abort();
    expect(await waiter).toBe('AbortError');
    now = 50;
    // One token has come back (the waiter's) and one refilled: the next goes at once, the one
    // after waits 50 ms for its own. Were the waiter's token kept, the second would have to wait
    // 100 ms, past maxWaitMs, and be refused.
    expect(await Promise.all([get(m, '/b'), get(m, '/c')])).toEqual([200, 200]);
    expect(limited).toEqual([]);
    expect(m.stats().services.api!.rateLimited).toBe(0);
    expect(backends[0]!.received.map((r) => r.url)).toEqual(['/a', '/b', '/c']);
  });

  test('a request whose deadline ends its wait gives the token back', async () => {
    let now = 0;
    mesh = createMesh({
      now: () => now,
      services: {
        api: {
          endpoints: [backends[0]!.url],
          retry: false,
          rateLimit: { requestsPerSecond: 20, burst: 1, mode: 'wait', maxWaitMs: 60 },
          routes: [{ match: [{ uri: { prefix: '/short' } }], timeoutMs: 1 }, {}],
        },
      },
    });
    const m = mesh;
    expect(await get(m, '/a')).toBe(200);
    // It would wait 50 ms for its token; its 1 ms deadline ends it first.
    expect(await get(m, '/short')).toBe('TIMEOUT');
    now = 50;
    // As above: its token came back, so both go (the second after its own 50 ms).
    expect(await Promise.all([get(m, '/b'), get(m, '/c')])).toEqual([200, 200]);
    expect(m.stats().services.api!.rateLimited).toBe(0);
    expect(backends[0]!.received.map((r) => r.url)).toEqual(['/a', '/b', '/c']);
  });

  test('a refund never puts a new reservation ahead of a request already waiting', () => {
    const bucket = new TokenBucket({ requestsPerSecond: 10, ratePerMs: 1 / 100, burst: 1 }, 0);
    expect(bucket.reserve(0, 1000)).toBe(0);
    expect(bucket.reserve(0, 1000)).toBe(100); // given up: refunded below
    expect(bucket.reserve(0, 1000)).toBe(200); // still waiting, due at 200
    bucket.refund(10);
    // The next is due with the last one waiting, not before it.
    expect(bucket.reserve(10, 1000)).toBe(190);
    // Refunds never fill the bucket past its burst.
    bucket.refund(10_000);
    bucket.refund(10_000);
    expect(bucket.reserve(10_000, 1000)).toBe(0);
    expect(bucket.reserve(10_000, 1000)).toBe(100);
  });
});
