// Route header operations and rewrites, through createMesh with real backends that record what
// they receive: headers set, added and removed; the rewritten path and Host.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

let v1: Backend;
let v2: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  v1 = await startBackend('v1');
  v2 = await startBackend('v2');
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll([v1, v2]);
});

function meshWith(service: Partial<ServiceConfig>): Mesh {
  mesh = createMesh({
    services: {
      catalog: {
        endpoints: [
          { url: v1.url, labels: { version: 'v1' } },
          { url: v2.url, labels: { version: 'v2' } },
        ],
        subsets: { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' } } },
        retry: false,
        ...service,
      },
    },
  });
  return mesh;
}

async function hit(path: string, opts: Parameters<typeof request>[1] = {}): Promise<{ status: number; headers: Record<string, unknown> }> {
  const res = await request(`http://catalog${path}`, { dispatcher: mesh!.dispatcher, ...opts });
  await res.body.text();
  return { status: res.statusCode, headers: res.headers };
}

const last = (b: Backend) => b.received[b.received.length - 1]!;

describe('request header operations', () => {
  test('remove, then set, then add — as Envoy applies them — whatever shape the caller gives', async () => {
    meshWith({
      routes: [
        {
          subset: 'v1',
          headers: { request: { set: { 'x-env': 'prod', 'x-both': 'set' }, add: { 'x-trace': 'mesh', 'x-both': 'added', 'x-gone': 'back' }, remove: ['x-secret', 'x-gone'] } },
        },
      ],
    });
    const callers = [
      { 'x-env': 'dev', 'x-trace': 'caller', 'X-Secret': 's3cr3t', 'x-gone': 'old', 'x-other': 'kept' },
      ['x-env', 'dev', 'x-trace', 'caller', 'X-Secret', 's3cr3t', 'x-gone', 'old', 'x-other', 'kept'],
      [['x-env', 'dev'], ['x-trace', 'caller'], ['X-Secret', 's3cr3t'], ['x-gone', 'old'], ['x-other', 'kept']],
    ];
    for (const headers of callers) {
      expect((await hit('/', { headers: headers as never })).status).toBe(200);
      const h = last(v1).headers;
      expect(h['x-env']).toBe('prod');
      expect(h['x-trace']).toBe('caller, mesh');
      expect(h['x-both']).toBe('set, added');
      expect(h['x-secret']).toBeUndefined();
      expect(h['x-gone']).toBe('back');
      expect(h['x-other']).toBe('kept');
      expect(h.host).toBe('catalog');
    }
    expect(v1.received).toHaveLength(3);
  });

  test('the caller’s headers object is not changed; a route without operations passes it on as it is', async () => {
    const seen: unknown[] = [];
    meshWith({
      routes: [{ match: [{ uri: { prefix: '/edit' } }], headers: { request: { set: { 'x-a': '1' } } } }, { subset: 'v2' }],
      interceptors: [{ name: 'spy', handle: (call, next) => (seen.push(call.opts.headers), next(call)) }],
    });
    const headers = { 'x-a': '0' };
    await hit('/edit', { headers });
    await hit('/plain', { headers });
    expect(headers).toEqual({ 'x-a': '0' });
    expect(seen[0]).not.toBe(headers);
    expect(seen[1]).toBe(headers);
    expect(last(v2).headers['x-a']).toBe('0');
  });
});

describe('response header operations', () => {
  beforeEach(() => {
    v1.handler = (_req, res) => {
      res.setHeader('x-internal', 'leak');
      res.setHeader('x-version', 'v1');
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end('ok');
    };
  });
  const routes: ServiceConfig['routes'] = [
    { subset: 'v1', headers: { response: { set: { 'x-version': 'edited' }, add: { 'set-cookie': 'c=3', 'x-served-by': 'mesh' }, remove: ['x-internal'] } } },
  ];

  test('apply to what the caller gets from an endpoint (undici.request)', async () => {
    meshWith({ routes });
    const { headers } = await hit('/');
    expect(headers['x-version']).toBe('edited');
    expect(headers['x-internal']).toBeUndefined();
    expect(headers['x-served-by']).toBe('mesh');
    expect(headers['set-cookie']).toEqual(['a=1', 'b=2', 'c=3']);
  });

  test("apply for Node's fetch too (its handler reads raw headers)", async () => {
    meshWith({ routes });
    const res = await fetch('http://catalog/', { dispatcher: mesh!.dispatcher } as RequestInit);
    expect(await res.text()).toBe('ok');
    expect(res.headers.get('x-version')).toBe('edited');
    expect(res.headers.get('x-internal')).toBeNull();
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2', 'c=3']);
  });
});

describe('rewrite', () => {
  test('uri replaces the prefix the matching block matched, the query kept', async () => {
    meshWith({
      routes: [
        { match: [{ uri: { exact: '/legacy' } }, { uri: { prefix: '/old/' } }], rewrite: { uri: '/new/' }, subset: 'v1' },
        { match: [{ uri: { regex: '/items/[0-9]+' } }], rewrite: { uri: '/item' }, subset: 'v1' },
        { match: [{ headers: { 'x-base': { present: true } } }], rewrite: { uri: '/base/' }, subset: 'v1' },
        { rewrite: { uri: '/all' }, subset: 'v1' },
      ],
    });
    const cases: [string, Record<string, string>, string][] = [
      ['/old/a/b?q=1', {}, '/new/a/b?q=1'],
      ['/legacy?x=2', {}, '/new/?x=2'],
      ['/items/42?full=1', {}, '/item?full=1'],
      // A block without a uri condition matched the prefix "/".
      ['/x/y', { 'x-base': '1' }, '/base/x/y'],
      ['/z', {}, '/allz'],
    ];
    for (const [path, headers, expected] of cases) {
      await hit(path, { headers });
      expect(last(v1).url, path).toBe(expected);
    }
  });

  test("uriRegexRewrite replaces every match in the path (RE2, with groups), the query kept aside", async () => {
    meshWith({
      routes: [
        { match: [{ uri: { prefix: '/service/' } }], rewrite: { uriRegexRewrite: { match: '^/service/([^/]+)(/.*)$', rewrite: '\\2/instance/\\1' } }, subset: 'v1' },
        { rewrite: { uriRegexRewrite: { match: '(?i)/xxx/', rewrite: '/yyy/' } }, subset: 'v1' },
      ],
    });
    await hit('/service/foo/v1/api?q=/service/a/b');
    expect(last(v1).url).toBe('/v1/api/instance/foo?q=/service/a/b');
    await hit('/aaa/XxX/bbb/xXx/?k=/xxx/');
    expect(last(v1).url).toBe('/aaa/yyy/bbb/yyy/?k=/xxx/');
  });

  test.each(['http://evil.example/', 'x', 'v2/'])('a uri that is not a path (%s) is refused by createMesh', (uri) => {
    expect(() => meshWith({ routes: [{ rewrite: { uri }, subset: 'v1' }] })).toThrowError(/services\.catalog\.routes\[0\]\.rewrite\.uri: expected a path starting with "\/"/);
  });

  test('a regex rewrite that leaves no path starting with "/" ends the request with INVALID_REQUEST, and nothing is sent', async () => {
    meshWith({
      routes: [
        { match: [{ uri: { prefix: '/abs/' } }], rewrite: { uriRegexRewrite: { match: '^/abs/', rewrite: 'http://evil.example/' } }, subset: 'v1' },
        { match: [{ uri: { prefix: '/gone' } }], rewrite: { uriRegexRewrite: { match: '^.*$', rewrite: '' } }, subset: 'v1' },
      ],
    });
    for (const path of ['/abs/a', '/gone?q=1']) {
      await expect(hit(path)).rejects.toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringMatching(/the route's rewrite gave a path that does not start with "\/"/) });
    }
    expect(v1.received).toHaveLength(0);
  });

  test('authority is the Host the endpoints get, whatever hostHeader says', async () => {
    for (const hostHeader of ['service', 'endpoint'] as const) {
      meshWith({ hostHeader, routes: [{ rewrite: { authority: 'reviews.internal:8443' }, subset: 'v1' }] });
      await hit('/r', { headers: { host: 'caller-chosen' } });
      expect(last(v1).headers.host).toBe('reviews.internal:8443');
      await mesh!.close();
      mesh = null;
    }
  });

  test('a retry and a mirror copy carry the rewritten request too', async () => {
    v1.fault = { kind: 'status', status: 503 };
    meshWith({
      retry: { attempts: 1, backoff: { baseMs: 1, maxMs: 1 } },
      subsets: { v1: { labels: { version: 'v1' } }, v2: { labels: { version: 'v2' } } },
      routes: [{ rewrite: { uri: '/v2/', authority: 'new-host' }, headers: { request: { set: { 'x-r': '1' } } }, subset: 'v1', mirror: { subset: 'v2' } }],
    });
    expect((await hit('/a')).status).toBe(503);
    expect(v1.received.map((r) => [r.url, r.headers.host, r.headers['x-r']])).toEqual([
      ['/v2/a', 'new-host', '1'],
      ['/v2/a', 'new-host', '1'],
    ]);
    await vi.waitFor(() => expect(v2.received.length).toBe(1));
    expect([last(v2).url, last(v2).headers.host, last(v2).headers['x-r']]).toEqual(['/v2/a', 'new-host-shadow', '1']);
  });
});
