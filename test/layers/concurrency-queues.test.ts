/**
 * The concurrency layer's queues as the caller sees them: a request waiting for a subset's slot
 * holds none of the service's, and `pending` counts exactly the requests still waiting — the
 * service's queue and the subsets', none that was aborted while it waited.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { hold, until } from '../support/holding.js';

let backends: Backend[];
let mesh: Mesh | null = null;

beforeEach(async () => {
  backends = await startBackends(2);
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll(backends);
});

const get = (m: Mesh, path: string, opts: { headers?: Record<string, string>; signal?: AbortSignal } = {}) =>
  request(`http://api${path}`, { dispatcher: m.dispatcher, ...opts }).then(
    async (r) => `${r.statusCode} ${await r.body.text()}`,
    (e: { code?: unknown; name?: string }) => (typeof e.code === 'string' ? e.code : (e.name ?? 'error')),
  );

const stats = (m: Mesh) => m.stats().services.api!;

describe('a subset with limits of its own', () => {
  test('a request waiting for the subset holds no service slot: another subset still gets one; when the first ends, the waiter goes', async () => {
    const held = hold(...backends);
    mesh = createMesh({
      services: {
        api: {
          endpoints: [
            { url: backends[0]!.url, labels: { version: 'v1' } },
            { url: backends[1]!.url, labels: { version: 'v2' } },
          ],
          retry: false,
          limits: { maxRequests: 2, maxPendingRequests: 0 },
          subsets: { v1: { labels: { version: 'v1' }, limits: { maxRequests: 1, maxPendingRequests: 5, maxQueueTimeMs: 60_000 } }, v2: { labels: { version: 'v2' } } },
          routes: [{ match: [{ headers: { 'x-v': { exact: '1' } } }], subset: 'v1' }, { subset: 'v2' }],
        },
      },
    });
    const m = mesh;
    const overloaded: string[] = [];
    m.on('overloaded', (e) => overloaded.push(e.limit));
    const v1 = { headers: { 'x-v': '1' } };
    const first = get(m, '/v1-first', v1);
    const h1 = await held.next();
    const second = get(m, '/v1-second', v1);
    // The second v1 request waits in the subset's queue: pending says so.
    await until(() => stats(m).pending === 1);
    // The service has 2 slots and 1 request in flight: a v2 request takes the other one.
    const other = get(m, '/v2');
    const h2 = await held.next();
    expect(h2.req.url).toBe('/v2');
    expect(stats(m)).toMatchObject({ inFlight: 2, pending: 1, overloaded: 0 });
    // The first v1 request ends: its service slot goes back before its subset slot, so the waiter
    // (v1's slot, then the service's) goes at once, the v2 request still in flight.
    h1.answer(200, 'first');
    const h3 = await held.next();
    expect(h3.req.url).toBe('/v1-second');
    expect(stats(m)).toMatchObject({ pending: 0, overloaded: 0 });
    h3.answer(200, 'second');
    h2.answer(200, 'other');
    expect(await Promise.all([first, second, other])).toEqual(['200 first', '200 second', '200 other']);
    expect(overloaded).toEqual([]);
  });
});

describe('pending', () => {
  test('a request aborted while it waits is no longer pending, though the slot it waited for is still taken', async () => {
    const held = hold(backends[0]!);
    mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url], retry: false, limits: { maxRequests: 1, maxPendingRequests: 10, maxQueueTimeMs: 60_000 } } } });
    const m = mesh;
    const first = get(m, '/first');
    const h = await held.next();
    const aborts = [new AbortController(), new AbortController(), new AbortController()];
    const queued = aborts.map((ac, i) => get(m, `/q${i}`, { signal: ac.signal }));
    await until(() => stats(m).pending === 3);
    aborts[0]!.abort();
    aborts[1]!.abort();
    expect(await Promise.all(queued.slice(0, 2))).toEqual(['AbortError', 'AbortError']);
    expect(stats(m)).toMatchObject({ pending: 1, inFlight: 1 });
    aborts[2]!.abort();
    expect(await queued[2]).toBe('AbortError');
    expect(stats(m)).toMatchObject({ pending: 0, inFlight: 1 });
    // The queue still works: the next request waits, and goes when the slot frees.
    const last = get(m, '/last');
    await until(() => stats(m).pending === 1);
    h.answer(200, 'first');
    (await held.next()).answer(200, 'last');
    expect(await Promise.all([first, last])).toEqual(['200 first', '200 last']);
    expect(stats(m)).toMatchObject({ pending: 0, overloaded: 0 });
    expect(backends[0]!.received.map((r) => r.url)).toEqual(['/first', '/last']);
  });

  test('a subset request aborted while it waits for the subset is no longer pending', async () => {
    const held = hold(backends[0]!);
    mesh = createMesh({
      services: {
        api: {
          endpoints: [{ url: backends[0]!.url, labels: { version: 'v1' } }],
          retry: false,
          subsets: { v1: { labels: { version: 'v1' }, limits: { maxRequests: 1, maxPendingRequests: 5, maxQueueTimeMs: 60_000 } } },
          routes: [{ subset: 'v1' }],
        },
      },
    });
    const m = mesh;
    const first = get(m, '/first');
    const h = await held.next();
    const ac = new AbortController();
    const waiting = get(m, '/waiting', { signal: ac.signal });
    await until(() => stats(m).pending === 1);
    ac.abort();
    expect(await waiting).toBe('AbortError');
    expect(stats(m).pending).toBe(0);
    h.answer(200, 'first');
    expect(await first).toBe('200 first');
  });
});

describe("a subset's limits.maxRetries", () => {
  // The retry limit is the service's (its RetryLayer counts retries against the service's limit
  // only): a subset's would be accepted and silently ignored, so createMesh refuses it.
  test('is refused at createMesh, naming its path; the same at the service is accepted', () => {
    const config = (limits: Record<string, unknown>, subsetLimits: Record<string, unknown>) => ({
      services: { api: { endpoints: [{ url: backends[0]!.url, labels: { version: 'v1' } }], limits, subsets: { v1: { labels: { version: 'v1' }, limits: subsetLimits } } } },
    });
    expect(() => createMesh(config({}, { maxRequests: 5, maxRetries: 1 }))).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG', path: 'services.api.subsets.v1.limits.maxRetries', message: expect.stringContaining("the service's") }),
    );
    mesh = createMesh(config({ maxRetries: 1 }, { maxRequests: 5 }));
    expect(mesh.toJSON()).toMatchObject({ services: { api: { limits: { maxRetries: 1 }, subsets: { v1: { limits: { maxRequests: 5 } } } } } });
  });
});
