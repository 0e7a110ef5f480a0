// The mesh's http.Agent with node:http itself: requests to services go through the mesh's pipeline
// per request (balancing, retries, limits), over an in-process connection; other hosts behave as
// with a plain http.Agent; failures reach the ClientRequest's 'error' as meshlet's typed errors.
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createMesh, InvalidRequestError, MeshAgent, OverloadedError, TimeoutError, UnknownServiceError, type Mesh, type MeshConfig, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackend, startBackends, type Backend } from '../support/backend.js';
import { hold } from '../support/holding.js';
import { httpError, httpRequest } from '../support/http-client.js';

let backends: Backend[];
let mesh: Mesh;
let agent: MeshAgent;

function meshWith(service: Partial<ServiceConfig> = {}, extra: Pick<MeshConfig, 'unknownHosts'> = {}): void {
  mesh = createMesh({ services: { orders: { endpoints: backends.map((b) => b.url), balancer: 'round-robin', ...service } }, ...extra });
  agent = mesh.agent();
}

beforeEach(async () => {
  backends = await startBackends(3);
});

afterEach(async () => {
  agent?.destroy();
  await mesh?.close();
  await closeAll(backends);
});

describe('requests to a service', () => {
  test('http.get reaches the service over an in-process connection, with the Host header the mesh sets', async () => {
    meshWith();
    const res = await httpRequest('http://orders/api/42?x=1', { agent });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ url: '/api/42?x=1', host: 'orders', method: 'GET' });
    expect(res.socket).not.toBeInstanceOf(net.Socket);
    expect(res.headers['x-backend']).toMatch(/^b[012]$/);
  });

  test('each request on a kept-alive connection is dispatched in the async context of the code that made it', async () => {
    const store = new AsyncLocalStorage<string>();
    const seen: (string | undefined)[] = [];
    mesh = createMesh({
      interceptors: [{ name: 'context', handle: (call, next) => (seen.push(store.getStore()), next(call)) }],
      services: { orders: { endpoints: [backends[0]!.url] } },
    });
    agent = mesh.agent();
    const sockets = new Set<unknown>();
    for (const id of ['first', 'second', 'third']) sockets.add((await store.run(id, () => httpRequest('http://orders/x', { agent }))).socket);
    expect(sockets.size).toBe(1);
    expect(seen).toEqual(['first', 'second', 'third']);
  });

  // With maxSockets, a request that waited gets the connection another request freed (kept
  // alive) or a new one made when that one closed (no keep-alive): Node calls neither
  // createConnection in its context nor reuseSocket for it.
  test.each([
    ['kept alive', true],
    ['made again after the first closed', false],
  ])('with maxSockets: 1, a request that waited for a connection (%s) is dispatched in its own context', async (_, keepAlive) => {
    const store = new AsyncLocalStorage<string>();
    const seen: (string | undefined)[] = [];
    mesh = createMesh({
      interceptors: [{ name: 'context', handle: (call, next) => (seen.push(store.getStore()), next(call)) }],
      services: { orders: { endpoints: [backends[0]!.url] } },
    });
    agent = mesh.agent({ maxSockets: 1, keepAlive });
    const held = hold(backends[0]!);
    const first = store.run('first', () => httpRequest('http://orders/first', { agent }));
    const second = store.run('second', () => httpRequest('http://orders/second', { agent }));
    const h1 = await held.next();
    expect(h1.req.url).toBe('/first');
    h1.answer();
    const h2 = await held.next();
    expect(h2.req.url).toBe('/second');
    h2.answer();
    await Promise.all([first, second]);
    expect(seen).toEqual(['first', 'second']);
  });

  test('100 sequential requests on one keep-alive connection are balanced per request over 3 endpoints', async () => {
    meshWith();
    const sockets = new Set<unknown>();
    const seen: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const res = await httpRequest(`http://orders/r${i}`, { agent });
      sockets.add(res.socket);
      const b = (JSON.parse(res.body) as { backend: string }).backend;
      seen[b] = (seen[b] ?? 0) + 1;
    }
    expect(sockets.size).toBe(1);
    // Round robin over three: 34 / 33 / 33 in some order.
    expect(Object.values(seen).sort()).toEqual([33, 33, 34]);
  });

  test('a POST body, its method and end-to-end headers arrive; hop-by-hop headers do not', async () => {
    meshWith();
    const body = JSON.stringify({ item: 'book', qty: 2 });
    const res = await httpRequest(
      'http://orders/orders',
      { agent, method: 'POST', headers: { 'content-type': 'application/json', 'x-trace': 't1', 'x-hop': 'h', connection: 'keep-alive, x-hop' } },
      body,
    );
    expect(res.status).toBe(200);
    const got = backends.flatMap((b) => b.received);
    expect(got).toHaveLength(1);
    expect(got[0]!.method).toBe('POST');
    expect(got[0]!.body.toString()).toBe(body);
    expect(got[0]!.headers).toMatchObject({ 'content-type': 'application/json', 'x-trace': 't1', host: 'orders' });
    expect(got[0]!.headers['x-hop']).toBeUndefined();
  });

  test("the response's hop-by-hop headers, and those its Connection header names, do not reach the client", async () => {
    const server = http.createServer((_req, res) => {
      res.setHeader('connection', 'keep-alive, x-private');
      res.setHeader('x-private', 'only for this connection');
      res.setHeader('x-public', 'end to end');
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as net.AddressInfo;
      mesh = createMesh({ services: { orders: { endpoints: [`http://127.0.0.1:${port}`] } } });
      agent = mesh.agent();
      const res = await httpRequest('http://orders/h', { agent });
      expect(res.status).toBe(200);
      expect(res.headers['x-public']).toBe('end to end');
      expect(res.headers['x-private']).toBeUndefined();
    } finally {
      await mesh.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("hostHeader: 'endpoint' applies as for fetch: the client's default Host is not forwarded", async () => {
    meshWith({ endpoints: [backends[0]!.url], hostHeader: 'endpoint' });
    const res = await httpRequest('http://orders/h', { agent });
    expect((JSON.parse(res.body) as { host: string }).host).toBe(new URL(backends[0]!.url).host);
  });

  test('the endpoint gets the Host the caller addressed, never a Host header the caller set (as through fetch)', async () => {
    meshWith();
    const res = await httpRequest('http://orders/h', { agent, headers: { host: 'admin.internal' } });
    expect((JSON.parse(res.body) as { host: string }).host).toBe('orders');
  });

  test('a Kubernetes form of the name (in a namespace of the service) and a port address the service too', async () => {
    meshWith({ namespaces: ['shop'] });
    for (const url of ['http://orders.shop.svc.cluster.local/k', 'http://orders:8080/k']) {
      const res = await httpRequest(url, { agent });
      expect(res.status).toBe(200);
      expect(res.socket).not.toBeInstanceOf(net.Socket);
    }
  });

  test('a reset is retried by the mesh: the caller gets the answer', async () => {
    meshWith({ endpoints: [backends[0]!.url] });
    let resets = 0;
    backends[0]!.handler = (req, res) => {
      if (resets++ === 0) return void req.socket.destroy();
      res.end('second try');
    };
    const res = await httpRequest('http://orders/flaky', { agent });
    expect(res).toMatchObject({ status: 200, body: 'second try' });
    expect(backends[0]!.received).toHaveLength(2);
    expect(mesh.stats().services.orders!.retries).toBe(1);
  });
});

describe('failures reach the ClientRequest as typed errors', () => {
  test('OVERLOADED: the ClientRequest emits the OverloadedError itself', async () => {
    meshWith({ endpoints: [backends[0]!.url], limits: { maxRequests: 1, maxPendingRequests: 0 } });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const arrived = new Promise<void>((r) => {
      backends[0]!.handler = (_req, res) => {
        r();
        void held.then(() => res.end('done'));
      };
    });
    const first = httpRequest('http://orders/slow', { agent });
    await arrived;
    const err = await httpError('http://orders/refused', { agent });
    expect(err).toBeInstanceOf(OverloadedError);
    expect(err).toMatchObject({ code: 'OVERLOADED', service: 'orders' });
    release();
    expect((await first).body).toBe('done');
    // The connection the error ended is gone; the next request gets a new one and works.
    expect((await httpRequest('http://orders/again', { agent })).status).toBe(200);
  });

  test('a failure after the response started: the ClientRequest emits TIMEOUT, the response is aborted', async () => {
    meshWith({ endpoints: [backends[0]!.url], timeoutMs: 100 });
    backends[0]!.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial'); // and never ends: the mesh's deadline covers the body
    };
    const seen = await new Promise<{ reqError: Error; aborted: boolean; data: string }>((resolve) => {
      let data = '';
      let aborted = false;
      const req = http.get('http://orders/stalls', { agent }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('aborted', () => (aborted = true));
        res.on('error', () => {}); // Node's own ECONNRESET 'aborted' on the response
      });
      req.on('error', (reqError) => setImmediate(() => resolve({ reqError, aborted, data })));
    });
    expect(seen.reqError).toBeInstanceOf(TimeoutError);
    expect(seen.data).toBe('partial');
    expect(seen.aborted).toBe(true);
  });

  test('after mesh.close(), requests fail with MESH_CLOSED', async () => {
    meshWith();
    await mesh.close();
    const err = await httpError('http://orders/x', { agent });
    expect(err.code).toBe('MESH_CLOSED');
  });

  test('an https URL with the agent is refused by node:http at once (the agent speaks http)', () => {
    meshWith();
    expect(() => http.get('https://orders/', { agent } as http.RequestOptions)).toThrow(/Protocol "https:" not supported/);
  });
});

describe('hosts that are not services', () => {
  test('pass through over a real socket, as with a plain http.Agent (default unknownHosts)', async () => {
    meshWith();
    const other = await startBackend('other');
    try {
      const res = await httpRequest(`${other.url}/direct`, { agent });
      expect(JSON.parse(res.body)).toMatchObject({ backend: 'other', url: '/direct' });
      expect(res.socket).toBeInstanceOf(net.Socket);
      expect(backends.every((b) => b.received.length === 0)).toBe(true);
    } finally {
      await other.close();
    }
  });

  test("with unknownHosts: 'reject', the ClientRequest emits UnknownServiceError", async () => {
    meshWith({}, { unknownHosts: 'reject' });
    const other = await startBackend('other');
    try {
      const err = await httpError(`${other.url}/direct`, { agent });
      expect(err).toBeInstanceOf(UnknownServiceError);
      expect(err.code).toBe('UNKNOWN_SERVICE');
      expect(other.received).toHaveLength(0);
      // Services still work through the same agent.
      expect((await httpRequest('http://orders/ok', { agent })).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  test('with a passthrough list, a listed host goes out to its server; an unlisted one is UnknownServiceError, never contacted', async () => {
    meshWith({}, { unknownHosts: { passthrough: ['127.0.0.1'] } });
    const other = await startBackend('other');
    try {
      const res = await httpRequest(`${other.url}/listed`, { agent });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ backend: 'other', url: '/listed' });
      // The client's connection is in process; the mesh's dispatcher decides and opens the real one.
      expect(res.socket).not.toBeInstanceOf(net.Socket);
      expect(other.received.map((r) => r.url)).toEqual(['/listed']);
      // The same server by a name the list does not have: refused by the mesh's rule.
      const err = await httpError(`http://localhost:${other.port}/unlisted`, { agent });
      expect(err).toBeInstanceOf(UnknownServiceError);
      expect(err).toMatchObject({ code: 'UNKNOWN_SERVICE', service: `localhost:${other.port}` });
      expect(other.received.map((r) => r.url)).toEqual(['/listed']);
      expect(backends.every((b) => b.received.length === 0)).toBe(true);
      // Services still work through the same agent.
      expect((await httpRequest('http://orders/ok', { agent })).status).toBe(200);
    } finally {
      await other.close();
    }
  });
});

describe('what the in-process parser refuses is answered, never reset', () => {
  /** What comes back on a raw connection of the agent's: the bytes read, then how it ended. */
  function raw(written: string[]): Promise<{ text: string; ended: 'close' | Error }> {
    return new Promise((resolve) => {
      const socket = agent.createConnection({ host: 'orders', port: 80 }) as net.Socket;
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
      socket.on('error', (err) => resolve({ text, ended: err }));
      socket.on('close', () => resolve({ text, ended: 'close' }));
      for (const w of written) socket.write(w);
    });
  }

  test('request headers past 16 KB reach the endpoint, as through fetch', async () => {
    const big = http.createServer({ maxHeaderSize: 65_536 }, (req, res) => res.end(`saw ${req.headers['x-big']?.length}`));
    big.listen(0, '127.0.0.1');
    await new Promise((resolve) => big.once('listening', resolve));
    try {
      mesh = createMesh({ services: { orders: { endpoints: [`http://127.0.0.1:${(big.address() as net.AddressInfo).port}`] } } });
      agent = mesh.agent();
      const headers = { 'x-big': 'a'.repeat(20_000) };
      expect((await mesh.fetch('http://orders/', { headers })).status).toBe(200);
      expect(await httpRequest('http://orders/', { agent, headers })).toMatchObject({ status: 200, body: 'saw 20000' });
    } finally {
      big.closeAllConnections();
      big.close();
    }
  });

  test('a header block past the agent’s 16 MiB: a 431 the client reads whole, naming INVALID_REQUEST, then a clean close', async () => {
    meshWith();
    const res = await httpRequest('http://orders/', { agent, headers: { 'x-big': 'a'.repeat(16_777_216) } });
    expect(res.status).toBe(431);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.body).toMatch(/^INVALID_REQUEST: service "orders": the request is invalid: /);
    expect(backends.every((b) => b.received.length === 0)).toBe(true);
  });

  test('a malformed request: 400 naming INVALID_REQUEST, then the connection closes without an error', async () => {
    meshWith();
    const { text, ended } = await raw(['NOT HTTP AT ALL\r\n\r\n']);
    expect(ended).toBe('close');
    expect(text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(text).toMatch(/\r\nconnection: close\r\n/);
    expect(text).toMatch(/\r\n\r\nINVALID_REQUEST: service "orders": the request is invalid: .+\n$/);
    expect(backends.every((b) => b.received.length === 0)).toBe(true);
  });

  test('malformed bytes after a request in flight: that request fails with InvalidRequestError, the endpoint’s request is cancelled', async () => {
    meshWith({ endpoints: [backends[0]!.url] });
    const held = hold(backends[0]!);
    const socket = agent.createConnection({ host: 'orders', port: 80 }) as net.Socket;
    const ended = new Promise<unknown>((resolve) => socket.on('error', resolve).on('close', () => resolve('close')));
    socket.write('GET /held HTTP/1.1\r\nhost: orders\r\n\r\n');
    const h = await held.next();
    socket.write('NOT HTTP AT ALL\r\n\r\n');
    const err = await ended;
    expect(err).toBeInstanceOf(InvalidRequestError);
    expect(err).toMatchObject({ code: 'INVALID_REQUEST', service: 'orders' });
    await h.closed;
  });
});
