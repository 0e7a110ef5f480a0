/**
 * Active health checks, through the public API on real loopback servers: what a check's path may
 * be, that a check is the whole answer (headers and body) within `timeoutMs`, and that checks run
 * over a connection of their own, never the traffic's.
 */
import { createHash } from 'node:crypto';
import type http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { request } from 'undici';
import { afterEach, describe, expect, test } from 'vitest';
import { createMesh, isMeshError, type Mesh, type MeshEventMap, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { hasOpenssl, Pki } from '../support/pki.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  for (const c of cleanups.splice(0).reverse()) await c();
  await closeAll(backends);
  backends = [];
});

function meshFor(endpoints: string[], service: Partial<ServiceConfig>): Mesh {
  return (mesh = createMesh({
    services: { api: { endpoints, retry: false, circuitBreaker: false, outlierDetection: false, ...service } },
    random: () => 0,
    logger: { warn: () => {}, debug: () => {} },
  }));
}

/** Resolves with the next `health-check` event that says `healthy`. */
function checkEvent(m: Mesh, healthy: boolean): Promise<MeshEventMap['health-check']> {
  return new Promise((resolve) => {
    const sub = m.on('health-check', (e) => {
      if (e.healthy !== healthy) return;
      sub.dispose();
      resolve(e);
    });
  });
}

/**
 * A raw HTTP/1.1 server on 127.0.0.1 port 0 that hands each request's head to `onRequest` with its
 * socket, to answer as no http.Server would (headers, then part of the body, then nothing); closed,
 * sockets and all, in teardown.
 */
async function rawServer(onRequest: (socket: net.Socket, head: string) => void): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        onRequest(socket, head);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** 200 with a content-length of 100 and 7 bytes of it. */
const PARTIAL = 'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial';

describe('healthCheck.path: a request target, refused at createMesh when it is not one', () => {
  test.each([['/h\r\nX-Injected: 1'], ['/h\nx'], ['/h ealth'], ['/h\tx'], ['/h\u0000'], ['/h\u007f'], ['/héalth'], ['/h#frag'], ['/h%zz'], ['/h%2']])(
    'refuses %j at services.api.healthCheck.path',
    (path) => {
      let caught: unknown;
      try {
        void createMesh({ services: { api: { endpoints: ['http://127.0.0.1:1'], healthCheck: { path } } } }).close();
      } catch (err) {
        caught = err;
      }
      expect(isMeshError(caught) && caught.code).toBe('INVALID_CONFIG');
      expect((caught as { path?: string }).path).toBe('services.api.healthCheck.path');
    },
  );

  test('takes path and query characters (RFC 3986 pchar, "/", "?", %XX) and sends the path as written', async () => {
    backends = await startBackends(1);
    const path = "/v1/health;v=1/a:b@c/!$&'()*+,~-._?probe=1&next=%2Fx/y?z";
    const seen = new Promise<string>((resolve) => {
      backends[0]!.handler = (req, res) => {
        res.end('ok');
        resolve(req.url!);
      };
    });
    meshFor([backends[0]!.url], { healthCheck: { path, intervalMs: 10 } });
    expect(await seen).toBe(path);
  });
});

describe('a check is its whole answer, headers and body, within timeoutMs', () => {
  const check = { path: '/healthz', intervalMs: 10, timeoutMs: 50, unhealthyThreshold: 1 };

  test('a 200 whose body stalls after the headers fails the check: "timeout after N ms"', async () => {
    let checks = 0;
    const url = await rawServer((socket) => {
      checks++;
      socket.write(PARTIAL); // and nothing more
    });
    const m = meshFor([url], { healthCheck: check });
    const down = await checkEvent(m, false);
    // The first check failed (checks of an endpoint never overlap: the next waits for this one's end).
    expect(checks).toBe(1);
    expect(down).toEqual({ service: 'api', endpoint: url, healthy: false, detail: 'timeout after 50 ms' });
    expect(m.stats().services.api!.endpoints[0]!.health).toBe('unhealthy');
  });

  test('a 200 whose body is cut short (the connection closed mid-body) fails the check, and says so', async () => {
    let checks = 0;
    const url = await rawServer((socket) => {
      checks++;
      socket.end(PARTIAL);
    });
    const m = meshFor([url], { healthCheck: { ...check, timeoutMs: 60_000 } });
    const down = await checkEvent(m, false);
    expect(checks).toBe(1);
    expect(down).toEqual({ service: 'api', endpoint: url, healthy: false, detail: 'status 200, body failed: UND_ERR_SOCKET' });
    expect(m.stats().services.api!.endpoints[0]!.health).toBe('unhealthy');
  });

  test('a 200 whose connection is reset mid-body fails the check', async () => {
    let checks = 0;
    const url = await rawServer((socket) => {
      checks++;
      socket.write(PARTIAL);
      setImmediate(() => socket.resetAndDestroy());
    });
    const m = meshFor([url], { healthCheck: { ...check, timeoutMs: 60_000 } });
    const down = await checkEvent(m, false);
    expect(checks).toBe(1);
    expect(down.detail).toMatch(/^status 200, body failed: (ECONNRESET|UND_ERR_SOCKET)$/);
  });

  test('a whole body, however large and however many chunks, passes (read to its end)', async () => {
    backends = await startBackends(1);
    let checks = 0;
    backends[0]!.handler = (req, res) => {
      if (checks++ === 0) {
        res.statusCode = 503; // the first check fails, so that a passing one is an event
        res.end();
        return;
      }
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let left = 128; // 8 MiB, chunked, with back-pressure
      const write = (): void => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      write();
    };
    const m = meshFor([backends[0]!.url], { healthCheck: { ...check, timeoutMs: 60_000, healthyThreshold: 2 } });
    expect((await checkEvent(m, false)).detail).toBe('status 503');
    expect(await checkEvent(m, true)).toMatchObject({ healthy: true, detail: 'status 200' });
  });
});

describe('checks run over a connection of their own: a check that hangs delays no request', () => {
  /** b0 holds every check (never answers it) and answers requests at once. */
  function holdChecks(b: Backend) {
    const held: { req: http.IncomingMessage; res: http.ServerResponse; closed: Promise<void> }[] = [];
    let arrived: () => void = () => {};
    const first = new Promise<void>((resolve) => (arrived = resolve));
    b.handler = (req, res) => {
      if (req.url !== '/healthz') return void res.end('ok');
      held.push({ req, res, closed: new Promise((resolve) => req.socket.once('close', () => resolve())) });
      arrived();
    };
    return { held, first };
  }

  const get = (m: Mesh) => request('http://api/x', { dispatcher: m.dispatcher }).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }));

  test('with pool.connections: 1, requests made while a check hangs get their answers, and the check is still hanging', async () => {
    backends = await startBackends(1);
    const { held, first } = holdChecks(backends[0]!);
    const m = meshFor([backends[0]!.url], { pool: { connections: 1 }, healthCheck: { path: '/healthz', intervalMs: 10, timeoutMs: 600_000, unhealthyThreshold: 1 } });
    const events = [] as MeshEventMap['health-check'][];
    m.on('health-check', (e) => events.push(e));
    await first; // the first check is in flight, held by the server
    for (let i = 0; i < 3; i++) expect(await get(m)).toEqual({ status: 200, body: 'ok' });
    expect(held).toHaveLength(1); // the same check, still unanswered, its connection open, no verdict
    expect(held[0]!.res.writableEnded).toBe(false);
    expect(held[0]!.req.socket.destroyed).toBe(false);
    expect(events).toEqual([]);
    expect(m.stats().services.api!.endpoints[0]!.health).toBe('healthy');
    // The requests went over another connection than the check's.
    const requests = backends[0]!.received.filter((r) => r.url === '/x');
    expect(requests).toHaveLength(3);
  });

  test("an endpoint that leaves takes its checks' connection with it; close takes the rest", async () => {
    backends = await startBackends(2);
    const [leaving, staying] = backends as [Backend, Backend];
    const a = holdChecks(leaving);
    const b = holdChecks(staying);
    const m = meshFor([leaving.url, staying.url], { healthCheck: { path: '/healthz', intervalMs: 10, timeoutMs: 600_000 } });
    await Promise.all([a.first, b.first]);
    m.setEndpoints('api', [staying.url]);
    await a.held[0]!.closed; // cut at once, not left to its 10-minute timeout
    expect(b.held[0]!.req.socket.destroyed).toBe(false);
    await m.close();
    mesh = null;
    await b.held[0]!.closed;
  });

  describe.skipIf(!hasOpenssl)('over TLS', () => {
    test("the checks' connection is made with the service's TLS (server name, client certificate), apart from the requests' pool", async () => {
      const pki = new Pki();
      cleanups.push(() => pki.dispose());
      const server = pki.issue('api', ['DNS:api']);
      const client = pki.issue('client', ['DNS:client'], { clientAuth: true });
      const connections: { sni: string | false | null; client: string }[] = [];
      let checks = 0;
      const s = https.createServer({ cert: server.cert, key: server.key, ca: pki.ca.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
        if (req.url === '/healthz') res.statusCode = checks++ === 0 ? 503 : 200; // a failing check, then passing ones: both are events
        res.end('ok');
      });
      s.on('secureConnection', (socket: TLSSocket) => {
        const raw = socket.getPeerCertificate().raw;
        connections.push({ sni: socket.servername, client: createHash('sha256').update(raw).digest('hex') });
      });
      s.keepAliveTimeout = 600_000; // the checks keep their connection from one check to the next
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      cleanups.push(() => new Promise<void>((resolve) => (s.closeAllConnections(), s.close(() => resolve()))));
      const url = `https://127.0.0.1:${(s.address() as AddressInfo).port}`;
      const m = meshFor([url], { tls: { ca: pki.ca.cert, cert: client.cert, key: client.key }, healthCheck: { path: '/healthz', intervalMs: 10, unhealthyThreshold: 1, healthyThreshold: 1 } });
      const down = checkEvent(m, false);
      const up = checkEvent(m, true);
      expect((await down).detail).toBe('status 503');
      expect((await up).detail).toBe('status 200');
      const clientCert = createHash('sha256')
        .update(Buffer.from(client.cert.split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64'))
        .digest('hex');
      expect(connections).toEqual([{ sni: 'api', client: clientCert }]); // the checks' one connection, kept alive
      expect(await get(m)).toEqual({ status: 200, body: 'ok' });
      // The request's pool made a connection of its own, with the same TLS.
      expect(connections).toEqual([
        { sni: 'api', client: clientCert },
        { sni: 'api', client: clientCert },
      ]);
    });
  });
});
