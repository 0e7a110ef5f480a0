// VirtualService destinations in another service of the mesh — a route, a weighted split, `mirror`
// and `mirrors` — through fromIstio and createMesh to real backends: the requests reach the other
// service's endpoints under its own DestinationRule, as a sidecar sends them to another cluster.
import { afterEach, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, fromIstio, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';
import { seeded, tolerance } from '../support/seeded.js';

let mesh: Mesh | undefined;
let backends: Backend[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close();
  mesh = undefined;
  await closeAll(backends);
  backends = [];
});

/** Backends named `${service}-${version}`, labelled `version`, and a mesh over fromIstio's services (nothing reported). */
async function meshFor(yaml: string, versions: Record<string, string[]>, random?: () => number): Promise<Mesh> {
  const byService: Record<string, { url: string; labels: Record<string, string> }[]> = {};
  for (const [service, vs] of Object.entries(versions)) {
    byService[service] = [];
    for (const v of vs) {
      const b = await startBackend(`${service}-${v}`);
      backends.push(b);
      byService[service]!.push({ url: b.url, labels: { version: v } });
    }
  }
  const { services, unsupported } = fromIstio(yaml, { discovery: (s) => ({ type: 'static', endpoints: byService[s] ?? [] }) });
  expect(unsupported).toEqual([]);
  mesh = createMesh({ services, ...(random ? { random } : {}) });
  return mesh;
}

async function call(m: Mesh, url: string, headers: Record<string, string> = {}): Promise<{ status: number; backend: string | undefined }> {
  const res = await request(url, { dispatcher: m.dispatcher, headers });
  const text = await res.body.text();
  return { status: res.statusCode, backend: res.statusCode === 200 ? (JSON.parse(text) as { backend: string }).backend : undefined };
}

const backend = (name: string): Backend => backends.find((b) => b.name === name)!;

test('a 90/10 shift from a subset of reviews to another service, reviews-canary, balanced by its own rule', async () => {
  const n = 400;
  const m = await meshFor(
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: canary }
spec:
  host: reviews-canary
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: 90 }
    - { destination: { host: reviews-canary }, weight: 10 }
`,
    { reviews: ['v1', 'v2'], 'reviews-canary': ['a', 'b'] },
    seeded(11),
  );
  for (let i = 0; i < n; i++) await call(m, 'http://reviews/');
  const canary = backend('reviews-canary-a').received.length + backend('reviews-canary-b').received.length;
  expect(backend('reviews-v1').received.length + canary).toBe(n);
  expect(backend('reviews-v2').received).toHaveLength(0);
  expect(Math.abs(canary - n * 0.1)).toBeLessThan(tolerance(n, 0.1));
  // ROUND_ROBIN from the canary's own rule: its two endpoints take turns.
  expect(Math.abs(backend('reviews-canary-a').received.length - backend('reviews-canary-b').received.length)).toBeLessThanOrEqual(1);
  expect(m.stats().services['reviews-canary']!.balancer).toBe('round-robin');
  expect(m.stats().services.reviews!.routedTo).toEqual({ 'reviews-canary': canary });
});

test("jason's requests go to a subset of another service (ratings v2), everyone else's to reviews", async () => {
  const m = await meshFor(
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings }
spec:
  host: ratings
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: ratings, subset: v2 } }]
  - route: [{ destination: { host: reviews } }]
`,
    { reviews: ['v1'], ratings: ['v1', 'v2'] },
  );
  for (let i = 0; i < 4; i++) expect((await call(m, 'http://reviews/', { 'end-user': 'jason' })).backend).toBe('ratings-v2');
  expect((await call(m, 'http://reviews/')).backend).toBe('reviews-v1');
  expect(backend('ratings-v1').received).toHaveLength(0);
});

test('mirroring to another service: the primary answers, every mirror gets its copy, a failing shadow changes nothing', async () => {
  const m = await meshFor(
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: httpbin }
spec:
  hosts: [httpbin]
  http:
  - route: [{ destination: { host: httpbin } }]
    mirror: { host: httpbin-shadow }
    mirrorPercentage: { value: 100 }
    mirrors:
    - destination: { host: audit }
`,
    { httpbin: ['v1'], 'httpbin-shadow': ['v1'], audit: ['v1'] },
  );
  backend('httpbin-shadow-v1').fault = { kind: 'reset' };
  for (let i = 0; i < 3; i++) expect(await call(m, `http://httpbin/get${i}`)).toEqual({ status: 200, backend: 'httpbin-v1' });
  await vi.waitFor(() => expect(backend('audit-v1').received.map((r) => r.url)).toEqual(['/get0', '/get1', '/get2']));
  await vi.waitFor(() => expect(backend('httpbin-shadow-v1').received.length).toBeGreaterThanOrEqual(3));
  expect(backend('audit-v1').received[0]!.headers.host).toBe('httpbin-shadow');
  expect(m.stats().services.httpbin!.mirroredTo).toEqual({ 'httpbin-shadow': 3, audit: 3 });
});
