// Routes that answer by themselves (redirect, directResponse), regex matches under RE2 through
// createMesh, and the route features' config errors and toJSON.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, InvalidConfigError, type Mesh, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

let backend: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  backend = await startBackend('b');
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll([backend]);
});

function meshWith(service: Partial<ServiceConfig>, name = 'catalog'): Mesh {
  mesh = createMesh({ services: { [name]: { endpoints: [{ url: backend.url, labels: { v: '1' } }], subsets: { v1: { labels: { v: '1' } } }, ...service } } });
  return mesh;
}

async function hit(url: string, opts: Parameters<typeof request>[1] = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const res = await request(url, { dispatcher: mesh!.dispatcher, ...opts });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

describe('redirect', () => {
  test('answers 301 with the location Envoy builds, and no endpoint is contacted', async () => {
    meshWith({
      routes: [
        { match: [{ uri: { exact: '/v1/getProductRatings' } }], redirect: { uri: '/v1/bookRatings', authority: 'newratings.default.svc.cluster.local' } },
        { match: [{ uri: { prefix: '/foo/' } }], redirect: { authority: 'foo.example.com', prefixRewrite: '/' } },
        { match: [{ uri: { prefix: '/secure' } }], redirect: { scheme: 'https', redirectCode: 308 } },
        { match: [{ uri: { prefix: '/port' } }], redirect: { port: 8443, scheme: 'https' } },
        { match: [{ uri: { prefix: '/same-port' } }], redirect: { port: 'request', uri: '/moved?from=old' } },
        { match: [{ uri: { prefix: '/default-port' } }], redirect: { port: 80, uri: '/p' } },
      ],
    });
    const cases: [string, number, string][] = [
      ['http://catalog/v1/getProductRatings?id=7', 301, 'http://newratings.default.svc.cluster.local/v1/bookRatings?id=7'],
      ['http://catalog/foo/bar?x=1', 301, 'http://foo.example.com/bar?x=1'],
      // Envoy keeps the request's host and port when only the scheme changes.
      ['http://catalog:8080/secure/a', 308, 'https://catalog:8080/secure/a'],
      ['http://catalog:8080/port/a', 301, 'https://catalog:8443/port/a'],
      // A query in uri replaces the request's.
      ['http://catalog:8080/same-port?q=1', 301, 'http://catalog:8080/moved?from=old'],
      ['http://catalog:8080/default-port', 301, 'http://catalog/p'],
    ];
    for (const [url, status, location] of cases) {
      const r = await hit(url);
      expect([r.status, r.headers.location, r.body], url).toEqual([status, location, '']);
    }
    expect(backend.received).toHaveLength(0);
  });

  test('the route’s response headers apply to it', async () => {
    meshWith({ routes: [{ redirect: { uri: '/elsewhere' }, headers: { response: { set: { 'cache-control': 'no-store' } } } }] });
    const r = await hit('http://catalog/x');
    expect([r.status, r.headers.location, r.headers['cache-control']]).toEqual([301, 'http://catalog/elsewhere', 'no-store']);
  });
});

describe('directResponse', () => {
  test("answers the status and body (Istio's example), content-type settable by headers", async () => {
    meshWith({
      routes: [
        { match: [{ uri: { exact: '/v1/getProductRatings' } }], directResponse: { status: 503, body: '{"error": "unknown error"}' }, headers: { response: { set: { 'content-type': 'application/json' } } } },
        { match: [{ uri: { exact: '/empty' } }], directResponse: { status: 204 } },
        { match: [{ uri: { exact: '/text' } }], directResponse: { status: 200, body: 'hello' } },
      ],
    });
    const a = await hit('http://catalog/v1/getProductRatings');
    expect([a.status, a.headers['content-type'], a.body]).toEqual([503, 'application/json', '{"error": "unknown error"}']);
    const b = await hit('http://catalog/empty');
    expect([b.status, b.body]).toEqual([204, '']);
    const c = await hit('http://catalog/text');
    expect([c.status, c.headers['content-type'], c.body]).toEqual([200, 'text/plain', 'hello']);
    const viaFetch = await fetch('http://catalog/text', { dispatcher: mesh!.dispatcher } as RequestInit);
    expect([viaFetch.status, await viaFetch.text()]).toEqual([200, 'hello']);
    expect(backend.received).toHaveLength(0);
  });
});

describe('regex matches run under RE2', () => {
  const routes: ServiceConfig['routes'] = [
    { match: [{ headers: { 'x-user': { regex: '(?i)^aaa$' } } }], directResponse: { status: 200, body: 'case-insensitive' } },
    { match: [{ headers: { 'x-probe': { regex: '(a+)+b' } } }], directResponse: { status: 200, body: 'hostile matched' } },
    { directResponse: { status: 404, body: 'no match' } },
  ];

  test("Istio's (?i) example is accepted at createMesh and matches", async () => {
    meshWith({ routes });
    expect((await hit('http://catalog/', { headers: { 'x-user': 'AaA' } })).body).toBe('case-insensitive');
    expect((await hit('http://catalog/', { headers: { 'x-user': 'aaaa' } })).body).toBe('no match');
  });

  test('a backtracking pattern against a 100k-character header is a plain non-match', async () => {
    meshWith({ routes });
    expect((await hit('http://catalog/', { headers: { 'x-probe': `${'a'.repeat(100_000)}!` } })).body).toBe('no match');
    expect((await hit('http://catalog/', { headers: { 'x-probe': `${'a'.repeat(100_000)}b` } })).body).toBe('hostile matched');
  });
});

describe('bad route features are refused at createMesh with the field path', () => {
  const cases: [string, ServiceConfig['routes'], RegExp][] = [
    ['a backreference in a header match', [{ match: [{ headers: { x: { regex: '(a)\\1' } } }] }], /routes\[0\]\.match\[0\]\.headers\.x\.regex: invalid RE2 regular expression/],
    ['a backreference in a rewrite', [{ rewrite: { uriRegexRewrite: { match: '(a)\\1', rewrite: '/' } } }], /routes\[0\]\.rewrite\.uriRegexRewrite\.match: invalid RE2/],
    ['a group the rewrite pattern lacks', [{ rewrite: { uriRegexRewrite: { match: '/(a)', rewrite: '/\\2' } } }], /uriRegexRewrite\.rewrite: \\2 names group 2/],
    ['uri and uriRegexRewrite', [{ rewrite: { uri: '/a', uriRegexRewrite: { match: 'a', rewrite: 'b' } } }], /rewrite\.uriRegexRewrite: give either "uri" or "uriRegexRewrite"/],
    ['an empty rewrite', [{ rewrite: {} }], /routes\[0\]\.rewrite: expected "uri", "uriRegexRewrite" or "authority"/],
    ['a path with a space', [{ rewrite: { uri: '/a b' } }], /rewrite\.uri: expected a URL path/],
    ['Host in request headers', [{ headers: { request: { set: { Host: 'x' } } } }], /headers\.request\.set\.Host: the Host header is set with rewrite\.authority/],
    ['a framing header', [{ headers: { response: { remove: ['content-length'] } } }], /headers\.response\.remove\[0\]: "content-length" is the HTTP client's/],
    ['a header value with a newline', [{ headers: { request: { add: { x: 'a\r\nb' } } } }], /headers\.request\.add\.x: a header value has no CR, LF or NUL/],
    ['redirect and directResponse', [{ redirect: {}, directResponse: { status: 200 } }], /routes\[0\]\.directResponse: give either "redirect" or "directResponse"/],
    ['redirect with a subset', [{ redirect: { uri: '/x' }, subset: 'v1' }], /routes\[0\]\.subset: a route with "redirect" answers by itself/],
    ['redirect with another service', [{ redirect: { uri: '/x' }, service: 'other' }], /routes\[0\]\.service: a route with "redirect" answers by itself/],
    ['directResponse with mirrors', [{ directResponse: { status: 200 }, mirrors: [{ percent: 5 }] }], /routes\[0\]\.mirrors: a route with "directResponse"/],
    ['directResponse with a fault', [{ directResponse: { status: 200 }, fault: { abort: { httpStatus: 500 } } }], /routes\[0\]\.fault: a route with "directResponse"/],
    ['a redirect code that is not a redirect', [{ redirect: { redirectCode: 200 } }], /redirect\.redirectCode: expected one of 301, 302, 303, 307, 308/],
    ['a bad redirect port', [{ redirect: { port: 70_000 } }], /redirect\.port/],
    ['a direct response without status', [{ directResponse: {} as never }], /directResponse\.status: required/],
  ];
  test.each(cases)('%s', (_name, routes, message) => {
    let err: unknown;
    try {
      meshWith({ routes });
    } catch (e) {
      err = e;
    }
    mesh = null;
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain('services.catalog.routes[0]');
  });
});

test('toJSON writes the features back, and the result configures the same mesh', async () => {
  const routes: ServiceConfig['routes'] = [
    { name: 'r', match: [{ uri: { prefix: '/a' } }], headers: { request: { set: { 'X-A': '1' }, remove: ['x-b'] }, response: { add: { 'x-c': '2' } } }, rewrite: { uri: '/b', authority: 'h' }, subset: 'v1' },
    { name: 'g', rewrite: { uriRegexRewrite: { match: '(?i)x', rewrite: 'y' } } },
    { name: 'moved', match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new', port: 'request' } },
    { name: 'gone', directResponse: { status: 410, body: 'gone' } },
  ];
  const json = meshWith({ routes }).toJSON() as { services: { catalog: { routes: unknown[] } } };
  expect(json.services.catalog.routes).toEqual([
    { name: 'r', match: [{ uri: { prefix: '/a' } }], headers: { request: { set: { 'x-a': '1' }, remove: ['x-b'] }, response: { add: { 'x-c': '2' } } }, rewrite: { uri: '/b', authority: 'h' }, subset: 'v1' },
    { name: 'g', rewrite: { uriRegexRewrite: { match: '(?i)x', rewrite: 'y' } } },
    { name: 'moved', match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new', port: 'request', redirectCode: 301 } },
    { name: 'gone', directResponse: { status: 410, body: 'gone' } },
  ]);
  await mesh!.close();
  const again = createMesh(json as never);
  mesh = again;
  expect((again.toJSON() as typeof json).services.catalog.routes).toEqual(json.services.catalog.routes);
});

test('an interceptor may answer with headers of its own (content-length is set for it)', async () => {
  meshWith({ interceptors: [{ name: 'queue', handle: (call) => call.respond(202, 'queued', { 'x-queue': '7' }) }] });
  const r = await hit('http://catalog/');
  expect([r.status, r.headers['x-queue'], r.headers['content-length'], r.headers['content-type'], r.body]).toEqual([202, '7', '6', undefined, 'queued']);
  expect(backend.received).toHaveLength(0);
});
