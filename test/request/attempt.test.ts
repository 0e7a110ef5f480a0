// An attempt's books (request/attempt.ts): the caller's own abort after the response headers says
// nothing about the endpoint, so mesh.stats() counts no failure for it — as outlier detection
// counts none — while a response whose status is a failure stays one however it ends.
import type http from 'node:http';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { dispatch, hold, until } from '../support/holding.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;
const open: http.ServerResponse[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const res of open.splice(0)) res.destroy();
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await closeAll(backends);
  backends = [];
});

/** A request whose caller aborts once the first chunk of the body arrived; resolves when its body failed. */
async function abortMidBody(m: Mesh): Promise<void> {
  const ac = new AbortController();
  const r = await request('http://api/x', { dispatcher: m.dispatcher, signal: ac.signal });
  const failed = new Promise((resolve) => r.body.once('error', resolve));
  r.body.once('data', () => ac.abort());
  await failed;
}

/** The backend answers `status` with the first chunk of a body it never ends. */
function halfAnswer(b: Backend, status: number): void {
  b.handler = (req, res) => {
    req.resume();
    open.push(res);
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.write('first chunk');
  };
}

const endpointBooks = (m: Mesh) => {
  const s = m.stats().services.api!;
  return { requests: s.endpoints[0]!.requests, failures: s.endpoints[0]!.failures, serviceFailures: s.failures };
};

test("the caller's abort after a good response's headers is no failure of the endpoint", async () => {
  backends = await startBackends(1);
  halfAnswer(backends[0]!, 200);
  mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url], retry: false } } });
  await abortMidBody(mesh);
  await until(() => mesh!.stats().services.api!.requests === 1); // the request ended (the endpoint counts its attempt at the start)
  expect(endpointBooks(mesh)).toEqual({ requests: 1, failures: 0, serviceFailures: 0 });
});

test('a failing status cut short by the caller still counts as the failure it was', async () => {
  backends = await startBackends(1);
  halfAnswer(backends[0]!, 503);
  mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url], retry: false } } });
  await abortMidBody(mesh);
  await until(() => mesh!.stats().services.api!.requests === 1); // the request ended (the endpoint counts its attempt at the start)
  expect(endpointBooks(mesh)).toEqual({ requests: 1, failures: 1, serviceFailures: 1 });
});

describe('an attempt waiting for a connection (every one of pool.connections busy)', () => {
  /** One endpoint with one connection, which the test holds; timers fake (setTimeout only: sockets are real). */
  async function oneConnection(service: Record<string, unknown>) {
    backends = await startBackends(1);
    const held = hold(backends[0]!);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    mesh = createMesh({ services: { api: { endpoints: [backends[0]!.url], pool: { connections: 1 }, circuitBreaker: false, ...service } } });
    return { m: mesh, held, url: backends[0]!.url };
  }

  test("the per-try timeout starts once the attempt has its connection, as Envoy's: the wait for one is not timed", async () => {
    const { m, held } = await oneConnection({ retry: { attempts: 0, perTryTimeoutMs: 100 }, outlierDetection: false });
    const one = dispatch(m);
    const first = await held.next();
    const two = dispatch(m); // waits for the one connection
    await vi.advanceTimersByTimeAsync(90);
    first.answer();
    expect((await one.done).status).toBe(200);
    await held.next(); // the second is on the connection now, 90 ms after it was sent
    let settled = false;
    void two.done.then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(99); // 189 ms after it was sent, 99 ms into its try
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect((await two.done).error).toMatchObject({ code: 'TIMEOUT', name: 'PerTryTimeoutError' });
  });

  test('the deadline ends attempts still waiting for a connection blamelessly, and says they waited for one', async () => {
    // /hold has no deadline (a route's timeoutMs 0): it keeps the one connection while the others wait.
    const { m, held, url } = await oneConnection({
      retry: false,
      timeoutMs: 100,
      routes: [{ match: [{ uri: { prefix: '/hold' } }], timeoutMs: 0 }, {}],
      outlierDetection: { consecutive5xxErrors: 2, maxEjectionPercent: 100 },
    });
    const ejections: unknown[] = [];
    m.on('ejection', (e) => void ejections.push(e));
    const one = dispatch(m, { path: '/hold' });
    const first = await held.next();
    const waiting = [dispatch(m), dispatch(m), dispatch(m)];
    await vi.advanceTimersByTimeAsync(100);
    for (const w of waiting) {
      const { error } = await w.done;
      expect(error).toMatchObject({ code: 'TIMEOUT', endpoint: url });
      // (How long it waited is read on the mesh's clock, which these fake timers do not move.)
      expect(error!.message).toMatch(/^service "api": request timed out after 100 ms: waited \d+ ms for a connection to /);
      expect(error!.message).toContain(`${url} (every one of pool.connections busy, or still connecting), which never got the request`);
    }
    first.answer();
    expect((await one.done).status).toBe(200);
    await until(() => m.stats().services.api!.endpoints[0]!.inFlight === 0);
    // The three the endpoint never got count against it in nothing: no failure, no ejection.
    expect(endpointBooks(m)).toMatchObject({ failures: 0 });
    expect(ejections).toEqual([]);
    expect(backends[0]!.received).toHaveLength(1);
  });
});
