import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type ServiceConfig, type MeshConfig } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';
import { hold } from '../support/holding.js';
import { seeded, tolerance } from '../support/seeded.js';

let v1: Backend[];
let v2: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  v1 = [await startBackend('v1a'), await startBackend('v1b')];
  v2 = await startBackend('v2a');
});

afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close();
  mesh = null;
  await closeAll([...v1, v2]);
});

function meshWith(service: Partial<ServiceConfig>, extra: Partial<MeshConfig> = {}): Mesh {
  mesh = createMesh({
    services: {
      catalog: {
        endpoints: [
          ...v1.map((b) => ({ url: b.url, labels: { version: 'v1' } })),
          { url: v2.url, labels: { version: 'v2' } },
        ],
        balancer: 'round-robin',
        subsets: { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' } } },
        ...service,
      },
    },
    ...extra,
  });
  return mesh;
}

async function hit(m: Mesh, path = '/', opts: Parameters<typeof request>[1] = {}): Promise<{ status: number; backend: string; body: string }> {
  const res = await request(`http://catalog${path}`, { dispatcher: m.dispatcher, ...opts });
  const body = await res.body.text();
  let backend = '';
  try {
    backend = (JSON.parse(body) as { backend: string }).backend;
  } catch {
    // a locally answered fault
  }
  return { status: res.statusCode, backend, body };
}

describe('weighted split', () => {
  test('a 90/10 split holds within a tolerance derived from the sample size', async () => {
    const m = meshWith({ routes: [{ split: { v1: 90, v2: 10 } }] }, { random: seeded(7) });
    const n = 1000;
    let toV2 = 0;
    for (let i = 0; i < n; i++) if ((await hit(m)).backend === 'v2a') toV2++;
    expect(Math.abs(toV2 - n * 0.1)).toBeLessThanOrEqual(tolerance(n, 0.1));
    expect(v1[0]!.received.length + v1[1]!.received.length + v2.received.length).toBe(n);
  });
});

describe('ordered matching', () => {
  const routes: ServiceConfig['routes'] = [
    { name: 'canary', match: [{ headers: { 'x-canary': { exact: 'true' } } }], subset: 'v2' },
    { name: 'admin', match: [{ uri: { prefix: '/admin' }, method: 'POST' }, { queryParams: { debug: { present: true } } }], subset: 'v2' },
    { name: 'api', match: [{ uri: { regex: '/api/v[0-9]+/.*' } }], subset: 'v1' },
  ];

  test('the first matching route wins; unmatched requests go to the whole service', async () => {
    const m = meshWith({ routes });
    expect((await hit(m, '/anything', { headers: { 'x-canary': 'true' } })).backend).toBe('v2a');
    expect((await hit(m, '/api/v2/items', { headers: { 'x-canary': 'true' } })).backend).toBe('v2a');
    for (let i = 0; i < 4; i++) expect((await hit(m, '/api/v2/items')).backend).toMatch(/^v1/);
    expect((await hit(m, '/admin/x', { method: 'POST', body: 'x' })).backend).toBe('v2a');
    // GET /admin does not match the method condition of the first block.
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) seen.add((await hit(m, '/admin/x')).backend);
    expect([...seen].sort()).toEqual(['v1a', 'v1b', 'v2a']);
    expect((await hit(m, '/x?debug=1')).backend).toBe('v2a');
  });

  test('header matching is case-insensitive on the name; exact is exact on the value', async () => {
    const m = meshWith({ routes });
    expect((await hit(m, '/', { headers: { 'X-Canary': 'true' } })).backend).toBe('v2a');
    for (let i = 0; i < 3; i++) expect((await hit(m, '/api/v1/a', { headers: { 'x-canary': 'TRUE' } })).backend).toMatch(/^v1/);
  });
});

describe('fault injection', () => {
  test('abort answers the given share locally with the status, never reaching a backend', async () => {
    const m = meshWith({ routes: [{ fault: { abort: { httpStatus: 503, percent: 30 } } }] }, { random: seeded(11) });
    const n = 600;
    let aborted = 0;
    for (let i = 0; i < n; i++) {
      const r = await hit(m);
      if (r.status === 503) {
        aborted++;
        expect(r.body).toBe('fault filter abort');
      }
    }
    expect(Math.abs(aborted - n * 0.3)).toBeLessThanOrEqual(tolerance(n, 0.3));
    expect(v1[0]!.received.length + v1[1]!.received.length + v2.received.length).toBe(n - aborted);
  });

  test('delay holds the matched requests for the fixed delay; others are not held', async () => {
    // Fake timers: the delay is a timer, so the test reads order, not the machine's speed.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const m = meshWith({ routes: [{ match: [{ uri: { exact: '/slow' } }], fault: { delay: { fixedDelayMs: 60_000 } } }], retry: false });
    let slowDone = false;
    const slow = hit(m, '/slow').then((r) => ((slowDone = true), r));
    expect((await hit(m, '/fast')).status).toBe(200);
    expect(slowDone).toBe(false);
    expect(v1[0]!.received.length + v1[1]!.received.length + v2.received.length).toBe(1);
    await vi.advanceTimersByTimeAsync(59_999);
    expect(slowDone).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    vi.useRealTimers();
    expect((await slow).status).toBe(200);
  });

  test("node's fetch sees an injected abort as an ordinary response", async () => {
    const m = meshWith({ routes: [{ fault: { abort: { httpStatus: 418 } } }] });
    const res = await fetch('http://catalog/', { dispatcher: m.dispatcher } as RequestInit);
    expect(res.status).toBe(418);
    expect(await res.text()).toBe('fault filter abort');
  });
});

describe('mirroring', () => {
  test('mirrors a copy to the subset without slowing or failing the caller', async () => {
    // The mirror target never answers: callers that got their answers did not wait for it.
    v2.fault = { kind: 'hang' };
    const m = meshWith({ routes: [{ subset: 'v1', mirror: { subset: 'v2' } }] });
    for (let i = 0; i < 5; i++) expect((await hit(m, `/m${i}`)).backend).toMatch(/^v1/);
    await vi.waitFor(() => expect(v2.received.map((r) => r.url)).toEqual(['/m0', '/m1', '/m2', '/m3', '/m4']));
    expect(v2.received[0]!.headers.host).toBe('catalog-shadow');
  });

  test('a stopped mirror target never fails the caller', async () => {
    await v2.stop();
    const m = meshWith({ routes: [{ subset: 'v1', mirror: { subset: 'v2', percent: 100 } }] });
    for (let i = 0; i < 5; i++) expect((await hit(m, '/x', { method: 'PUT', body: 'data' })).status).toBe(200);
  });
});

describe('subsets', () => {
  test('a subset with no endpoint fails with NO_HEALTHY_ENDPOINT naming the subset', async () => {
    mesh = createMesh({
      services: {
        catalog: {
          endpoints: [v1[0]!.url],
          subsets: { v3: { labels: { version: 'v3' } } },
          routes: [{ subset: 'v3' }],
        },
      },
    });
    const err = await hit(mesh).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'NO_HEALTHY_ENDPOINT' });
    expect((err as Error).message).toContain('subset "v3" has no endpoint');
  });

  test('a subset may override the timeout and the retry policy; a route overrides both', async () => {
    v2.fault = { kind: 'hang' };
    const m = meshWith({
      subsets: { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' } , timeoutMs: 100, retry: false } },
      routes: [
        { match: [{ uri: { prefix: '/r' } }], subset: 'v2', timeoutMs: 250 },
        { subset: 'v2' },
      ],
    });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const outcome = (path: string): { code: string | null } => {
      const o: { code: string | null } = { code: null };
      hit(m, path).then(
        () => (o.code = 'answered'),
        (e: { code: string }) => (o.code = e.code),
      );
      return o;
    };
    const a = outcome('/a');
    const r = outcome('/r');
    await vi.advanceTimersByTimeAsync(100);
    expect(a.code).toBe('TIMEOUT');
    expect(r.code).toBe(null);
    await vi.advanceTimersByTimeAsync(149);
    expect(r.code).toBe(null);
    await vi.advanceTimersByTimeAsync(1);
    expect(r.code).toBe('TIMEOUT');
    vi.useRealTimers();
  });
});

test('a subset with labels: {} takes every endpoint of the service (an Istio subset without labels)', async () => {
  const m = meshWith({ subsets: { all: { labels: {}, balancer: 'round-robin' } }, routes: [{ subset: 'all' }] });
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add((await hit(m)).backend);
  expect([...seen].sort()).toEqual(['v1a', 'v1b', 'v2a']);
});

describe('bad routes are rejected at createMesh with the path', () => {
  const cases: [string, Partial<ServiceConfig>, RegExp][] = [
    ['unknown subset', { routes: [{ subset: 'v9' }] }, /services\.catalog\.routes\[0\]\.subset: unknown subset/],
    ['split weights not 100', { routes: [{ split: { v1: 50, v2: 40 } }] }, /routes\[0\]\.split: weights must add up to 100, got 90/],
    ['split to unknown subset', { routes: [{ split: { v1: 50, v9: 50 } }] }, /routes\[0\]\.split\.v9: unknown subset/],
    ['subset and split', { routes: [{ subset: 'v1', split: { v1: 100 } }] }, /either "subset" or "split"/],
    ['bad regex', { routes: [{ match: [{ uri: { regex: '(' } }], subset: 'v1' }] }, /routes\[0\]\.match\[0\]\.uri\.regex: invalid RE2 regular expression/],
    ['two conditions in one string match', { routes: [{ match: [{ uri: { exact: '/a', prefix: '/' } as never }] }] }, /routes\[0\]\.match\[0\]\.uri: expected exactly one/],
    ['abort without status', { routes: [{ fault: { abort: { percent: 5 } as never } }] }, /fault\.abort\.httpStatus: required/],
    ['percent over 100', { routes: [{ fault: { delay: { fixedDelayMs: 5, percent: 150 } } }] }, /fault\.delay\.percent/],
    ['mirror to unknown subset', { routes: [{ mirror: { subset: 'nope' } }] }, /mirror\.subset: unknown subset/],
    ['subset without a labels object', { subsets: { v1: {} as never } }, /subsets\.v1\.labels: expected an object/],
    ['unknown route field', { routes: [{ destination: 'v1' } as never] }, /routes\[0\]\.destination: unknown field/],
    ['distribute shares not 100', { localityLb: { distribute: [{ from: 'r/a', to: { 'r/a': 70, 'r/b': 20 } }] } }, /localityLb\.distribute\[0\]\.to: shares must add up to 100/],
  ];
  test.each(cases)('%s', (_name, service, message) => {
    expect(() => meshWith(service)).toThrowError(message);
    mesh = null;
  });
});

describe('consistent hashing within subsets', () => {
  test("a user's key stays on the same v2 endpoint while the split holds; the split itself is sticky per key", async () => {
    const extra = await startBackend('v2b');
    try {
      mesh = createMesh({
        services: {
          catalog: {
            endpoints: [
              ...v1.map((b) => ({ url: b.url, labels: { version: 'v1' } })),
              { url: v2.url, labels: { version: 'v2' } },
              { url: extra.url, labels: { version: 'v2' } },
            ],
            balancer: { type: 'ring-hash', hashOn: { header: 'x-user' } },
            subsets: { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' } } },
            routes: [{ split: { v1: 50, v2: 50 } }],
          },
        },
      });
      for (let u = 0; u < 20; u++) {
        const headers = { 'x-user': `user-${u}` };
        const first = (await hit(mesh, '/', { headers })).backend;
        for (let k = 0; k < 5; k++) expect((await hit(mesh, '/', { headers })).backend).toBe(first);
      }
      // Both sides of the split are used, by different users.
      const sides = new Set<string>();
      for (let u = 0; u < 40; u++) sides.add((await hit(mesh, '/', { headers: { 'x-user': `user-${u}` } })).backend.slice(0, 2));
      expect([...sides].sort()).toEqual(['v1', 'v2']);
    } finally {
      await extra.close();
    }
  });
});

describe('hash cookie set on the response', () => {
  test('a request without the cookie gets one; requests that carry it stick to one endpoint', async () => {
    mesh = createMesh({
      services: {
        catalog: {
          endpoints: [...v1.map((b) => b.url), v2.url],
          balancer: { type: 'ring-hash', hashOn: { cookie: 'sid', ttlMs: 3_600_000, path: '/shop' } },
        },
      },
    });
    for (let user = 0; user < 5; user++) {
      const first = await request('http://catalog/', { dispatcher: mesh.dispatcher });
      const setCookie = String(first.headers['set-cookie']);
      expect(setCookie).toMatch(/^sid=[0-9a-f-]{36}; Path=\/shop; Max-Age=3600; HttpOnly$/);
      const home = ((await first.body.json()) as { backend: string }).backend;
      const cookie = setCookie.split(';')[0]!;
      for (let k = 0; k < 4; k++) {
        const r = await request('http://catalog/', { dispatcher: mesh.dispatcher, headers: { cookie } });
        expect(r.headers['set-cookie']).toBeUndefined();
        expect(((await r.body.json()) as { backend: string }).backend).toBe(home);
      }
    }
    // Node's global fetch (the legacy handler path) sees the header too.
    const res = await fetch('http://catalog/', { dispatcher: mesh.dispatcher } as RequestInit);
    expect(res.headers.get('set-cookie')).toMatch(/^sid=/);
    await res.arrayBuffer();
  });

  test('hashOn cookie options are validated', () => {
    expect(() =>
      createMesh({ services: { catalog: { endpoints: [v2.url], balancer: { type: 'maglev', hashOn: { cookie: 'sid', ttlMs: 5 } } } } }),
    ).toThrowError(/balancer\.hashOn\.ttlMs: expected 0 \(a session cookie\) or at least 1000/);
    expect(() =>
      createMesh({ services: { catalog: { endpoints: [v2.url], balancer: { type: 'maglev', hashOn: { cookie: 'a b' } } } } }),
    ).toThrowError(/hashOn\.cookie: expected a cookie name/);
  });
});

describe('subset concurrency limits', () => {
  test("a subset's own limits apply on top of the service's; other subsets are unaffected", async () => {
    v2.fault = { kind: 'delay', ms: 150 };
    const m = meshWith({
      subsets: { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' }, limits: { maxRequests: 1, maxPendingRequests: 1, maxQueueTimeMs: 1000 } } },
      routes: [{ match: [{ headers: { 'x-canary': { exact: 'true' } } }], subset: 'v2' }, { subset: 'v1' }],
    });
    const canary = () => hit(m, '/', { headers: { 'x-canary': 'true' } }).then((r) => r.status, (e: { code: string }) => e.code);
    const started = performance.now();
    const results = await Promise.all([canary(), canary(), canary(), hit(m, '/').then((r) => r.status)]);
    // v2: one in flight, one queued (served after), one refused; v1 untouched and fast.
    expect(results.sort()).toEqual([200, 200, 200, 'OVERLOADED'].sort());
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(v2.received).toHaveLength(2);
    expect(m.stats().services.catalog!.overloaded).toBe(1);
  });

  test("a request that waits past its subset's maxQueueTimeMs is one overloaded event naming the subset and one count in stats", async () => {
    const held = hold(v2);
    const m = meshWith({
      subsets: { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' }, limits: { maxRequests: 1, maxPendingRequests: 1, maxQueueTimeMs: 50 } } },
      routes: [{ subset: 'v2' }],
    });
    const overloaded: string[] = [];
    m.on('overloaded', (e) => overloaded.push(e.limit));
    const status = () => hit(m).then((r) => r.status, (e: { code: string; message: string }) => `${e.code}: ${e.message}`);
    const first = status();
    const h = await held.next();
    // Held until answered: the second waits in the subset's queue and expires, whatever the machine's speed.
    expect(await status()).toMatch(/^OVERLOADED: .*waited 50 ms for one of 1 request slots of subset "v2"/);
    h.answer();
    expect(await first).toBe(200);
    expect(overloaded).toEqual(['subset v2']);
    expect(m.stats().services.catalog!.overloaded).toBe(1);
  });
});
