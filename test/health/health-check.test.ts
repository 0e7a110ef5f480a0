/**
 * Active health checks, through the public API on real loopback servers: what a check's path may
 * be, that a check is the whole answer (headers and body) within `timeoutMs`, and that checks run
 * over a connection of their own, never the traffic's.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { createMesh, isMeshError, type Mesh, type MeshEventMap, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

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
