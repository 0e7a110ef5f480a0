// The core never loses track of a request: pending requests keep the process alive, close() cuts
// what runs past its grace with MESH_CLOSED and nothing after, the caller's own body failing is
// the caller's error, and every failure a caller sees is a MeshError. Real servers on loopback.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { request, upgrade } from 'undici';
import { createMesh, isMeshError, parseEndpointSpec, type Mesh, type MeshEventMap, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

// Custom discovery types these tests register, declared as users declare theirs.
declare module '../../src/discovery/discovery.js' {
  interface CustomDiscoveries { 'broken': Record<string, unknown>; 'flaky': Record<string, unknown>; }
}

let backends: Backend[] = [];
let mesh: Mesh | null = null;

afterEach(async () => {
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await closeAll(backends);
  backends = [];
});

function meshOver(urls: string[], service: Partial<ServiceConfig> = {}): Mesh {
  mesh = createMesh({
    services: { api: { endpoints: urls, balancer: 'round-robin', ...service } },
    random: () => 0,
    logger: { debug: () => {}, warn: () => {} },
  });
  return mesh;
}

const get = (m: Mesh, path = '/x') =>
  request(`http://api${path}`, { dispatcher: m.dispatcher }).then(
    async (r) => {
      await r.body.dump();
      return r.statusCode as number | Error;
    },
    (e: Error) => e,
  );

const dist = resolve(__dirname, '../../dist');

/** Run a script with the Node this suite runs on (asynchronously: the backends live in this process). */
function run(file: string, cwd: string): Promise<{ status: number | null; out: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [file], { cwd, encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) => {
      done({ status: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

describe('a pending request keeps the process alive', () => {
  // The script has no server and nothing else to do: only the request (its back-off timer, then
  // its socket) can keep it running until the response arrives. random 0.49: round robin starts
  // at the refused endpoint (⌊0.49 × 2⌋ = 0) and the back-off is ⌊0.49 × 300⌋ = 147 ms, not 0.
  for (const kind of ['mjs', 'cjs'] as const) {
    test(`${kind}: a retry's back-off after a refused connection is waited for`, async () => {
      backends = await startBackends(2);
      await backends[0]!.stop(); // refuses connections
      const dir = mkdtempSync(join(tmpdir(), 'meshlet-alive-'));
      const load = kind === 'mjs' ? `import { createMesh } from ${JSON.stringify(join(dist, 'index.mjs'))};` : `const { createMesh } = require(${JSON.stringify(join(dist, 'index.js'))});`;
      const body = `
        const mesh = createMesh({ random: () => 0.49, logger: { debug() {}, warn() {} }, services: { api: {
          endpoints: ${JSON.stringify(backends.map((b) => b.url))}, balancer: 'round-robin',
          retry: { backoff: { baseMs: 300, maxMs: 300 } } } } });
        mesh.fetch('http://api/x').then(async (r) => { console.log('status', r.status); await mesh.close(); },
          (e) => { console.log('failed', e.cause?.code ?? e.code); });`;
      const file = join(dir, `script.${kind}`);
      writeFileSync(file, `${load}\n${body}\n`);
      try {
        const r = await run(file, dir);
        expect(r.out).toContain('status 200');
        expect(r.status).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect(backends[1]!.received).toHaveLength(1);
    });
  }
});

describe('every other timer a request waits on keeps the process alive too', () => {
  // As above: a script whose only work is one pending request that waits on one of the mesh's
  // timers. Had the timer been unref'd, Node would exit (status 0, printing nothing) before it
  // fired; the response printed proves the process waited. The waits are short (≤ 200 ms); what
  // is asserted is the output and the exit status, never the time taken.
  async function runAlive(body: string): Promise<{ status: number | null; out: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'meshlet-alive-'));
    const file = join(dir, 'script.mjs');
    writeFileSync(file, `import { createMesh, parseEndpointSpec } from ${JSON.stringify(join(dist, 'index.mjs'))};\nimport diagnostics from 'node:diagnostics_channel';\n${body}\n`);
    try {
      return await run(file, dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const quiet = `random: () => 0, logger: { debug() {}, warn() {} }`;
  const report = `(r) => { console.log('status', r.status); return mesh.close(); }, (e) => { console.log('failed', e.cause?.code ?? e.code); return mesh.close({ graceMs: 0 }); }`;

  test('a rate-limit wait (mode: wait): the second request waits for its token', async () => {
    backends = await startBackends(1);
    // 5/s with a burst of 1: the first request takes the token, the second waits about 200 ms
    // for the next one — after the first has ended, so its connection is idle (undici unrefs it).
    const r = await runAlive(`
      const mesh = createMesh({ ${quiet}, services: { api: { endpoints: [${JSON.stringify(backends[0]!.url)}],
        rateLimit: { requestsPerSecond: 5, burst: 1, mode: 'wait', maxWaitMs: 1000 } } } });
      const first = await mesh.fetch('http://api/first');
      console.log('first', first.status, await first.text() !== '');
      mesh.fetch('http://api/second').then(${report});`);
    expect(r.out).toContain('first 200 true');
    expect(r.out).toContain('status 200');
    expect(r.status).toBe(0);
    expect(backends[0]!.received.map((q) => q.url)).toEqual(['/first', '/second']);
  });

  test("a fault delay: the route's delay is waited for, then the request is sent", async () => {
    backends = await startBackends(1);
    const r = await runAlive(`
      const mesh = createMesh({ ${quiet}, services: { api: { endpoints: [${JSON.stringify(backends[0]!.url)}],
        routes: [{ fault: { delay: { fixedDelayMs: 150, percent: 100 } } }] } } });
      mesh.fetch('http://api/x').then(${report});`);
    expect(r.out).toContain('status 200');
    expect(r.status).toBe(0);
    expect(backends[0]!.received).toHaveLength(1);
  });

  test('a concurrency queue: a request waiting for the one slot waits until maxQueueTimeMs (OVERLOADED)', async () => {
    backends = await startBackends(1);
    backends[0]!.fault = { kind: 'hang' }; // the first request holds the slot for good
    // The slot holder's own socket would keep the process alive by itself; the script unrefs it
    // (undici publishes each new connection), so only the queue's timer is left to do so.
    const r = await runAlive(`
      diagnostics.subscribe('undici:client:connected', ({ socket }) => socket.unref());
      const mesh = createMesh({ ${quiet}, services: { api: { endpoints: [${JSON.stringify(backends[0]!.url)}], retry: false,
        limits: { maxRequests: 1, maxPendingRequests: 1, maxQueueTimeMs: 150 } } } });
      const holder = mesh.fetch('http://api/holder').then((r) => 'status ' + r.status, (e) => 'failed ' + (e.cause?.code ?? e.code));
      mesh.fetch('http://api/queued').then(${report}).then(async () => console.log('holder', await holder));`);
    expect(r.out).toContain('failed OVERLOADED'); // the queued request, after its wait
    expect(r.out).toContain('holder failed MESH_CLOSED'); // cut by the close that followed
    expect(r.status).toBe(0);
    expect(backends[0]!.received.map((q) => q.url)).toEqual(['/holder']);
  });

  test("discovery's first answer: a request made before it waits for it", async () => {
    backends = await startBackends(1);
    // The discovery answers after a timer of its own that is unref'd: only the ready layer's
    // wait keeps the process alive until then.
    const r = await runAlive(`
      const mesh = createMesh({ ${quiet},
        discoveries: { late: (_o, ctx) => {
          const t = setTimeout(() => ctx.update([parseEndpointSpec(${JSON.stringify(backends[0]!.url)}, 'api')]), 150);
          t.unref();
          return { stop() { clearTimeout(t); } };
        } },
        services: { api: { discovery: { type: 'late' } } } });
      mesh.fetch('http://api/x').then(${report});`);
    expect(r.out).toContain('status 200');
    expect(r.status).toBe(0);
    expect(backends[0]!.received).toHaveLength(1);
  });

  test("a request that stopped waiting for discovery (its deadline) no longer holds the process, though the mesh stays open", async () => {
    // The discovery never answers and readyTimeoutMs is a minute: once the one waiting request
    // ended, nothing may keep the script alive — it exits without closing the mesh.
    const r = await runAlive(`
      const mesh = createMesh({ ${quiet},
        discoveries: { never: () => ({ stop() {} }) },
        services: { api: { discovery: { type: 'never' }, readyTimeoutMs: 60_000, timeoutMs: 50 } } });
      mesh.fetch('http://api/x').then((r) => console.log('status', r.status), (e) => console.log('failed', e.cause?.code ?? e.code));`);
    expect(r.out).toContain('failed TIMEOUT');
    expect(r.status).toBe(0);
  });
});

describe('close', () => {
  test('requests still running when the grace ends fail with MESH_CLOSED, count against no endpoint and spend no retry budget; close resolves after all settled', async () => {
    backends = await startBackends(2);
    for (const b of backends) b.fault = { kind: 'hang' };
    const m = meshOver(
      backends.map((b) => b.url),
      { outlierDetection: { consecutive5xxErrors: 1 } },
    );
    const ejections: MeshEventMap['ejection'][] = [];
    m.on('ejection', (e) => ejections.push(e));
    const pending = Array.from({ length: 64 }, () => get(m));
    // Wait until every request reached a backend (event-driven: no timing assumption).
    while (backends[0]!.received.length + backends[1]!.received.length < 64) await new Promise((r) => setImmediate(r));
    let settled = 0;
    for (const p of pending) void p.then(() => settled++);
    await m.close({ graceMs: 20 });
    expect(settled).toBe(64); // close resolved only once every request had settled
    const results = await Promise.all(pending);
    for (const r of results) expect(r).toMatchObject({ code: 'MESH_CLOSED' });
    const s = m.stats().services.api!;
    expect(s.retries).toBe(0);
    expect(s.retryBudgetExhausted).toBe(0);
    expect(ejections).toEqual([]);
    for (const ep of s.endpoints) expect(ep.failures).toBe(0);
    const received = backends[0]!.received.length + backends[1]!.received.length;
    expect(await get(m)).toMatchObject({ code: 'MESH_CLOSED' });
    expect(backends[0]!.received.length + backends[1]!.received.length).toBe(received); // nothing sent after close
  });

  test('a request waiting for a concurrency slot when close starts fails with MESH_CLOSED; the running one finishes', async () => {
    backends = await startBackends(1);
    let release: (() => void) | null = null;
    backends[0]!.handler = (_req, res) => {
      release = () => res.end('done');
    };
    const m = meshOver([backends[0]!.url], { limits: { maxRequests: 1, maxPendingRequests: 1, maxQueueTimeMs: 600_000 } });
    const running = get(m);
    while (backends[0]!.received.length < 1) await new Promise((r) => setImmediate(r));
    const queued = get(m);
    while (m.stats().services.api!.pending < 1) await new Promise((r) => setImmediate(r));
    const closed = m.close({ graceMs: 600_000 });
    expect(await queued).toMatchObject({ code: 'MESH_CLOSED' }); // at once, not after the queue time or the grace
    expect(backends[0]!.received).toHaveLength(1); // the queued one was never sent
    release!();
    expect(await running).toBe(200);
    await closed;
  });

  test('dispatcher.destroy() during a close cuts its grace short', async () => {
    backends = await startBackends(1);
    backends[0]!.fault = { kind: 'hang' };
    const m = meshOver([backends[0]!.url]);
    const pending = get(m);
    while (backends[0]!.received.length < 1) await new Promise((r) => setImmediate(r));
    const closed = m.close({ graceMs: 600_000 });
    await m.dispatcher.destroy();
    await closed; // resolves now, not after ten minutes
    expect(await pending).toMatchObject({ code: 'MESH_CLOSED' });
  });

  test('a retry that falls due during the grace is sent, and its answer reaches the caller', async () => {
    backends = await startBackends(2);
    await backends[0]!.stop();
    const m = meshOver(
      backends.map((b) => b.url),
      { retry: { backoff: { baseMs: 50, maxMs: 50 } } },
    );
    const r = get(m);
    const closed = m.close({ graceMs: 5_000 });
    expect(await r).toBe(200);
    await closed;
    expect(backends[1]!.received).toHaveLength(1);
  });
});

describe('close and upgraded connections (undici.upgrade through the mesh)', () => {
  /** An endpoint that switches to an echo protocol; its upgraded sockets, which server.close() leaves open. */
  async function echoServer(): Promise<{ url: string; sockets: Set<import('node:stream').Duplex>; close(): Promise<void> }> {
    const sockets = new Set<import('node:stream').Duplex>();
    const server = http.createServer((_req, res) => res.end());
    server.on('upgrade', (_req, socket: import('node:stream').Duplex) => {
      sockets.add(socket);
      socket.write('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(d));
      socket.on('end', () => socket.end());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      sockets,
      close: () => {
        for (const s of sockets) s.destroy();
        return new Promise((r) => server.close(() => r()));
      },
    };
  }

  test('close waits for an open upgraded connection within its grace, then destroys it: nothing is sent on it after', async () => {
    const echo = await echoServer();
    try {
      const m = meshOver([echo.url]);
      const { socket } = await upgrade('http://api/ws', { dispatcher: m.dispatcher, protocol: 'echo' });
      let done = false;
      const closing = m.close({ graceMs: 600_000 }).then(() => (done = true));
      for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
      expect(done).toBe(false);
      socket.write('in the grace');
      expect(String((await once(socket, 'data'))[0])).toBe('in the grace');
      const closed = once(socket, 'close');
      await m.dispatcher.destroy(); // the grace ends now
      await closed;
      await closing;
      expect(socket.destroyed).toBe(true);
    } finally {
      await echo.close();
    }
  });

  test('an upgraded connection its caller closes during the grace lets close resolve', async () => {
    const echo = await echoServer();
    try {
      const m = meshOver([echo.url]);
      const { socket } = await upgrade('http://api/ws', { dispatcher: m.dispatcher, protocol: 'echo' });
      const closing = m.close({ graceMs: 600_000 });
      socket.destroy();
      await closing; // now, not after ten minutes
    } finally {
      await echo.close();
    }
  });
});

describe("the caller's own body", () => {
  async function* throwing(): AsyncGenerator<Buffer> {
    yield Buffer.from('a');
    throw new Error('the caller broke its body');
  }
  async function* numbers(): AsyncGenerator<unknown> {
    yield 42;
  }

  for (const [name, make] of [
    ['throws', throwing],
    ['yields numbers', numbers],
  ] as const) {
    test(`a body that ${name} fails with REQUEST_BODY_FAILED and never ejects the endpoint`, async () => {
      backends = await startBackends(1);
      const m = meshOver([backends[0]!.url], { outlierDetection: { consecutive5xxErrors: 2 } });
      const ejections: unknown[] = [];
      m.on('ejection', (e) => ejections.push(e));
      for (let i = 0; i < 5; i++) {
        const err = await request('http://api/upload', { dispatcher: m.dispatcher, method: 'POST', body: make() as unknown as import('node:stream').Readable }).then(
          () => null,
          (e: Error) => e,
        );
        expect(err).toMatchObject({ code: 'REQUEST_BODY_FAILED', service: 'api' });
      }
      expect(ejections).toEqual([]);
      const ep = m.stats().services.api!.endpoints[0]!;
      expect(ep).toMatchObject({ health: 'healthy', failures: 0 });
      expect(await get(m)).toBe(200);
    });
  }
});

describe('every failure a caller sees is a MeshError', () => {
  test('all endpoints refusing, a reset, and a hang past undici’s headers timeout', async () => {
    backends = await startBackends(3);
    await backends[0]!.stop();
    backends[1]!.fault = { kind: 'reset' };
    backends[2]!.fault = { kind: 'hang' };
    const refused = await get(meshOver([backends[0]!.url]));
    expect(refused).toMatchObject({ code: 'UPSTREAM_FAILED', kind: 'connect-failure', service: 'api', endpoint: backends[0]!.url, attempts: 3 });
    expect((refused as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
    await mesh!.close({ graceMs: 0 });
    const reset = await get(meshOver([backends[1]!.url], { retry: false }));
    expect(reset).toMatchObject({ code: 'UPSTREAM_FAILED', kind: 'reset', attempts: 1 });
    await mesh!.close({ graceMs: 0 });
    const hung = await get(meshOver([backends[2]!.url], { retry: false, pool: { headersTimeoutMs: 50 } }));
    expect(hung).toMatchObject({ code: 'UPSTREAM_FAILED', kind: 'timeout' });
    expect((hung as Error).cause).toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    for (const e of [refused, reset, hung]) expect(isMeshError(e)).toBe(true);
  });

  test('a response larger than pool.maxResponseSizeBytes is UPSTREAM_FAILED (reset), with undici\'s error as its cause', async () => {
    backends = await startBackends(1);
    backends[0]!.handler = (_req, res) => res.end('x'.repeat(4096));
    const m = meshOver([backends[0]!.url], { retry: false, pool: { maxResponseSizeBytes: 1024 } });
    // The headers arrive (200); the body fails when it passes the limit (read whole: dump() would ignore it).
    const err = await request('http://api/x', { dispatcher: m.dispatcher }).then((r) => r.body.text(), (e: unknown) => e).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UPSTREAM_FAILED', kind: 'reset', attempts: 1, cause: { code: 'UND_ERR_RES_EXCEEDED_MAX_SIZE' } });
    expect(isMeshError(err)).toBe(true);
  });

  test('a malformed response (undici HTTPParserError) is UPSTREAM_FAILED too', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.end('HTTP/1.1 ?? broken\r\n\r\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const err = await get(meshOver([`http://127.0.0.1:${port}`], { retry: false }));
      expect(err).toMatchObject({ code: 'UPSTREAM_FAILED', service: 'api', attempts: 1 });
      expect(isMeshError(err)).toBe(true);
      expect(((err as Error).cause as Error).name).toMatch(/HTTPParserError|SocketError/);
    } finally {
      await mesh?.close({ graceMs: 0 });
      mesh = null;
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  test('a request that waits for discovery and gives up names discovery’s last error', async () => {
    mesh = createMesh({
      logger: { debug: () => {}, warn: () => {} },
      discoveries: { broken: (_o, ctx) => (ctx.error(new Error('the registry is down')), { stop() {} }) },
      services: { api: { discovery: { type: 'broken' }, readyTimeoutMs: 20 } },
    });
    const err = await get(mesh);
    expect(err).toMatchObject({ code: 'NO_HEALTHY_ENDPOINT' });
    expect((err as Error).message).toContain('the registry is down');
  });
});

test('a logger that throws never breaks a request or discovery', async () => {
  backends = await startBackends(1);
  mesh = createMesh({
    logger: {
      debug: () => {
        throw new Error('debug broke');
      },
      warn: () => {
        throw new Error('warn broke');
      },
    },
    discoveries: { flaky: (_o, ctx) => (ctx.error(new Error('once')), ctx.update([parseEndpointSpec(backends[0]!.url, 'api')]), { stop() {} }) },
    services: { api: { discovery: { type: 'flaky' } } },
  });
  expect(await get(mesh)).toBe(200);
});
