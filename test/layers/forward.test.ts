// Routes, splits and mirrors that send requests to another service of the mesh (the forward and
// mirror layers, service/handoff.ts), through createMesh to real HTTP backends.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, InvalidConfigError, type Mesh, type MeshConfig } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';
import { seeded, tolerance } from '../support/seeded.js';

let reviews: Backend;
let canaryV1: Backend;
let canaryV2: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  reviews = await startBackend('reviews');
  canaryV1 = await startBackend('canary-v1');
  canaryV2 = await startBackend('canary-v2');
});

afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close();
  mesh = null;
  await closeAll([reviews, canaryV1, canaryV2]);
});

/** Two services: `reviews` (one endpoint) and `canary` (v1 and v2 subsets); `routes` are reviews'. */
function twoServices(routes: NonNullable<MeshConfig['services'][string]['routes']>, extra: Partial<MeshConfig> = {}): Mesh {
  mesh = createMesh({
    services: {
      reviews: { endpoints: [reviews.url], routes },
      canary: {
        endpoints: [
          { url: canaryV1.url, labels: { version: 'v1' } },
          { url: canaryV2.url, labels: { version: 'v2' } },
        ],
        balancer: 'round-robin',
        subsets: { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' } } },
      },
    },
    ...extra,
  });
  return mesh;
}

async function hit(m: Mesh, path = '/', host = 'reviews'): Promise<{ status: number; backend: string; host: string }> {
  const res = await request(`http://${host}${path}`, { dispatcher: m.dispatcher });
  const text = await res.body.text();
  const body = res.statusCode === 200 ? (JSON.parse(text) as { backend: string; host: string }) : { backend: '', host: '' };
  return { status: res.statusCode, ...body };
}

describe('a route to another service', () => {
  test('a 90/10 split across two services: each request goes to the chosen service, and stats say where', async () => {
    const n = 400;
    const m = twoServices([{ split: [{ weight: 90 }, { service: 'canary', weight: 10 }] }], { random: seeded(7) });
    const events: { service: string; via: string | undefined }[] = [];
    m.on('request', (e) => events.push({ service: e.service, via: e.via }));
    for (let i = 0; i < n; i++) await hit(m, `/r${i}`);
    const toCanary = canaryV1.received.length + canaryV2.received.length;
    expect(reviews.received.length + toCanary).toBe(n);
    expect(Math.abs(toCanary - n * 0.1)).toBeLessThan(tolerance(n, 0.1));
    // Both of the canary's endpoints take its share: its own balancer picks among them.
    expect(canaryV1.received.length).toBeGreaterThan(0);
    expect(canaryV2.received.length).toBeGreaterThan(0);
    const stats = m.stats().services;
    expect(stats.reviews!.routedTo).toEqual({ canary: toCanary });
    expect(stats.canary!.receivedFrom).toEqual({ reviews: toCanary });
    expect(stats.canary!.requests).toBe(toCanary);
    expect(stats.reviews!.requests).toBe(n - toCanary);
    expect(events.filter((e) => e.service === 'canary' && e.via === 'reviews')).toHaveLength(toCanary);
    expect(events.filter((e) => e.service === 'reviews' && e.via === undefined)).toHaveLength(n - toCanary);
    // The Host the caller used goes on to the other service's endpoints, as Envoy keeps the authority.
    expect(canaryV1.received[0]!.headers.host).toBe('reviews');
  });

  test("a route to another service's subset reaches only that subset's endpoints", async () => {
    const m = twoServices([{ match: [{ uri: { prefix: '/v2' } }], service: 'canary', subset: 'v2' }, { service: 'canary' }]);
    for (let i = 0; i < 6; i++) expect((await hit(m, `/v2/${i}`)).backend).toBe('canary-v2');
    expect(canaryV1.received).toHaveLength(0);
    // The second route takes the whole canary service: its round robin spreads over both subsets.
    const spread = new Set<string>();
    for (let i = 0; i < 4; i++) spread.add((await hit(m, '/other')).backend);
    expect(spread).toEqual(new Set(['canary-v1', 'canary-v2']));
    expect(reviews.received).toHaveLength(0);
  });

  test("the other service's own policies apply: its retry, where the route sets none", async () => {
    canaryV1.fault = { kind: 'status', status: 503 };
    mesh = createMesh({
      services: {
        reviews: { endpoints: [reviews.url], retry: false, routes: [{ service: 'canary' }] },
        canary: { endpoints: [canaryV1.url, canaryV2.url], balancer: 'round-robin', retry: { attempts: 3, retryOn: ['5xx'], backoff: { baseMs: 1, maxMs: 1 } } },
      },
    });
    // reviews does not retry, canary does: every request ends on the healthy endpoint.
    for (let i = 0; i < 4; i++) expect((await hit(mesh)).backend).toBe('canary-v2');
    expect(mesh.stats().services.canary!.retries).toBeGreaterThan(0);
  });

  test('a route timeout is applied in the other service', async () => {
    canaryV1.fault = { kind: 'hang' };
    mesh = createMesh({
      services: {
        reviews: { endpoints: [reviews.url], routes: [{ service: 'canary', timeoutMs: 200, retry: false }] },
        canary: { endpoints: [canaryV1.url] },
      },
    });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const pending = hit(mesh).catch((e: Error) => e);
    await vi.waitFor(() => expect(canaryV1.received).toHaveLength(1));
    await vi.advanceTimersByTimeAsync(200);
    expect(await pending).toMatchObject({ code: 'TIMEOUT', service: 'canary' });
  });

  test('routes that send A to B and B to A make one hop each, never a loop', async () => {
    mesh = createMesh({
      services: {
        reviews: { endpoints: [reviews.url], routes: [{ service: 'canary' }] },
        canary: { endpoints: [canaryV1.url], routes: [{ service: 'reviews' }] },
      },
    });
    expect((await hit(mesh, '/', 'reviews')).backend).toBe('canary-v1');
    expect((await hit(mesh, '/', 'canary')).backend).toBe('reviews');
    const stats = mesh.stats().services;
    expect(stats.reviews!.routedTo).toEqual({ canary: 1 });
    expect(stats.canary!.routedTo).toEqual({ reviews: 1 });
  });

  test("a fault of the route applies before the hand-over; the request never reaches the other service", async () => {
    const m = twoServices([{ service: 'canary', fault: { abort: { httpStatus: 418, percent: 100 } } }]);
    expect((await hit(m)).status).toBe(418);
    expect(canaryV1.received.length + canaryV2.received.length).toBe(0);
  });
});

describe('a mirror to another service', () => {
  test('the primary answers, the shadow gets a copy with the -shadow Host, and its failure never reaches the caller', async () => {
    canaryV2.fault = { kind: 'status', status: 500 };
    const m = twoServices([{ mirror: { service: 'canary', subset: 'v2' }, mirrors: [{ service: 'canary', subset: 'v1', percent: 100 }] }]);
    for (let i = 0; i < 3; i++) expect(await hit(m, `/m${i}`)).toMatchObject({ status: 200, backend: 'reviews' });
    await vi.waitFor(() => expect(canaryV2.received.map((r) => r.url)).toEqual(['/m0', '/m1', '/m2']));
    await vi.waitFor(() => expect(canaryV1.received.map((r) => r.url)).toEqual(['/m0', '/m1', '/m2']));
    expect(canaryV2.received[0]!.headers.host).toBe('reviews-shadow');
    const stats = m.stats().services;
    expect(stats.reviews!.mirroredTo).toEqual({ canary: 6 });
    expect(stats.canary!.receivedFrom).toEqual({ reviews: 6 });
  });

  test('a shadow that hangs or is down never slows or fails the caller', async () => {
    canaryV1.fault = { kind: 'hang' };
    await canaryV2.stop();
    const m = twoServices([{ mirrors: [{ service: 'canary', subset: 'v1' }, { service: 'canary', subset: 'v2' }] }]);
    for (let i = 0; i < 3; i++) expect((await hit(m, `/h${i}`)).backend).toBe('reviews');
    await vi.waitFor(() => expect(canaryV1.received).toHaveLength(3));
    // Closing the mesh ends the hanging copies (the other service keeps their books).
    await m.close({ graceMs: 0 });
    mesh = null;
  });

  test('a copy to another service never holds a close: it is cancelled when close starts, however long the grace', async () => {
    // The shadow takes the copy and never answers; the server sees whether the mesh hung up on it.
    let hungUp = false;
    canaryV1.handler = (_req, res) => res.on('close', () => (hungUp = !res.writableEnded));
    const m = twoServices([{ mirror: { service: 'canary', subset: 'v1' } }]);
    expect(await hit(m, '/c')).toMatchObject({ status: 200, backend: 'reviews' });
    await vi.waitFor(() => expect(canaryV1.received).toHaveLength(1));
    // With the copy held, this close would wait out all of its 60 s grace (past the test's timeout).
    await m.close({ graceMs: 60_000 });
    mesh = null;
    await vi.waitFor(() => expect(hungUp).toBe(true));
    // Cancelled, not failed: nothing counted against the shadow's endpoint.
    expect(m.stats().services.canary!.failures).toBe(0);
  });
});

test('mirrors that copy A to B and B to A make one copy each, never a chain', async () => {
  mesh = createMesh({
    services: {
      reviews: { endpoints: [reviews.url], routes: [{ mirror: { service: 'canary' } }] },
      canary: { endpoints: [canaryV1.url], routes: [{ mirror: { service: 'reviews' } }] },
    },
  });
  expect((await hit(mesh, '/a', 'reviews')).backend).toBe('reviews');
  await vi.waitFor(() => expect(canaryV1.received.map((r) => r.url)).toEqual(['/a']));
  expect((await hit(mesh, '/b', 'canary')).backend).toBe('canary-v1');
  await vi.waitFor(() => expect(reviews.received.map((r) => r.url)).toEqual(['/a', '/b']));
  // The copies entered past the routes: canary's mirror never copied the copy back.
  const stats = mesh.stats().services;
  expect([stats.reviews!.mirroredTo, stats.canary!.mirroredTo]).toEqual([{ canary: 1 }, { reviews: 1 }]);
  await vi.waitFor(() => expect(Object.values(mesh!.stats().services).map((x) => x.requests)).toEqual([2, 2])); // counted as each ends
});

describe('config', () => {
  const base = (routes: unknown): MeshConfig =>
    ({
      services: {
        reviews: { endpoints: ['http://127.0.0.1:1'], routes },
        canary: { endpoints: ['http://127.0.0.1:2'], subsets: { v1: { labels: { version: 'v1' } } } },
      },
    }) as MeshConfig;
  test.each([
    ['unknown service', [{ service: 'nope' }], 'services.reviews.routes[0].service', /unknown service "nope" \(services: reviews, canary\)/],
    ['unknown subset of the other service', [{ service: 'canary', subset: 'v9' }], 'services.reviews.routes[0].subset', /unknown subset "v9" of service "canary" \(defined: v1\)/],
    ['unknown service in a split', [{ split: [{ weight: 50 }, { service: 'nope', weight: 50 }] }], 'services.reviews.routes[0].split[1].service', /unknown service/],
    ['split weights not 100', [{ split: [{ weight: 50 }, { service: 'canary', weight: 40 }] }], 'services.reviews.routes[0].split', /add up to 100, got 90/],
    ['split entry without weight', [{ split: [{ service: 'canary' }] }], 'services.reviews.routes[0].split[0].weight', /required/],
    ['service and split', [{ service: 'canary', split: [{ weight: 100 }] }], 'services.reviews.routes[0].split', /either "service" or "split"/],
    ['unknown service in a mirror', [{ mirrors: [{ service: 'nope' }] }], 'services.reviews.routes[0].mirrors[0].service', /unknown service/],
    ['a subset of its own service that does not exist', [{ split: [{ subset: 'v1', weight: 100 }] }], 'services.reviews.routes[0].split[0].subset', /unknown subset/],
  ])('%s is refused at createMesh, naming the field', (_name, routes, path, message) => {
    const err = (() => {
      try {
        createMesh(base(routes));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect((err as InvalidConfigError).message).toContain(path);
    expect((err as InvalidConfigError).message).toMatch(message);
  });

  test("a route naming its own service is a route to it, and toJSON round-trips routes to other services", async () => {
    const m = twoServices([
      { match: [{ uri: { prefix: '/self' } }], service: 'reviews' },
      { split: [{ weight: 80 }, { service: 'canary', subset: 'v1', weight: 20 }], mirror: { service: 'canary', percent: 5 }, mirrors: [{ subset: undefined, percent: 1 }] },
    ]);
    expect((await hit(m, '/self')).backend).toBe('reviews');
    expect(m.stats().services.reviews!.routedTo).toEqual({});
    const json = JSON.parse(JSON.stringify(m)) as MeshConfig;
    expect(json.services.reviews!.routes![1]).toMatchObject({
      split: [{ weight: 80 }, { service: 'canary', subset: 'v1', weight: 20 }],
      mirror: { service: 'canary', percent: 5 },
      mirrors: [{ percent: 1 }],
    });
    const again = createMesh(json);
    try {
      expect(JSON.parse(JSON.stringify(again))).toEqual(json);
    } finally {
      await again.close();
    }
  });
});
