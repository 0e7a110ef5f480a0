// Multi-port services: a destination's `port` and a DestinationRule's `portLevelSettings` make the
// service of that port (`9080.reviews`, services.ts), as Envoy keeps a cluster per port — through
// fromIstio and createMesh to real backends, one per port.
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, fromIstio, type DiscoveryInfo, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';
import { hold } from '../support/holding.js';

let mesh: Mesh | undefined;
let backends: Backend[] = [];
afterEach(async () => {
  await mesh?.close({ graceMs: 0 });
  mesh = undefined;
  await closeAll(backends);
  backends = [];
});

/** One backend per (service, port): `reviews` for the port discovery picks by default, `reviews-9080` for port 9080. */
async function meshFor(yaml: string, named: string[]): Promise<{ m: Mesh; told: Record<string, DiscoveryInfo> }> {
  const byName: Record<string, Backend> = {};
  for (const n of named) backends.push((byName[n] = await startBackend(n)));
  const told: Record<string, DiscoveryInfo> = {};
  const { services, unsupported } = fromIstio(yaml, {
    discovery: (service, info) => {
      told[service] = info;
      const b = byName[info.port === undefined ? info.name! : `${info.name}-${info.port}`];
      return { type: 'static', endpoints: b ? [{ url: b.url, labels: { version: 'v1' } }] : [] };
    },
  });
  expect(unsupported).toEqual([]);
  mesh = createMesh({ services });
  return { m: mesh, told };
}

const backendOf = async (m: Mesh, url: string, headers: Record<string, string> = {}): Promise<string> => {
  const res = await request(url, { dispatcher: m.dispatcher, headers });
  return ((await res.body.json()) as { backend: string }).backend;
};

const RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    connectionPool: { http: { http2MaxRequests: 100 } }
    portLevelSettings:
    - port: { number: 9080 }
      loadBalancer: { simple: RANDOM }
      connectionPool: { http: { http2MaxRequests: 1 } }
  subsets: [{ name: v1, labels: { version: v1 } }]
`;

test("portLevelSettings apply to that port's service only: its balancer, its limits; the rest is the rule's", async () => {
  const { m, told } = await meshFor(RULE, ['reviews', 'reviews-9080']);
  expect(told['9080.reviews']).toEqual({ namespace: 'shop', host: 'reviews', name: 'reviews', port: 9080 });
  expect(told.reviews!.port).toBeUndefined();
  const stats = m.stats().services;
  expect([stats.reviews!.balancer, stats['9080.reviews']!.balancer]).toEqual(['round-robin', 'random']);
  expect(await backendOf(m, 'http://reviews/')).toBe('reviews');
  expect(await backendOf(m, 'http://reviews.shop.svc.cluster.local:9080/')).toBe('reviews-9080');

  // Port 9080 takes one request at a time (its http2MaxRequests), the host's default port 100.
  const held = hold(...backends);
  const first = request('http://reviews:9080/', { dispatcher: m.dispatcher });
  const h = await held.next();
  await expect(request('http://reviews:9080/', { dispatcher: m.dispatcher })).rejects.toMatchObject({ code: 'OVERLOADED', service: '9080.reviews' });
  const other = request('http://reviews/', { dispatcher: m.dispatcher });
  const h2 = await held.next();
  h.answer(200, 'a');
  h2.answer(200, 'b');
  expect(await (await first).body.text()).toBe('a');
  expect(await (await other).body.text()).toBe('b');
});

test("a destination's port routes to that port's service, with the rule's subsets", async () => {
  const { m } = await meshFor(
    `${RULE}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v1, port: { number: 9080 } } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
`,
    ['reviews', 'reviews-9080'],
  );
  expect(await backendOf(m, 'http://reviews/', { 'end-user': 'jason' })).toBe('reviews-9080');
  expect(await backendOf(m, 'http://reviews/')).toBe('reviews');
  expect(m.stats().services.reviews!.routedTo).toEqual({ '9080.reviews': 1 });
  // The port's service has the host's routes too (a sidecar applies them on every port).
  expect(await backendOf(m, 'http://reviews:9080/')).toBe('reviews-9080');
});

test.each([
  ['a port out of range', 'portLevelSettings: [{ port: { number: 70000 }, loadBalancer: { simple: RANDOM } }]', /portLevelSettings\[0\]\.port\.number: expected a port number/],
  ['an entry without a port', 'portLevelSettings: [{ loadBalancer: { simple: RANDOM } }]', /portLevelSettings\[0\]\.port: required/],
])('%s is refused, naming the path', (_name, settings, message) => {
  expect(() =>
    fromIstio(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: r }
spec:
  host: r
  trafficPolicy:
    ${settings}
`),
  ).toThrowError(message);
});
