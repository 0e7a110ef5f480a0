import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[];
let mesh: Mesh | null = null;

beforeEach(async () => {
  backends = await startBackends(3);
});

afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close();
  mesh = null;
  await closeAll(backends);
});

function meshOver(bs: Backend[], service: Partial<ServiceConfig> = {}): Mesh {
  mesh = createMesh({
    services: { api: { endpoints: bs.map((b) => b.url), balancer: 'round-robin', outlierDetection: false, ...service } },
    random: () => 0, // round robin starts at the first endpoint; back-off delays are 0
  });
  return mesh;
}

async function call(m: Mesh, opts: Parameters<typeof request>[1] = {}, path = '/x') {
  const res = await request(`http://api${path}`, { dispatcher: m.dispatcher, ...opts });
  const text = await res.body.text();
  return { status: res.statusCode, body: text };
}

const total = (bs: Backend[]) => bs.reduce((n, b) => n + b.received.length, 0);

describe('what is retried', () => {
  test('a GET that meets a 503 is retried on another endpoint and succeeds', async () => {
    backends[0]!.fault = { kind: 'status', status: 503 };
    const m = meshOver(backends);
    const retries: number[] = [];
    m.on('retry', (e) => retries.push(e.attempt));
    for (let i = 0; i < 9; i++) expect((await call(m)).status).toBe(200);
    expect(backends[0]!.received.length).toBeGreaterThan(0);
    expect(m.stats().services.api!.retries).toBe(backends[0]!.received.length);
    expect(retries.length).toBe(backends[0]!.received.length);
  });

  test('a GET to a stopped endpoint (connection refused) is retried elsewhere', async () => {
    await backends[1]!.stop();
    const m = meshOver(backends);
    for (let i = 0; i < 6; i++) expect((await call(m)).status).toBe(200);
  });

  test('the last attempt\'s response is returned when every try fails', async () => {
    for (const b of backends) b.fault = { kind: 'status', status: 503 };
    const m = meshOver(backends, { retry: { attempts: 2, budget: false } });
    const r = await call(m);
    expect(r.status).toBe(503);
    expect(total(backends)).toBe(3);
  });

  test('a 500 is not retried by default, but is with retryOn 5xx', async () => {
    backends[0]!.fault = { kind: 'status', status: 500 };
    const m = meshOver([backends[0]!, backends[1]!]);
    expect((await call(m)).status).toBe(500);
    await m.close();
    const m2 = meshOver([backends[0]!, backends[1]!], { retry: { retryOn: '5xx' } });
    expect((await call(m2)).status).toBe(200);
  });

  test('a status past 599 is no 5xx (Envoy\'s is5xx is 500–599): not retried under retryOn 5xx, not counted by outlier detection', async () => {
    backends[0]!.handler = (_req, res) => {
      res.writeHead(600);
      res.end();
    };
    const m = meshOver([backends[0]!, backends[1]!], { retry: { retryOn: ['5xx'] }, outlierDetection: { consecutive5xxErrors: 1 } });
    expect((await call(m)).status).toBe(600);
    expect(backends[1]!.received).toHaveLength(0);
    expect(m.stats().services.api!.endpoints.find((e) => e.url === backends[0]!.url)).toMatchObject({ health: 'healthy', failures: 0 });
  });

  test('retry: false turns retries off', async () => {
    backends[0]!.fault = { kind: 'status', status: 503 };
    const m = meshOver([backends[0]!], { retry: false });
    expect((await call(m)).status).toBe(503);
    expect(backends[0]!.received.length).toBe(1);
  });
});

describe('safety: never lose or duplicate a request', () => {
  test('a POST that got a 503 is not retried: the server saw it exactly once', async () => {
    for (const b of backends) b.fault = { kind: 'status', status: 503 };
    const m = meshOver(backends);
    const r = await call(m, { method: 'POST', body: 'order-1' });
    expect(r.status).toBe(503);
    expect(total(backends)).toBe(1);
  });

  test('a POST whose connection was reset after sending is not retried: received exactly once', async () => {
    for (const b of backends) b.fault = { kind: 'reset' };
    const m = meshOver(backends);
    const err = await call(m, { method: 'POST', body: 'order-2' }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(total(backends)).toBe(1);
  });

  test('a POST to a stopped endpoint (never reached it) is retried and received exactly once', async () => {
    await backends[0]!.stop();
    const m = meshOver([backends[0]!, backends[1]!]);
    for (let i = 0; i < 4; i++) expect((await call(m, { method: 'POST', body: `p${i}` })).status).toBe(200);
    expect(backends[1]!.received.map((r) => r.body.toString())).toEqual(['p0', 'p1', 'p2', 'p3']);
  });

  test('a PUT with a Buffer body is replayed byte for byte after a reset', async () => {
    backends[0]!.fault = { kind: 'reset' };
    const m = meshOver([backends[0]!, backends[1]!]);
    const payload = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
    const r = await call(m, { method: 'PUT', body: payload });
    expect(r.status).toBe(200);
    expect(backends[1]!.received).toHaveLength(1);
    expect(backends[1]!.received[0]!.body.equals(payload)).toBe(true);
  });

  test('with perRequestBufferLimitBytes: 0, a PUT with a streamed body is never replayed after a reset', async () => {
    backends[0]!.fault = { kind: 'reset' };
    const m = meshOver([backends[0]!, backends[1]!], { perRequestBufferLimitBytes: 0 });
    const err = await call(m, { method: 'PUT', body: Readable.from([Buffer.from('chunk-1'), Buffer.from('chunk-2')]) }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(backends[1]!.received).toHaveLength(0);
  });

  test('a streamed POST to a stopped endpoint is retried, since not a byte was read', async () => {
    await backends[0]!.stop();
    const m = meshOver([backends[0]!, backends[1]!]);
    const r = await call(m, { method: 'POST', body: Readable.from([Buffer.from('a'), Buffer.from('b')]) });
    expect(r.status).toBe(200);
    expect(backends[1]!.received[0]!.body.toString()).toBe('ab');
  });

  test('nothing is retried once headers went to the caller (reset mid-body)', async () => {
    let reset!: () => void;
    backends[0]!.handler = (_req, res) => {
      res.writeHead(200);
      res.write('partial');
      reset = () => res.socket?.destroy();
    };
    const m = meshOver([backends[0]!, backends[1]!]);
    const res = await request('http://api/x', { dispatcher: m.dispatcher });
    expect(res.statusCode).toBe(200); // the caller has the headers: now the connection breaks
    reset();
    const err = await res.body.text().catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(backends[1]!.received).toHaveLength(0);
  });

  test('a retriable status whose body stalls does not hold the retry: its connection is dropped, the request retried', async () => {
    // 3 of 100 bytes, then nothing: draining it would wait for the pool's body timeout (300 s).
    let dropped!: Promise<void>;
    backends[0]!.handler = (_req, res) => {
      dropped = new Promise((resolve) => res.socket!.once('close', () => resolve()));
      res.writeHead(503, { 'content-length': '100' });
      res.write('abc');
    };
    const m = meshOver([backends[0]!, backends[1]!]);
    const r = await call(m);
    expect(r.status).toBe(200);
    expect(r.body).toContain(backends[1]!.name);
    await dropped; // the stalled response's connection, closed by the mesh
    expect(m.stats().services.api!.retries).toBe(1);
  });
});

describe('timing', () => {
  test('perTryTimeout moves a hung try to another endpoint', async () => {
    backends[0]!.fault = { kind: 'hang' };
    const m = meshOver([backends[0]!, backends[1]!], { retry: { perTryTimeoutMs: 100 } });
    // b0 never answers: only the per-try timeout can bring the answer from b1.
    const r = await call(m);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).backend).toBe('b1');
  });

  test('a per-try timeout applies to the one try of a policy with no retries (attempts: 0)', async () => {
    backends[0]!.fault = { kind: 'hang' };
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const m = meshOver([backends[0]!], { retry: { attempts: 0, perTryTimeoutMs: 100 } });
    let settled = false;
    const outcome = call(m).then(
      () => 'answered',
      (e: unknown) => e,
    ).finally(() => (settled = true));
    while (backends[0]!.received.length < 1) await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(99);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await outcome).toMatchObject({ code: 'TIMEOUT', attempts: 1 });
    expect(backends[0]!.received).toHaveLength(1); // not retried
  });

  test('the service timeout is a deadline over all attempts', async () => {
    for (const b of backends) b.fault = { kind: 'hang' };
    // Timers on the fake clock: five tries of 100 ms would end at 500 ms; the deadline ends it at 250.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const m = meshOver(backends, { timeoutMs: 250, retry: { perTryTimeoutMs: 100, attempts: 5, budget: false } });
    let settled = false;
    const outcome = call(m).then(
      () => 'answered',
      (e: unknown) => e,
    ).finally(() => (settled = true));
    await vi.advanceTimersByTimeAsync(249);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBe(true);
    expect(await outcome).toMatchObject({ code: 'TIMEOUT', attempts: 3 });
  });

  test("back-off is Envoy's: retry N within [0, (2^N − 1) × base), capped at maxMs, which defaults to 10 × base", async () => {
    backends[0]!.fault = { kind: 'status', status: 503 };
    const delays = async (backoff: { baseMs: number; maxMs?: number }): Promise<number[]> => {
      // random pinned just under 1: each retry waits the top of its window.
      const m = createMesh({
        random: () => 0.999,
        services: { api: { endpoints: [backends[0]!.url], outlierDetection: false, circuitBreaker: false, retry: { attempts: 5, backoff, budget: false } } },
      });
      const seen: number[] = [];
      m.on('retry', (e) => void seen.push(e.delayMs));
      expect((await call(m)).status).toBe(503);
      await m.close();
      return seen;
    };
    // Windows 2, 6, 14, 30, 30 ms (the window stops growing once past the cap), capped at 10 × 2.
    expect(await delays({ baseMs: 2 })).toEqual([1, 5, 13, 20, 20]);
    // Windows 2, 6, 14, 30, 62 ms, under an explicit cap of 100.
    expect(await delays({ baseMs: 2, maxMs: 100 })).toEqual([1, 5, 13, 29, 61]);
  });

  test('Retry-After on a 503 is honoured up to retryAfterMaxMs', async () => {
    backends[0]!.handler = (_req, res) => {
      res.writeHead(503, { 'retry-after': '5' });
      res.end();
    };
    const m = meshOver([backends[0]!, backends[1]!], { retry: { retryAfterMaxMs: 1000 } });
    // 5 s is over the cap: the 503 goes back to the caller at once.
    expect((await call(m, {}, '/a')).status).toBe(503);
    backends[0]!.handler = (_req, res) => {
      res.writeHead(503, { 'retry-after': '0' });
      res.end();
    };
    expect((await call(m, {}, '/b')).status).toBe(200);
  });
});

test('Retry-After on a 429 is honoured too: the retry waits for it', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  backends[0]!.handler = (_req, res) => {
    res.writeHead(429, { 'retry-after': '2' });
    res.end();
  };
  const m = meshOver([backends[0]!, backends[1]!], { retry: { retriableStatusCodes: [429], retryAfterMaxMs: 5_000 } });
  let settled = false;
  const outcome = call(m).finally(() => (settled = true));
  while (backends[0]!.received.length < 1) await vi.advanceTimersByTimeAsync(0);
  await vi.advanceTimersByTimeAsync(1_900);
  expect(settled).toBe(false);
  expect(backends[1]!.received).toHaveLength(0); // still waiting out the 2 s
  await vi.advanceTimersByTimeAsync(200);
  expect((await outcome).status).toBe(200);
  expect(backends[1]!.received).toHaveLength(1);
});

describe('retry budget', () => {
  test('when every endpoint fails, retries stay within the budget (no retry storm)', async () => {
    for (const b of backends) b.fault = { kind: 'status', status: 503 };
    const m = meshOver(backends, { retry: { attempts: 3, budget: { percent: 20, minRetriesPerSecond: 0 } } });
    let exhausted = 0;
    m.on('retry-budget-exhausted', () => exhausted++);
    const n = 100;
    for (let i = 0; i < n; i++) expect((await call(m)).status).toBe(503);
    const sent = total(backends);
    expect(sent).toBeGreaterThanOrEqual(n);
    expect(sent).toBeLessThanOrEqual(n * 1.2 + 1);
    expect(m.stats().services.api!.retryBudgetExhausted).toBe(exhausted);
    expect(exhausted).toBeGreaterThan(0);
  });

  test('a refused retry of an error returns the original error, marked RETRY_BUDGET_EXHAUSTED', async () => {
    await backends[0]!.stop();
    const m = meshOver([backends[0]!], { retry: { budget: { percent: 0, minRetriesPerSecond: 0 } } });
    const err = await call(m).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RETRY_BUDGET_EXHAUSTED', service: 'api' });
    // The original error: the refused connection, typed, with undici's error beneath it.
    expect((err as Error & { cause: unknown }).cause).toMatchObject({ code: 'UPSTREAM_FAILED', kind: 'connect-failure', cause: { code: 'ECONNREFUSED' } });
  });
});

describe("a subset's or route's retry budget", () => {
  const spent = { percent: 0, minRetriesPerSecond: 0 };
  /** The service retries nothing itself: whatever bounds the retries is the override's budget. */
  const withRoute = (bs: Backend[], retry: ServiceConfig['retry']): Mesh => meshOver(bs, { retry: false, routes: [{ retry }] });

  test("a route's spent budget refuses its retries: a retriable status comes back as the response", async () => {
    for (const b of backends) b.fault = { kind: 'status', status: 503 };
    const m = withRoute(backends, { attempts: 3, budget: spent });
    let exhausted = 0;
    m.on('retry-budget-exhausted', () => exhausted++);
    expect((await call(m)).status).toBe(503);
    expect(total(backends)).toBe(1);
    expect(exhausted).toBe(1);
    expect(m.stats().services.api!.retryBudgetExhausted).toBe(1);
  });

  test("a route's spent budget: a retriable error comes back as RETRY_BUDGET_EXHAUSTED with the original error", async () => {
    await backends[0]!.stop();
    const m = withRoute([backends[0]!, backends[1]!], { budget: spent });
    const err = await call(m).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'RETRY_BUDGET_EXHAUSTED', service: 'api' });
    expect((err as Error & { cause: unknown }).cause).toMatchObject({ code: 'UPSTREAM_FAILED', kind: 'connect-failure', cause: { code: 'ECONNREFUSED' } });
    expect(backends[1]!.received).toHaveLength(0);
  });

  test("a subset's spent budget refuses its retries", async () => {
    for (const b of backends) b.fault = { kind: 'status', status: 503 };
    mesh = createMesh({
      services: {
        api: {
          endpoints: backends.map((b) => ({ url: b.url, labels: { version: 'v1' } })),
          balancer: 'round-robin',
          outlierDetection: false,
          retry: false,
          subsets: { v1: { labels: { version: 'v1' }, retry: { attempts: 3, budget: spent } } },
          routes: [{ subset: 'v1' }],
        },
      },
      random: () => 0,
    });
    expect((await call(mesh)).status).toBe(503);
    expect(total(backends)).toBe(1);
    expect(mesh.stats().services.api!.retryBudgetExhausted).toBe(1);
  });

  test("a route's retries without a budget of their own take from the service's", async () => {
    for (const b of backends) b.fault = { kind: 'status', status: 503 };
    const m = meshOver(backends, { retry: { budget: spent }, routes: [{ retry: { attempts: 3 } }] });
    expect((await call(m)).status).toBe(503);
    expect(total(backends)).toBe(1);
    expect(m.stats().services.api!.retryBudgetExhausted).toBe(1);
  });

  test("with the service's retry: false, a route's retries without a budget still have the default one", async () => {
    for (const b of backends) b.fault = { kind: 'status', status: 503 };
    const m = withRoute(backends, { attempts: 3 });
    const n = 150;
    for (let i = 0; i < n; i++) expect((await call(m)).status).toBe(503);
    // 20 % of the requests plus 10/s over the 10 s window; unbounded, every request would be sent 4 times.
    const sent = total(backends);
    expect(sent).toBeGreaterThan(n);
    expect(sent).toBeLessThanOrEqual(n + 0.2 * n + 100);
    expect(m.stats().services.api!.retryBudgetExhausted).toBeGreaterThan(0);
  });

  test('a budget counts only the requests of the policies that use it; every budget counts in retryBudgetExhausted', async () => {
    backends[0]!.handler = (req, res) => {
      res.writeHead(req.url === '/failing' ? 503 : 200);
      res.end();
    };
    const m = meshOver([backends[0]!], {
      retry: { budget: spent },
      routes: [{ match: [{ uri: { exact: '/failing' } }], retry: { attempts: 1, budget: { percent: 50, minRetriesPerSecond: 0 } } }, {}],
    });
    // Ten requests under the service's policy: were they counted by the route's budget, it would allow 5 retries.
    for (let i = 0; i < 10; i++) expect((await call(m, {}, '/other')).status).toBe(200);
    // The route's budget has seen one request: half a retry is none.
    expect((await call(m, {}, '/failing')).status).toBe(503);
    expect(backends[0]!.received.filter((r) => r.url === '/failing')).toHaveLength(1);
    expect(m.stats().services.api!.retryBudgetExhausted).toBe(1);
    // Its second request makes one retry allowed (50 % of 2).
    expect((await call(m, {}, '/failing')).status).toBe(503);
    expect(backends[0]!.received.filter((r) => r.url === '/failing')).toHaveLength(3);
  });
});

test('a Retry-After longer than what is left of the deadline is not waited for: the 503 comes back at once', async () => {
  backends[0]!.handler = (_req, res) => {
    res.writeHead(503, { 'retry-after': '1' });
    res.end();
  };
  const m = meshOver([backends[0]!, backends[1]!], { timeout: 500, retry: { retryAfterMaxMs: 5_000 } });
  // A retry (after waiting out the Retry-After) would have reached b1, which answers 200.
  expect((await call(m)).status).toBe(503);
  expect(backends[1]!.received).toHaveLength(0);
});

describe('a retry the request ended before it was sent', () => {
  /** One endpoint that answers 503; a retry waits a back-off of 30 s (random 0.5 of 60 s). */
  function slowRetries(retry: ServiceConfig['retry'] = {}): Mesh {
    backends[0]!.fault = { kind: 'status', status: 503 };
    mesh = createMesh({
      random: () => 0.5,
      services: { api: { endpoints: [backends[0]!.url], outlierDetection: false, circuitBreaker: false, retry: { attempts: 2, backoff: { baseMs: 60_000, maxMs: 60_000 }, ...retry } } },
    });
    return mesh;
  }
  /** Once the endpoint has finished `n` attempts, the retry of the last one is waiting out its back-off. */
  const attemptsEnded = (m: Mesh, n: number) => vi.waitFor(() => expect(m.stats().services.api!.endpoints[0]!.requests).toBe(n));

  test('close during the back-off: not retried, not counted in retries, no retry event', async () => {
    const m = slowRetries();
    const retries: unknown[] = [];
    m.on('retry', (e) => void retries.push(e));
    const outcome = call(m).then(
      (r) => `status ${r.status}`,
      (e: { code?: string }) => String(e.code),
    );
    await attemptsEnded(m, 1);
    await m.close({ graceMs: 0 });
    expect(await outcome).toBe('MESH_CLOSED');
    expect(backends[0]!.received).toHaveLength(1);
    expect(m.stats().services.api!.retries).toBe(0);
    expect(retries).toEqual([]);
  });

  test("a retry never sent gives its budget token back: the next request's retry is not refused", async () => {
    // One retry per window (0.1 a second over 10 s, and no share of the requests).
    const m = slowRetries({ budget: { percent: 0, minRetriesPerSecond: 0.1, windowMs: 10_000 } });
    const exhausted: unknown[] = [];
    m.on('retry-budget-exhausted', (e) => void exhausted.push(e));
    const first = new AbortController();
    const one = call(m, { signal: first.signal }).catch((e: unknown) => e);
    await attemptsEnded(m, 1);
    first.abort(new Error('caller gave up'));
    expect(await one).toMatchObject({ message: 'caller gave up' });

    const second = new AbortController();
    let settled = false;
    const two = call(m, { signal: second.signal }).then(
      () => (settled = true),
      () => (settled = true),
    );
    await attemptsEnded(m, 2);
    // Its retry took the token the first one gave back, and waits its back-off.
    expect(exhausted).toEqual([]);
    expect(m.stats().services.api!.retryBudgetExhausted).toBe(0);
    expect(settled).toBe(false);
    second.abort(new Error('done'));
    await two;
    expect(m.stats().services.api!.retries).toBe(0);
  });
});
