// The Host header an endpoint receives is the mesh's — the host the caller addressed
// (hostHeader: 'service') or the endpoint's address ('endpoint') — never one the caller set, in
// any of the shapes undici takes headers in. Checked on real backends that record what they get.
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request, type Dispatcher } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { startBackend, type Backend } from '../support/backend.js';

let backend: Backend;
let shadow: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  backend = await startBackend('b');
  shadow = await startBackend('shadow');
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await Promise.all([backend.close(), shadow.close()]);
});

function meshWith(hostHeader: 'service' | 'endpoint'): Mesh {
  mesh = createMesh({ services: { orders: { endpoints: [backend.url], hostHeader, retry: false } } });
  return mesh;
}

const evil = 'admin.internal.example';
/** One set of headers — a spoofed Host among others — in each shape undici accepts (and an array of pairs). */
const shapes: [string, () => Dispatcher.DispatchOptions['headers']][] = [
  ['object, "Host"', () => ({ Host: evil, 'x-a': '1' })],
  ['object, "host"', () => ({ 'x-a': '1', host: evil })],
  ['object, "host" undefined beside "HOST"', () => ({ host: undefined, HOST: evil, 'x-a': '1' })],
  ['flat array', () => ['x-a', '1', 'HoSt', evil]],
  ['array of pairs', () => [['Host', evil], ['x-a', '1']] as unknown as string[]],
  ['Map', () => new Map([['host', evil], ['x-a', '1']])],
  [
    'generator (read once)',
    () =>
      (function* () {
        yield ['x-a', '1'] as [string, string];
        yield ['Host', evil] as [string, string];
      })(),
  ],
];

describe("a caller's Host header never reaches the endpoint", () => {
  test.each(shapes)("hostHeader 'service': %s → the host the caller addressed", async (_name, headers) => {
    const m = meshWith('service');
    const res = await request('http://orders:8080/x', { dispatcher: m.dispatcher, headers: headers() as never });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(backend.received[0]!.headers).toMatchObject({ host: 'orders:8080', 'x-a': '1' });
  });

  test.each(shapes)("hostHeader 'endpoint': %s → the endpoint's address", async (_name, headers) => {
    const m = meshWith('endpoint');
    const res = await request('http://orders/x', { dispatcher: m.dispatcher, headers: headers() as never });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    expect(backend.received[0]!.headers).toMatchObject({ host: `127.0.0.1:${backend.port}`, 'x-a': '1' });
  });

  test('without a Host header of the caller, the headers are sent as given', async () => {
    const m = meshWith('endpoint');
    const res = await request('http://orders/x', { dispatcher: m.dispatcher, headers: ['x-a', '1', 'x-b', '2'] });
    await res.body.dump();
    expect(backend.received[0]!.headers).toMatchObject({ host: `127.0.0.1:${backend.port}`, 'x-a': '1', 'x-b': '2' });
  });

  test('an iterable entry that is not a [name, value] pair fails with INVALID_REQUEST, as undici would, and nothing is sent', async () => {
    const m = meshWith('service');
    const headers = (function* () {
      yield ['x-a'];
    })();
    const err = await request('http://orders/x', { dispatcher: m.dispatcher, headers: headers as never }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_REQUEST', service: 'orders', cause: { code: 'UND_ERR_INVALID_ARG' } });
    expect(backend.received).toHaveLength(0);
  });

  test("a mirrored copy carries '<host>-shadow', whatever Host the caller set", async () => {
    const mirrored = new Promise<string | undefined>((resolve) => {
      shadow.handler = (req, res) => {
        resolve(req.headers.host);
        res.end();
      };
    });
    mesh = createMesh({
      services: {
        orders: {
          endpoints: [{ url: backend.url, labels: { v: '1' } }, { url: shadow.url, labels: { v: '2' } }],
          subsets: { v1: { labels: { v: '1' } }, v2: { labels: { v: '2' } } },
          routes: [{ subset: 'v1', mirror: { subset: 'v2' } }],
        },
      },
    });
    const res = await request('http://orders/m', { dispatcher: mesh.dispatcher, headers: ['Host', evil] });
    await res.body.dump();
    expect(await mirrored).toBe('orders-shadow');
    expect(backend.received[0]!.headers.host).toBe('orders');
  });
});

// A plaintext pool is made for `http://<service name>` and dials the endpoint's address
// (service/endpoint-set.ts): the Host it writes by itself must be the one meshlet means to send,
// exactly once, and any other Host must still be set per request on the same connections.
describe('the Host a pool writes by itself', () => {
  type Seen = { hosts: string[]; sockets: number };
  async function recorder(host = '127.0.0.1'): Promise<{ url: string; seen: Seen; close(): Promise<void> }> {
    const seen: Seen = { hosts: [], sockets: 0 };
    const server = http.createServer((req, res) => {
      for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]!.toLowerCase() === 'host') seen.hosts.push(req.rawHeaders[i + 1]!);
      res.end('ok');
    });
    server.on('connection', () => seen.sockets++);
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    const port = (server.address() as AddressInfo).port;
    return {
      url: host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`,
      seen,
      close: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  }

  async function get(m: Mesh, url: string, headers?: Record<string, string>): Promise<number> {
    const res = await request(url, { dispatcher: m.dispatcher, ...(headers ? { headers } : {}) });
    await res.body.dump();
    return res.statusCode;
  }

  test("the service's name, once per request, with or without headers of the caller, over one kept-alive connection", async () => {
    const r = await recorder();
    try {
      mesh = createMesh({ services: { orders: { endpoints: [r.url], pool: { connections: 1 } } } });
      expect(await get(mesh, 'http://orders/a')).toBe(200);
      expect(await get(mesh, 'http://orders/b', { 'x-a': '1' })).toBe(200);
      expect(await get(mesh, 'http://orders/c', { Host: evil })).toBe(200);
      expect(r.seen.hosts).toEqual(['orders', 'orders', 'orders']);
      expect(r.seen.sockets).toBe(1);
    } finally {
      await mesh?.close();
      mesh = null;
      await r.close();
    }
  });

  test('another host of the service, a port the caller named, a rewritten authority: each is sent as such, on the same connection', async () => {
    const r = await recorder();
    try {
      mesh = createMesh({
        services: {
          orders: {
            endpoints: [r.url],
            hosts: ['orders.example'],
            pool: { connections: 1 },
            routes: [{ match: [{ uri: { prefix: '/rw' } }], rewrite: { authority: 'rewritten.example' } }, {}],
          },
        },
      });
      for (const url of ['http://orders.example/', 'http://orders/', 'http://orders:8080/', 'http://orders/rw', 'http://orders/']) expect(await get(mesh, url)).toBe(200);
      expect(r.seen.hosts).toEqual(['orders.example', 'orders', 'orders:8080', 'rewritten.example', 'orders']);
      expect(r.seen.sockets).toBe(1);
    } finally {
      await mesh?.close();
      mesh = null;
      await r.close();
    }
  });

  test("an IPv6 endpoint is dialled at its address; hostHeader 'endpoint' sends that address", async () => {
    let r: Awaited<ReturnType<typeof recorder>>;
    try {
      r = await recorder('::1');
    } catch (err) {
      // Only a machine without IPv6 on loopback lands here; the IPv4 tests above still run.
      expect((err as NodeJS.ErrnoException).code).toMatch(/EADDRNOTAVAIL|EAFNOSUPPORT/);
      return;
    }
    try {
      mesh = createMesh({ services: { orders: { endpoints: [r.url] }, direct: { endpoints: [r.url], hostHeader: 'endpoint' } } });
      expect(await get(mesh, 'http://orders/')).toBe(200);
      expect(await get(mesh, 'http://direct/')).toBe(200);
      expect(r.seen.hosts).toEqual(['orders', new URL(r.url).host]);
    } finally {
      await mesh?.close();
      mesh = null;
      await r.close();
    }
  });

  test("undici's diagnostics name the connection and the request by the service's name (as the README says)", async () => {
    const r = await recorder();
    const connected: string[] = [];
    const created: string[] = [];
    const onConnected = (m: unknown): void => void connected.push((m as { connectParams: { hostname: string } }).connectParams.hostname);
    const onCreate = (m: unknown): void => void created.push(String((m as { request: { origin: unknown } }).request.origin));
    diagnostics.subscribe('undici:client:connected', onConnected);
    diagnostics.subscribe('undici:request:create', onCreate);
    try {
      mesh = createMesh({ services: { orders: { endpoints: [r.url] } } });
      expect(await get(mesh, 'http://orders/')).toBe(200);
      expect(connected).toEqual(['orders']);
      expect(created).toEqual(['http://orders']);
    } finally {
      diagnostics.unsubscribe('undici:client:connected', onConnected);
      diagnostics.unsubscribe('undici:request:create', onCreate);
      await mesh?.close();
      mesh = null;
      await r.close();
    }
  });

  test('a service only one port reaches: its pools are made for name:port, which callers must use', async () => {
    const r = await recorder();
    const connected: string[] = [];
    const onConnected = (m: unknown): void => void connected.push((m as { connectParams: { host: string } }).connectParams.host);
    diagnostics.subscribe('undici:client:connected', onConnected);
    try {
      mesh = createMesh({ services: { orders: { endpoints: [r.url], port: 9080 } } });
      expect(await get(mesh, 'http://orders:9080/')).toBe(200);
      expect(r.seen.hosts).toEqual(['orders:9080']);
      expect(connected).toEqual(['orders:9080']);
    } finally {
      diagnostics.unsubscribe('undici:client:connected', onConnected);
      await mesh?.close();
      mesh = null;
      await r.close();
    }
  });

  test("a dead endpoint fails as a connect failure naming the endpoint's address, not the service's name", async () => {
    const r = await recorder();
    await r.close(); // its port now refuses connections
    mesh = createMesh({ services: { orders: { endpoints: [r.url], retry: false } } });
    const err = await request('http://orders/', { dispatcher: mesh.dispatcher }).catch((e: unknown) => e);
    const port = new URL(r.url).port;
    expect(err).toMatchObject({ code: 'UPSTREAM_FAILED', kind: 'connect-failure', endpoint: r.url, cause: { code: 'ECONNREFUSED', port: Number(port) } });
    expect((err as Error & { cause: Error }).cause.message).toContain(`127.0.0.1:${port}`);
  });
});
