// Hedged requests on real backends. A backend told to hold keeps each request until the test
// releases it, so "slow" is an event the test controls, never a race against the clock; the hedge
// delay runs on fake timers. Checked: the caller gets exactly one response (the first), the other
// copies are aborted (their backend sees the socket close) and not blamed, budgets and method
// rules stop hedges, and stats and events count them.
import type http from 'node:http';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { request, type Dispatcher } from 'undici';
import { createMesh, type Mesh, type MeshEventMap, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[];
let mesh: Mesh | null = null;

beforeEach(async () => {
  backends = await startBackends(3);
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
});

afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await closeAll(backends);
});

function meshOver(service: Partial<ServiceConfig> = {}, now?: () => number): Mesh {
  mesh = createMesh({
    services: { api: { endpoints: backends.map((b) => b.url), balancer: 'round-robin', retry: false, outlierDetection: false, ...service } },
    random: () => 0, // round robin starts at the first backend
    ...(now ? { now } : {}),
    logger: { debug: () => {}, warn: () => {} },
  });
  return mesh;
}

/** A request a holding backend keeps: answer it, and know when its connection closed. */
interface Held {
  readonly req: http.IncomingMessage;
  answer(status?: number, text?: string): void;
  readonly closed: Promise<void>;
}

/**
 * Wait until `cond()` holds, one turn of the event loop at a time (setImmediate is not faked), at
 * most 10,000 turns: bounded, and independent of the machine's speed.
 */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000; i++) {
    if (cond()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('condition not reached in 10,000 turns of the event loop');
}

/**
 * Make every backend of `bs` hold each request; `next()` resolves with the next one to arrive at
 * any of them. `beforeAnswer` runs as each is answered (to move a test clock).
 */
function hold(...bs: Backend[]): { next(): Promise<Held>; readonly count: number; beforeAnswer: () => void } {
  const arrived: Held[] = [];
  const waiting: ((h: Held) => void)[] = [];
  let taken = 0;
  for (const b of bs) {
    b.handler = (req, res) => {
      req.resume();
      const h: Held = {
        req,
        answer: (status = 200, text = b.name) => {
          holder.beforeAnswer();
          res.writeHead(status, { 'content-type': 'text/plain', 'x-backend': b.name });
          res.end(text);
        },
        closed: new Promise((resolve) => res.once('close', () => resolve())),
      };
      const w = waiting.shift();
      if (w) w(h);
      else arrived.push(h);
    };
  }
  const holder = {
    beforeAnswer: () => {},
    next: (): Promise<Held> => {
      taken++;
      const h = arrived.shift();
      return h ? Promise.resolve(h) : new Promise((resolve) => waiting.push(resolve));
    },
    get count() {
      return taken + arrived.length;
    },
  };
  return holder;
}

/** A request through a raw handler that counts every callback the caller gets. */
function dispatch(m: Mesh, opts: Partial<Dispatcher.DispatchOptions> = {}) {
  const seen = { starts: 0, ends: 0, errors: 0, status: 0, body: '', error: undefined as Error | undefined };
  let controller: Dispatcher.DispatchController | null = null;
  const done = new Promise<typeof seen>((resolve) => {
    m.dispatcher.dispatch(
      { origin: 'http://api', path: '/x', method: 'GET', ...opts },
      {
        onRequestStart: (c) => void (controller = c),
        onResponseStart: (_c, status) => {
          seen.starts++;
          seen.status = status;
        },
        onResponseData: (_c, chunk) => void (seen.body += chunk.toString()),
        onResponseEnd: () => {
          seen.ends++;
          resolve(seen);
        },
        onResponseError: (_c, err) => {
          seen.errors++;
          seen.error = err;
          resolve(seen);
        },
      },
    );
  });
  return { done, abort: (err: Error) => controller!.abort(err) };
}

const api = (m: Mesh) => m.stats().services.api!;
const endpoint = (m: Mesh, i: number) => api(m).endpoints.find((e) => e.url === backends[i]!.url)!;
const events = <K extends keyof MeshEventMap>(m: Mesh, name: K): MeshEventMap[K][] => {
  const out: MeshEventMap[K][] = [];
  m.on(name, (e) => out.push(e));
  return out;
};

describe('a copy after the hedge delay; the first answer wins', () => {
  test('a GET still outstanding after delayMs goes to another endpoint; the caller gets exactly the fast answer, the slow copy is aborted and not blamed', async () => {
    const slow = hold(backends[0]!);
    const m = meshOver({ hedge: { delayMs: 10 } });
    const hedges = events(m, 'hedge');
    const r = dispatch(m);
    const first = await slow.next();
    vi.advanceTimersByTime(9);
    expect(backends[1]!.received).toHaveLength(0); // not before the delay
    vi.advanceTimersByTime(1);
    const seen = await r.done;
    expect(seen).toMatchObject({ starts: 1, ends: 1, errors: 0, status: 200 });
    expect(JSON.parse(seen.body).backend).toBe('b1');
    await first.closed; // the slow copy's connection was closed by the mesh
    first.answer(); // too late: nothing reaches the caller
    expect(seen).toMatchObject({ starts: 1, ends: 1, errors: 0 });
    expect(hedges).toEqual([{ service: 'api', endpoint: backends[0]!.url, attempt: 1, delayMs: 10 }]);
    expect(api(m)).toMatchObject({ hedges: 1, hedgesWon: 1, hedgeBudgetExhausted: 0, failures: 0 });
    const b0 = api(m).endpoints.find((e) => e.url === backends[0]!.url)!;
    expect(b0).toMatchObject({ requests: 1, failures: 0, inFlight: 0 });
    expect(b0.latencyEwmaMs).toBeGreaterThan(0); // the time the loser ran counts as its latency
  });

  test('when the first copy answers first, the hedge is cancelled', async () => {
    const slow = hold(backends[0]!);
    const other = hold(backends[1]!);
    const m = meshOver({ hedge: { delayMs: 10 } });
    const r = dispatch(m);
    const first = await slow.next();
    vi.advanceTimersByTime(10);
    const copy = await other.next();
    first.answer(200, 'first');
    const seen = await r.done;
    expect(seen).toMatchObject({ starts: 1, ends: 1, errors: 0, body: 'first' });
    await copy.closed;
    expect(api(m)).toMatchObject({ hedges: 1, hedgesWon: 0, failures: 0 });
  });

  test('a request answered before the delay is not hedged', async () => {
    const m = meshOver({ hedge: { delayMs: 10 } });
    const seen = await dispatch(m).done;
    expect(seen.status).toBe(200);
    vi.advanceTimersByTime(100);
    expect(backends[1]!.received).toHaveLength(0);
    expect(api(m).hedges).toBe(0);
  });

  test('maxAttempts copies at most, one delay apart, each to an endpoint not tried yet', async () => {
    const held = backends.map((b) => hold(b));
    const m = meshOver({ hedge: { delayMs: 10, maxAttempts: 3 } });
    const r = dispatch(m);
    await held[0]!.next();
    vi.advanceTimersByTime(10);
    await held[1]!.next();
    vi.advanceTimersByTime(10);
    const third = await held[2]!.next();
    vi.advanceTimersByTime(100);
    expect(held.map((h) => h.count)).toEqual([1, 1, 1]);
    third.answer(200, 'third');
    expect((await r.done).body).toBe('third');
    expect(api(m)).toMatchObject({ hedges: 2, hedgesWon: 1 });
  });

  test('with no endpoint left untried, nothing is sent and no budget is spent', async () => {
    const slow = hold(backends[0]!);
    const m = meshOver({ endpoints: [backends[0]!.url], hedge: { delayMs: 10, budget: { percent: 0, minRetriesPerSecond: 1 } } });
    const r = dispatch(m);
    const first = await slow.next();
    vi.advanceTimersByTime(50);
    first.answer();
    expect((await r.done).status).toBe(200);
    expect(api(m)).toMatchObject({ hedges: 0, hedgeBudgetExhausted: 0 });
    // The one token of the budget was given back: a second slow request still may not go
    // anywhere, and is still not refused by the budget.
    const r2 = dispatch(m);
    const second = await slow.next();
    vi.advanceTimersByTime(50);
    second.answer();
    expect((await r2.done).status).toBe(200);
    expect(api(m)).toMatchObject({ hedges: 0, hedgeBudgetExhausted: 0 });
  });
});

describe('what ends a race, and what does not', () => {
  test('a non-fatal status (503) from the hedge does not end the race: the slow copy answers', async () => {
    const slow = hold(backends[0]!);
    backends[1]!.fault = { kind: 'status', status: 503 };
    const m = meshOver({ hedge: { delayMs: 10 } });
    const r = dispatch(m);
    const first = await slow.next();
    vi.advanceTimersByTime(10);
    await until(() => endpoint(m, 1).requests === 1); // the 503 was seen (and drained)
    first.answer(200, 'slow but good');
    expect(await r.done).toMatchObject({ starts: 1, status: 200, body: 'slow but good' });
  });

  test('with nonFatalStatuses: [], the 503 answers first and wins', async () => {
    const slow = hold(backends[0]!);
    backends[1]!.fault = { kind: 'status', status: 503 };
    const m = meshOver({ hedge: { delayMs: 10, nonFatalStatuses: [] } });
    const r = dispatch(m);
    const first = await slow.next();
    vi.advanceTimersByTime(10);
    expect(await r.done).toMatchObject({ starts: 1, status: 503 });
    await first.closed;
  });

  test('a copy that fails with no response leaves the race; the other one answers', async () => {
    const slow = hold(backends[0]!);
    backends[1]!.fault = { kind: 'reset' };
    const m = meshOver({ hedge: { delayMs: 10 } });
    const r = dispatch(m);
    const first = await slow.next();
    vi.advanceTimersByTime(10);
    await until(() => endpoint(m, 1).failures === 1); // the reset is the endpoint's failure, though the caller never sees it
    first.answer(200, 'first');
    expect(await r.done).toMatchObject({ starts: 1, errors: 0, body: 'first' });
  });

  test('when every copy fails, the caller gets one error: the last copy\'s', async () => {
    const slow = hold(backends[0]!);
    backends[1]!.fault = { kind: 'reset' };
    const m = meshOver({ hedge: { delayMs: 10 } });
    const r = dispatch(m);
    const first = await slow.next();
    vi.advanceTimersByTime(10);
    await until(() => endpoint(m, 1).failures === 1);
    first.req.socket.destroy();
    const seen = await r.done;
    expect(seen).toMatchObject({ starts: 0, errors: 1 });
    expect(seen.error).toMatchObject({ code: 'UPSTREAM_FAILED', endpoint: backends[0]!.url, attempts: 2 });
  });

  test("the caller's abort ends every copy, with one error: the abort's reason", async () => {
    const held = [hold(backends[0]!), hold(backends[1]!)];
    const m = meshOver({ hedge: { delayMs: 10 } });
    const r = dispatch(m);
    const first = await held[0]!.next();
    vi.advanceTimersByTime(10);
    const copy = await held[1]!.next();
    const reason = new Error('caller gave up');
    r.abort(reason);
    const seen = await r.done;
    expect(seen).toMatchObject({ starts: 0, errors: 1 });
    expect(seen.error).toBe(reason);
    await Promise.all([first.closed, copy.closed]);
    expect(api(m)).toMatchObject({ failures: 0, inFlight: 0 });
  });

  test('a retry after a failed race starts a new race on an endpoint not tried yet', async () => {
    const slow = hold(backends[0]!);
    backends[1]!.fault = { kind: 'reset' };
    const m = meshOver({ hedge: { delayMs: 10 }, retry: { attempts: 1, budget: false } });
    const r = dispatch(m);
    const first = await slow.next();
    vi.advanceTimersByTime(10);
    await until(() => endpoint(m, 1).failures === 1);
    first.req.socket.destroy(); // the race's last copy fails: the retry layer retries it
    await until(() => {
      vi.advanceTimersByTime(0); // the back-off (0 ms: random is 0)
      return backends[2]!.received.length === 1;
    });
    expect(await r.done).toMatchObject({ starts: 1, status: 200 });
    expect(api(m)).toMatchObject({ hedges: 1, retries: 1 });
  });
});

describe('what is not hedged', () => {
  test('a POST is not hedged', async () => {
    const slow = hold(backends[0]!);
    const m = meshOver({ hedge: { delayMs: 10 } });
    const r = dispatch(m, { method: 'POST', body: 'order' });
    const first = await slow.next();
    vi.advanceTimersByTime(100);
    first.answer();
    expect((await r.done).status).toBe(200);
    expect(backends[1]!.received).toHaveLength(0);
    expect(api(m).hedges).toBe(0);
  });

  test('a route that opts in hedges its POSTs; the copy carries the same body', async () => {
    const slow = hold(backends[0]!);
    const m = meshOver({ routes: [{ match: [{ uri: { prefix: '/search' } }], hedge: { delayMs: 10, allowNonIdempotent: true } }, {}] });
    const r = dispatch(m, { method: 'POST', path: '/search', body: '{"q":"x"}' });
    const first = await slow.next();
    vi.advanceTimersByTime(10);
    expect((await r.done).status).toBe(200);
    expect(backends[1]!.received[0]).toMatchObject({ method: 'POST', url: '/search' });
    expect(backends[1]!.received[0]!.body.toString()).toBe('{"q":"x"}');
    await first.closed;
  });

  test('a route with hedge: false is not hedged', async () => {
    const slow = hold(backends[0]!);
    const m = meshOver({ hedge: { delayMs: 10 }, routes: [{ match: [{ uri: { prefix: '/report' } }], hedge: false }, {}] });
    const r = dispatch(m, { path: '/report' });
    const first = await slow.next();
    vi.advanceTimersByTime(100);
    first.answer();
    expect((await r.done).status).toBe(200);
    expect(api(m).hedges).toBe(0);
  });

  test('a spent budget stops hedging: counted in stats and as an event', async () => {
    const held = hold(...backends);
    const m = meshOver({ hedge: { delayMs: 10, budget: { percent: 50, minRetriesPerSecond: 0 } } });
    const sent = events(m, 'hedge');
    const refused = events(m, 'hedge-budget-exhausted');
    // Four slow requests, one after the other: a 50 % budget over 1, 2, 3, 4 requests allows a
    // hedge for the 2nd and the 4th only.
    for (let i = 0; i < 4; i++) {
      const r = dispatch(m);
      const first = await held.next();
      const before = sent.length;
      vi.advanceTimersByTime(10);
      const copy = sent.length > before ? await held.next() : null;
      first.answer();
      expect((await r.done).status).toBe(200);
      await copy?.closed;
      expect(sent.length - before, `request ${i + 1}`).toBe(i % 2);
    }
    expect(api(m)).toMatchObject({ hedges: 2, hedgeBudgetExhausted: 2 });
    expect(refused).toHaveLength(2);
    expect(refused[0]).toEqual({ service: 'api', endpoint: backends[0]!.url });
  });
});

describe('the delay', () => {
  test('delayPercentile: no hedge before 100 responses were seen; then a copy after the p95 of recent latencies', async () => {
    let clock = 0;
    const held = hold(...backends);
    held.beforeAnswer = () => void (clock += 5); // every response takes 5 ms on the mesh's clock
    const m = meshOver({ hedge: { delayPercentile: 95 } }, () => clock);
    for (let i = 0; i < 100; i++) {
      const r = dispatch(m);
      const h = await held.next();
      vi.advanceTimersByTime(1_000);
      expect(api(m).hedges, `request ${i + 1}: ${i} samples, no estimate yet`).toBe(0);
      h.answer();
      expect((await r.done).status).toBe(200);
    }
    const r = dispatch(m);
    const first = await held.next();
    vi.advanceTimersByTime(5);
    expect(api(m).hedges).toBe(0); // p95 is 5 ms: the upper edge of its bin, 5.12, rounded up to 6: not yet
    vi.advanceTimersByTime(1);
    expect(api(m).hedges).toBe(1);
    const copy = await held.next();
    copy.answer();
    expect(await r.done).toMatchObject({ starts: 1, status: 200 });
    await first.closed;
  });

  test('hedgeOnPerTryTimeout: at the per-try timeout a copy is sent and the try is not cut', async () => {
    const held = hold(backends[0]!, backends[1]!);
    const m = meshOver({ retry: { attempts: 1, perTryTimeoutMs: 50 }, hedge: { hedgeOnPerTryTimeout: true } });
    const hedges = events(m, 'hedge');
    const r = dispatch(m);
    const first = await held.next();
    vi.advanceTimersByTime(49);
    expect(hedges).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(hedges).toMatchObject([{ delayMs: 50 }]);
    const copy = await held.next();
    vi.advanceTimersByTime(500); // no per-try timeout cuts either copy
    first.answer(200, 'first try');
    expect(await r.done).toMatchObject({ starts: 1, errors: 0, body: 'first try' });
    await copy.closed;
    expect(api(m)).toMatchObject({ hedges: 1, retries: 0, failures: 0 });
  });
});
