// fromIstio's mapping of HTTPRoute headers, rewrite, redirect, directResponse and retries.backoff,
// and of a consistent-hash httpCookie's ttl and path — from YAML, then through a real mesh.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, fromIstio, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

let backend: Backend;
let mesh: Mesh | null = null;
beforeEach(async () => {
  backend = await startBackend('ratings-v1');
});
afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll([backend]);
});

const YAML = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings }
spec:
  host: ratings.prod.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: { name: sid, ttl: 3600s, path: /ratings }
  subsets:
  - { name: v1, labels: { version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings-route }
spec:
  hosts: [ratings.prod.svc.cluster.local]
  http:
  - match:
    - uri: { exact: /v1/getProductRatings }
    redirect:
      uri: /v1/bookRatings
      authority: newratings.default.svc.cluster.local
  - match:
    - uri: { prefix: /foo/ }
    redirect: { authority: foo.example.com, prefixRewrite: /, port: 80, redirectCode: 307 }
  - match:
    - uri: { exact: /gone }
    directResponse:
      status: 503
      body: { bytes: "dW5rbm93biBlcnJvcg==" }
    headers:
      response:
        set: { content-type: text/plain; charset=utf-8 }
  - match:
    - uri: { prefix: /ratings }
      headers: { x-debug: { regex: "*" } }
    rewrite: { uri: /v1/bookRatings }
    route:
    - destination: { host: ratings.prod.svc.cluster.local, subset: v1 }
      headers:
        request:
          set: { x-subset: v1 }
  - match:
    - uri: { prefix: /svc/ }
    rewrite:
      uriRegexRewrite: { match: "^/svc/([^/]+)(/.*)$", rewrite: "\\\\2/instance/\\\\1" }
    headers:
      request:
        set: { test: "true", ":authority": ratings.internal, x-pct: "100%%" }
        add: { x-trace: mesh, x-node: "%NODE%" }
        remove: [x-secret, host]
      response:
        remove: [x-internal]
    retries: { attempts: 1, backoff: 50ms }
    route:
    - destination: { host: ratings.prod.svc.cluster.local, subset: v1 }
`;

const withBackend = () => ({ discovery: () => ({ type: 'static' as const, endpoints: [{ url: backend.url, labels: { version: 'v1' } }] }) });

describe('from YAML', () => {
  test('each field maps to the route feature Istio programs, and what does not map is reported', () => {
    const { services, unsupported } = fromIstio(YAML);
    const r = services.ratings!;
    expect(r.balancer).toEqual({ type: 'ring-hash', hashOn: { cookie: 'sid', ttlMs: 3_600_000, path: '/ratings' } });
    expect(r.routes).toEqual([
      { match: [{ uri: { exact: '/v1/getProductRatings' } }], redirect: { uri: '/v1/bookRatings', authority: 'newratings.default.svc.cluster.local' } },
      // Port 80 on http is left out, as Istio does (the request's port then stays).
      { match: [{ uri: { prefix: '/foo/' } }], redirect: { authority: 'foo.example.com', prefixRewrite: '/', redirectCode: 307 } },
      { match: [{ uri: { exact: '/gone' } }], directResponse: { status: 503, body: 'unknown error' }, headers: { response: { set: { 'content-type': 'text/plain; charset=utf-8' } } } },
      // regex "*" is Istio's "present"; one destination's headers are the route's.
      { match: [{ uri: { prefix: '/ratings' }, headers: { 'x-debug': { present: true } } }], rewrite: { uri: '/v1/bookRatings' }, subset: 'v1', headers: { request: { set: { 'x-subset': 'v1' } } } },
      {
        match: [{ uri: { prefix: '/svc/' } }],
        rewrite: { uriRegexRewrite: { match: '^/svc/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1' }, authority: 'ratings.internal' },
        headers: { request: { set: { test: 'true', 'x-pct': '100%' }, add: { 'x-trace': 'mesh' }, remove: ['x-secret'] }, response: { remove: ['x-internal'] } },
        retry: { attempts: 1, backoff: { baseMs: 50, maxMs: 500 }, retryOn: ['connect-failure'] }, // Istio's retryOn default (defaults.ts); the budget is the service's
        subset: 'v1',
      },
    ]);
    expect(unsupported).toEqual([
      { path: 'VirtualService ratings-route: spec.http[4].headers.request.add.x-node', message: "Envoy's %…% substitutions are not evaluated by meshlet" },
      { path: 'VirtualService ratings-route: spec.http[4].headers.request.remove[1]', message: 'Envoy leaves the Host header out of header operations here' },
    ]);
  });

  test("Istio's split with headers on one destination reports them; binary bodies that are not text are reported", () => {
    const { services, unsupported } = fromIstio(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-route }
spec:
  hosts: [reviews.prod.svc.cluster.local]
  http:
  - headers:
      request:
        set: { test: "true" }
    route:
    - destination: { host: reviews.prod.svc.cluster.local, subset: v2 }
      weight: 25
    - destination: { host: reviews.prod.svc.cluster.local, subset: v1 }
      headers:
        response:
          remove: [foo]
      weight: 75
  - match: [{ uri: { exact: /bin } }]
    directResponse: { status: 200, body: { bytes: "/w==" } }
    timeout: 5s
`);
    expect(services.reviews!.routes![0]).toEqual({ headers: { request: { set: { test: 'true' } } }, split: { v2: 25, v1: 75 } });
    expect(services.reviews!.routes![1]).toEqual({ match: [{ uri: { exact: '/bin' } }], directResponse: { status: 200 } });
    expect(unsupported.map((u) => u.path)).toEqual([
      'VirtualService reviews-route: spec.http[0].route[1].headers',
      'VirtualService reviews-route: spec.http[1].directResponse.body.bytes',
      'VirtualService reviews-route: spec.http[1].timeout',
    ]);
  });

  test.each([
    ['redirect beside a destination', 'redirect: { uri: /x }\n    route: [{ destination: { host: r } }]', /spec\.http\[0\]\.route: a route cannot have both redirect and route/],
    ['directResponse beside a fault', 'directResponse: { status: 503 }\n    fault: { abort: { httpStatus: 500 } }', /spec\.http\[0\]\.fault: a route cannot have both directResponse and fault/],
    ['a redirect code Istio does not program', 'redirect: { uri: /x, redirectCode: 399 }', /redirectCode: Istio programs no redirect for code 399/],
  ])('%s is refused', (_name, fields, message) => {
    expect(() => fromIstio(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: { name: r }\nspec:\n  hosts: [r]\n  http:\n  - ${fields}\n`)).toThrowError(message);
  });
});

describe('through a real mesh', () => {
  test('the endpoint gets the rewritten path, Host and headers; redirects and direct responses never reach it', async () => {
    const { services } = fromIstio(YAML, withBackend());
    mesh = createMesh({ services });
    const get = (path: string, headers: Record<string, string> = {}) => request(`http://ratings.prod.svc.cluster.local${path}`, { dispatcher: mesh!.dispatcher, headers });

    const moved = await get('/v1/getProductRatings?id=7');
    await moved.body.dump();
    expect([moved.statusCode, moved.headers.location]).toEqual([301, 'http://newratings.default.svc.cluster.local/v1/bookRatings?id=7']);
    const foo = await get('/foo/bar');
    await foo.body.dump();
    expect([foo.statusCode, foo.headers.location]).toEqual([307, 'http://foo.example.com/bar']);
    const gone = await get('/gone');
    expect([gone.statusCode, gone.headers['content-type'], await gone.body.text()]).toEqual([503, 'text/plain; charset=utf-8', 'unknown error']);
    expect(backend.received).toHaveLength(0);

    backend.handler = (_req, res) => {
      res.setHeader('x-internal', 'yes');
      res.end('ok');
    };
    const svc = await get('/svc/foo/v1/api?q=1', { 'x-secret': 's', 'x-trace': 'caller' });
    await svc.body.dump();
    expect(svc.headers['x-internal']).toBeUndefined();
    expect(svc.headers['set-cookie']).toMatch(/^sid=[0-9a-f-]{36}; Path=\/ratings; Max-Age=3600; HttpOnly$/);
    const got = backend.received[0]!;
    expect([got.url, got.headers.host, got.headers.test, got.headers['x-pct'], got.headers['x-trace'], got.headers['x-secret']]).toEqual([
      '/v1/api/instance/foo?q=1',
      'ratings.internal',
      'true',
      '100%',
      'caller, mesh',
      undefined,
    ]);
    const ratings = await get('/ratings/7', { 'x-debug': '' });
    await ratings.body.dump();
    expect([backend.received[1]!.url, backend.received[1]!.headers['x-subset']]).toEqual(['/v1/bookRatings/7', 'v1']);
  });
});
