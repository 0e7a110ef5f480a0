// The eight defects of issue #13 §1: each fixed, or reported by path, never silently wrong.
import { afterEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, fromIstio, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

const withStatic = { discovery: () => ({ type: 'static' as const, endpoints: ['http://127.0.0.1:9'] }) };
const paths = (u: { path: string }[]): string[] => u.map((x) => x.path);

let mesh: Mesh | undefined;
let backends: Backend[] = [];
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await closeAll(backends);
  backends = [];
});

async function body(m: Mesh, url: string, headers: Record<string, string> = {}): Promise<{ status: number; backend?: string; host?: string }> {
  const res = await request(url, { dispatcher: m.dispatcher, headers });
  const text = await res.body.text();
  try {
    return { status: res.statusCode, ...(JSON.parse(text) as { backend: string; host: string }) };
  } catch {
    return { status: res.statusCode };
  }
}

test("a subset's loadBalancer replaces the rule's whole: without a balancer of its own, the subset has Istio's default", () => {
  const { services } = fromIstio(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 }, trafficPolicy: { loadBalancer: { localityLbSetting: { enabled: false } } } }
`);
  expect(services.reviews!.balancer).toBe('random');
  expect(services.reviews!.subsets).toEqual({ v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' }, balancer: 'least-request' } });
});

test("a subset's localityLbSetting and warmup are reported by path, not dropped silently (meshlet has them per service)", () => {
  const { services, unsupported } = fromIstio(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets:
  - name: v2
    labels: { version: v2 }
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
        localityLbSetting: { enabled: true, failover: [{ from: us-east, to: eu-west }] }
        warmup: { duration: 30s }
        warmupDurationSecs: 30s
`);
  expect(services.reviews!.subsets!.v2).toEqual({ labels: { version: 'v2' }, balancer: 'round-robin' });
  expect(unsupported).toEqual([
    { path: 'DestinationRule reviews: spec.subsets[0].trafficPolicy.loadBalancer.localityLbSetting', message: expect.stringContaining("locality balancing is the service's") },
    { path: 'DestinationRule reviews: spec.subsets[0].trafficPolicy.loadBalancer.warmup', message: expect.stringContaining("slow start is the service's") },
    { path: 'DestinationRule reviews: spec.subsets[0].trafficPolicy.loadBalancer.warmupDurationSecs', message: expect.stringContaining("slow start is the service's") },
  ]);
});

describe('a VirtualService with several hosts', () => {
  const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: two, namespace: shop }
spec:
  hosts: [reviews, ratings]
  http:
  - match: [{ headers: { x-user: { exact: jason } } }]
    timeout: 2s
    route: [{ destination: { host: reviews, subset: v2 } }]
  - rewrite: { uri: /v1 }
    route: [{ destination: { host: ratings } }]
`;

  test("gives each host's service the routes read for it, and keeps the reports of every host", () => {
    const { services, unsupported } = fromIstio(yaml);
    // reviews: route 0 is its own; route 1 goes to ratings, another service of the mesh
    expect(services.reviews!.routes).toEqual([{ match: [{ headers: { 'x-user': { exact: 'jason' } } }], timeoutMs: 2_000, subset: 'v2' }, { rewrite: { uri: '/v1' }, service: 'ratings' }]);
    // ratings: route 0 goes to reviews' subset v2 (not turned into a route to ratings itself); route 1 is its own
    expect(services.ratings!.routes).toEqual([{ match: [{ headers: { 'x-user': { exact: 'jason' } } }], timeoutMs: 2_000, service: 'reviews', subset: 'v2' }, { rewrite: { uri: '/v1' } }]);
    expect(unsupported).toEqual([]);
    expect(services.reviews!.namespaces).toEqual(['shop']);
    expect(services.ratings!.namespaces).toEqual(['shop']);
  });

  test('two spellings of one host are one service, its routes once', () => {
    const { services } = fromIstio(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: one, namespace: shop }
spec:
  hosts: [reviews, reviews.shop.svc.cluster.local]
  http:
  - route: [{ destination: { host: reviews.shop, subset: v1 } }]
`);
    expect(Object.keys(services)).toEqual(['reviews']);
    expect(services.reviews!.routes).toEqual([{ subset: 'v1' }]);
  });
});

describe('a split between this service and another', () => {
  test('keeps every destination at its share: the subset of this service, and the other service', () => {
    const { services, unsupported } = fromIstio(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: 80 }
    - { destination: { host: reviews-canary }, weight: 20 }
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: 60 }
    - { destination: { host: reviews, subset: v2 }, weight: 20 }
    - { destination: { host: ratings }, weight: 20 }
`);
    // before: 100 % to the whole service, v1 lost; then: all of it to v1; now: as Istio splits it
    expect(services.reviews!.routes).toEqual([
      { split: [{ subset: 'v1', weight: 80 }, { service: 'reviews-canary', weight: 20 }] },
      { split: [{ subset: 'v1', weight: 60 }, { subset: 'v2', weight: 20 }, { service: 'ratings', weight: 20 }] },
    ]);
    // The other hosts are services of the output, for options.discovery to give endpoints.
    expect(Object.keys(services).sort()).toEqual(['ratings', 'reviews', 'reviews-canary']);
    expect(unsupported).toEqual([]);
  });
});

describe('mirrorPercentage without a usable mirror mirrors nothing', () => {
  test.each([
    ['no mirror at all', '', ['VirtualService r: spec.http[0].mirrorPercentage']],
  ])('%s', (_name, mirror, reported) => {
    const { services, unsupported } = fromIstio(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
  - route: [{ destination: { host: r } }]
    mirrorPercentage: { value: 30 }
    ${mirror}
`);
    expect(services.r!.routes).toEqual([{}]);
    expect(paths(unsupported).sort()).toEqual(reported.sort());
  });
});

test('a mirror to another service takes the mirrorPercentage', () => {
  const { services, unsupported } = fromIstio(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
  - route: [{ destination: { host: r } }]
    mirrorPercentage: { value: 30 }
    mirror: { host: elsewhere }
`);
  expect(services.r!.routes).toEqual([{ mirror: { service: 'elsewhere', percent: 30 } }]);
  expect(services.elsewhere).toEqual(expect.any(Object));
  expect(unsupported).toEqual([]);
});

describe('services are named so that distinct hosts stay distinct', () => {
  const yaml = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: prod, namespace: prod }
spec: { host: reviews, trafficPolicy: { loadBalancer: { simple: RANDOM } } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: staging }
spec: { host: reviews.staging.svc.cluster.local, trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: stripe }
spec: { host: api.stripe.com, trafficPolicy: { tls: { mode: SIMPLE } } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: github }
spec: { host: api.github.com }
`;

  test('reviews in prod and in staging, api.stripe.com and api.github.com: four services', () => {
    const { services, unsupported } = fromIstio(yaml);
    expect(unsupported).toEqual([]);
    expect(Object.keys(services)).toEqual(['reviews.prod', 'reviews.staging', 'api.stripe.com', 'api.github.com']);
    expect(services['reviews.prod']).toMatchObject({ balancer: 'random', hosts: ['reviews.prod.svc', 'reviews.prod.svc.cluster.local'] });
    expect(services['reviews.staging']).toMatchObject({ balancer: 'round-robin', hosts: ['reviews.staging.svc', 'reviews.staging.svc.cluster.local'] });
    expect(services['api.stripe.com']!.tls).toEqual({});
    expect(services['api.github.com']!.tls).toBeUndefined();
  });

  test("this process's namespace keeps the short name", () => {
    const { services } = fromIstio(yaml, { namespace: 'prod' });
    expect(Object.keys(services)).toEqual(['reviews', 'reviews.staging', 'api.stripe.com', 'api.github.com']);
    expect(services.reviews!.namespaces).toEqual(['prod']);
  });

  test('the discovery callback is told the Kubernetes Service name and namespace', () => {
    const seen: unknown[] = [];
    fromIstio(yaml, { discovery: (service, info) => (seen.push([service, info]), { type: 'static', endpoints: ['http://127.0.0.1:9'] }) });
    expect(seen).toEqual([
      ['reviews.prod', { name: 'reviews', namespace: 'prod', host: 'reviews' }],
      ['reviews.staging', { name: 'reviews', namespace: 'staging', host: 'reviews.staging.svc.cluster.local' }],
      ['api.stripe.com', { name: undefined, namespace: undefined, host: 'api.stripe.com' }],
      ['api.github.com', { name: undefined, namespace: undefined, host: 'api.github.com' }],
    ]);
  });

  test('through createMesh, each host reaches its own endpoints', async () => {
    backends = [await startBackend('prod'), await startBackend('staging'), await startBackend('stripe'), await startBackend('github')];
    const byName: Record<string, string> = { 'reviews.prod': backends[0]!.url, 'reviews.staging': backends[1]!.url, 'api.stripe.com': backends[2]!.url, 'api.github.com': backends[3]!.url };
    const { services } = fromIstio(yaml.replace('tls: { mode: SIMPLE }', 'tls: { mode: DISABLE }'), { discovery: (s) => ({ type: 'static', endpoints: [byName[s]!] }) });
    mesh = createMesh({ services, unknownHosts: 'reject' });
    const hits: [string, string][] = [
      ['http://reviews.prod/', 'prod'],
      ['http://reviews.prod.svc.cluster.local/', 'prod'],
      ['http://reviews.staging/', 'staging'],
      ['http://reviews.staging.svc/', 'staging'],
      ['http://api.stripe.com/', 'stripe'],
      ['http://api.github.com/', 'github'],
    ];
    for (const [url, backend] of hits) expect((await body(mesh, url)).backend, url).toBe(backend);
  });

  test('a short name with no namespace joins the one namespace the documents name it in', () => {
    const { services } = fromIstio(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: r }
spec: { host: ratings.prod.svc.cluster.local, subsets: [{ name: v1, labels: { version: v1 } }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [ratings]
  http: [{ route: [{ destination: { host: ratings, subset: v1 } }] }]
`);
    expect(Object.keys(services)).toEqual(['ratings']);
    expect(services.ratings).toMatchObject({ namespaces: ['prod'], routes: [{ subset: 'v1' }] });
  });
});

describe('TLS is off unless a mode turns it on (Istio\'s default mode is DISABLE)', () => {
  const dr = (tls: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db }
spec:
  host: db
  trafficPolicy:
    tls: ${tls}
`;
  test('mode missing: no TLS, and the fields that then do nothing are reported', () => {
    const { services, unsupported } = fromIstio(dr('{ caCertificates: /etc/ca.pem, sni: db.example }'));
    expect(services.db!.tls).toBeUndefined();
    expect(paths(unsupported)).toEqual(['DestinationRule db: spec.trafficPolicy.tls.caCertificates', 'DestinationRule db: spec.trafficPolicy.tls.sni']);
    expect(unsupported[0]!.message).toMatch(/the TLS mode is DISABLE/);
  });
  test('mode misspelled: reported, no TLS', () => {
    const { services, unsupported } = fromIstio(dr('{ mode: SIMPEL }'));
    expect(services.db!.tls).toBeUndefined();
    expect(unsupported).toEqual([{ path: 'DestinationRule db: spec.trafficPolicy.tls.mode', message: expect.stringContaining('unknown TLS mode "SIMPEL"') }]);
  });
  test('SIMPLE turns it on', () => {
    expect(fromIstio(dr('{ mode: SIMPLE, sni: db.example }')).services.db!.tls).toEqual({ servername: 'db.example' });
  });
});

describe('retryOn refused-stream', () => {
  const vs = (retryOn: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http: [{ route: [{ destination: { host: r } }], retries: { attempts: 2, retryOn: "${retryOn}" } }]
`;
  test('is not turned into connect-failure: over HTTP/1.1 no stream is refused, so it adds no condition', () => {
    const { services, unsupported } = fromIstio(vs('refused-stream'));
    expect(services.r!.routes![0]!.retry).toMatchObject({ attempts: 2, retryOn: [] });
    expect(unsupported).toEqual([]);
  });
  test('reset-before-request, which meshlet cannot tell apart, is reported as applied as connect-failure', () => {
    const { services, unsupported } = fromIstio(vs('reset-before-request'));
    expect(services.r!.routes![0]!.retry).toMatchObject({ retryOn: ['connect-failure'] });
    expect(unsupported).toEqual([{ path: 'VirtualService r: spec.http[0].retries.retryOn', message: expect.stringContaining('applied as connect-failure') }]);
  });
});

describe('a match condition meshlet cannot evaluate never widens the match', () => {
  const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings }
spec:
  hosts: [ratings]
  http:
  - match:
    - withoutHeaders: { end-user: { exact: jason } }
    fault:
      abort: { httpStatus: 500, percentage: { value: 100 } }
    route: [{ destination: { host: ratings } }]
  - match:
    - sourceLabels: { app: reviews }
    - headers: { x-canary: { exact: "1" } }
    route: [{ destination: { host: ratings, subset: v2 } }]
  - route: [{ destination: { host: ratings, subset: v1 } }]
`;

  test('its block is left out; a route with no block left is skipped; each is reported', () => {
    // This process's labels are unknown here: no option, no downward-API file.
    const { services, unsupported } = fromIstio(yaml, { source: { labelsFile: '/nonexistent/meshlet-labels', env: {} } });
    expect(services.ratings!.routes).toEqual([{ match: [{ headers: { 'x-canary': { exact: '1' } } }], subset: 'v2' }, { subset: 'v1' }]);
    expect(unsupported).toEqual([
      { path: 'VirtualService ratings: spec.http[0].match[0].withoutHeaders', message: expect.stringMatching(/left out, so it matches nothing rather than everything, and the route, with no other block, is skipped$/) },
      { path: 'VirtualService ratings: spec.http[1].match[0].sourceLabels', message: expect.stringMatching(/^this process's labels are unknown .*ENOENT.*left out, so it matches nothing rather than everything$/) },
    ]);
  });

  test('withoutHeaders with a 100 % abort: no request is aborted (through createMesh)', async () => {
    backends = [await startBackend('v1'), await startBackend('v2')];
    const { services } = fromIstio(yaml, {
      discovery: () => ({ type: 'static', endpoints: [{ url: backends[0]!.url, labels: { version: 'v1' } }, { url: backends[1]!.url, labels: { version: 'v2' } }] }),
    });
    services.ratings!.subsets = { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' } } };
    mesh = createMesh({ services });
    expect(await body(mesh, 'http://ratings/', { 'end-user': 'jason' })).toMatchObject({ status: 200, backend: 'v1' });
    expect(await body(mesh, 'http://ratings/', { 'end-user': 'mary' })).toMatchObject({ status: 200, backend: 'v1' });
    expect(await body(mesh, 'http://ratings/')).toMatchObject({ status: 200, backend: 'v1' });
    expect(await body(mesh, 'http://ratings/', { 'x-canary': '1' })).toMatchObject({ status: 200, backend: 'v2' });
  });

  test('gateways is evaluated: meshlet is "mesh", so a block for gateways only never matches', () => {
    const { services, unsupported } = fromIstio(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  http:
  - match: [{ gateways: [ingress], uri: { prefix: /admin } }]
    route: [{ destination: { host: r, subset: admin } }]
  - match: [{ gateways: [mesh], uri: { prefix: /api } }]
    route: [{ destination: { host: r, subset: api } }]
`);
    expect(services.r!.routes).toEqual([{ match: [{ uri: { prefix: '/api' } }], subset: 'api' }]);
    expect(unsupported).toEqual([]);
  });

  test('an empty gateways list is no list (protobuf cannot tell them apart): the VirtualService and the block apply to the mesh', () => {
    const { services, unsupported } = fromIstio(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  gateways: []
  http:
  - match: [{ gateways: [], uri: { prefix: /api } }]
    route: [{ destination: { host: r, subset: api } }]
  - route: [{ destination: { host: r, subset: rest } }]
`);
    expect(services.r!.routes).toEqual([{ match: [{ uri: { prefix: '/api' } }], subset: 'api' }, { subset: 'rest' }]);
    expect(unsupported).toEqual([]);
  });

  test('a VirtualService whose gateways do not list mesh is left out', () => {
    const { services } = fromIstio(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: [r]
  gateways: [istio-system/ingress]
  http:
  - route: [{ destination: { host: r, subset: api } }]
`);
    expect(services.r?.routes).toBeUndefined();
  });
});

test('a DestinationRule subset without labels is the whole host (Istio takes it); createMesh takes what fromIstio made of it', () => {
  const { services } = fromIstio(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets:
  - name: everyone
    trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews, subset: everyone } }]
`, withStatic);
  expect(services.reviews!.subsets).toEqual({ everyone: { labels: {}, balancer: 'round-robin' } });
  mesh = createMesh({ services });
});
