// Hedge races on real backends. A backend told to hold keeps each request until the test answers
// it (support/holding.ts), so "slow" is an event the test controls, never a race against the
// clock; the hedge delay runs on fake timers. Checked: the caller gets exactly one response (the
// first that is not non-fatal), the other copies are aborted (their backend sees the connection
// close) and not blamed, failures leave the race, the caller's abort, the deadline and close() end
// it, and a retry starts a new one.
// What is hedged and when: hedge-policy.test.ts.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { createMesh, type Mesh, type MeshEventMap, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { dispatch, hold, until } from '../support/holding.js';

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

const api = (m: Mesh) => m.stats().services.api!;
const endpoint = (m: Mesh, i: number) => api(m).endpoints.find((e) => e.url === backends[i]!.url)!;
/** Let `n` turns of the event loop pass (setImmediate is not faked). */
const turns = async (n: number): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};
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

describe("the caller's back-pressure (pause before any answer)", () => {
  test('a resume reaches every copy in the race: the first copy, left to answer when the hedge fails, delivers its body', async () => {
    const held = hold(backends[0]!, backends[1]!);
    const m = meshOver({ hedge: { delayMs: 10 } });
    const r = dispatch(m);
    r.pause();
    const first = await held.next();
    vi.advanceTimersByTime(10);
    const second = await held.next(); // the hedge (now the current copy), started while the caller is paused
    r.resume();
    second.req.socket.destroy(); // the hedge fails with no response: it leaves the race
    await until(() => endpoint(m, 1).inFlight === 0);
    first.answer(200, 'the first copy');
    expect(await r.done).toMatchObject({ starts: 1, ends: 1, errors: 0, status: 200, body: 'the first copy' });
  });

  test('a copy whose non-fatal 503 leaves the race is drained even while the caller is paused: its books close', async () => {
    const held = hold(backends[0]!, backends[1]!);
    const m = meshOver({ hedge: { delayMs: 10 } });
    const r = dispatch(m);
    r.pause();
    const first = await held.next();
    vi.advanceTimersByTime(10);
    const second = await held.next();
    first.answer(503, 'busy'); // non-fatal: it leaves the race, drained by the mesh
    await until(() => endpoint(m, 0).inFlight === 0 && endpoint(m, 0).requests === 1);
    r.resume();
    second.answer(200, 'ok');
    expect(await r.done).toMatchObject({ starts: 1, ends: 1, status: 200, body: 'ok' });
    await mesh!.close({ graceMs: 0 });
    expect(api(m).endpoints.map((e) => e.inFlight)).toEqual([0, 0, 0]);
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

  test('the deadline (timeoutMs) ends every copy: the caller gets one TIMEOUT, and both connections are closed', async () => {
    const held = [hold(backends[0]!), hold(backends[1]!)]; // neither ever answers
    const m = meshOver({ timeoutMs: 50, hedge: { delayMs: 10 } });
    const r = dispatch(m);
    const first = await held[0]!.next();
    vi.advanceTimersByTime(10);
    const copy = await held[1]!.next(); // both copies are in flight
    vi.advanceTimersByTime(39);
    let settled = false;
    void r.done.then(() => (settled = true));
    await turns(20); // nothing ends it before the deadline
    expect(settled).toBe(false);
    vi.advanceTimersByTime(1); // the deadline, 50 ms after the start
    const seen = await r.done;
    expect(seen).toMatchObject({ starts: 0, ends: 0, errors: 1 });
    expect(seen.error).toMatchObject({ code: 'TIMEOUT', service: 'api' });
    await Promise.all([first.closed, copy.closed]); // the mesh closed both copies' connections
    expect(held.map((h) => h.count)).toEqual([1, 1]);
    // Both copies ended (inFlight 0). Which is blamed is not what this checks: the copy that was
    // current when the deadline fired ends as a 'timeout' (a TIMEOUT is not blameless), the other
    // is cancelled (blameless), as any copy that loses a race.
    expect(api(m)).toMatchObject({ hedges: 1, hedgesWon: 0, inFlight: 0 });
    for (const i of [0, 1]) expect(endpoint(m, i)).toMatchObject({ requests: 1, inFlight: 0 });
  });

  test('close() ends every copy: past its grace the caller gets one MESH_CLOSED, both connections are closed, nothing counts against the endpoints', async () => {
    const held = [hold(backends[0]!), hold(backends[1]!)]; // neither ever answers
    const m = meshOver({ hedge: { delayMs: 10 } });
    const r = dispatch(m);
    const first = await held[0]!.next();
    vi.advanceTimersByTime(10);
    const copy = await held[1]!.next();
    let closed = false;
    const closing = m.close({ graceMs: 20 }).then(() => (closed = true));
    let settled = false;
    void r.done.then(() => (settled = true));
    await turns(20);
    expect(settled).toBe(false); // the copies go on within the grace
    await until(() => {
      vi.advanceTimersByTime(1); // until the grace runs out (its timer is armed once close has stopped the service's parts)
      return settled;
    });
    const seen = await r.done;
    expect(seen).toMatchObject({ starts: 0, ends: 0, errors: 1 });
    expect(seen.error).toMatchObject({ code: 'MESH_CLOSED' });
    await Promise.all([first.closed, copy.closed]);
    await until(() => {
      vi.advanceTimersByTime(0);
      return closed;
    });
    await closing;
    expect(held.map((h) => h.count)).toEqual([1, 1]); // nothing sent after the cut
    expect(api(m)).toMatchObject({ hedges: 1, failures: 0, inFlight: 0 });
    for (const i of [0, 1]) expect(endpoint(m, i)).toMatchObject({ failures: 0, inFlight: 0 });
  });

  test("a copy's 503 the retry layer retries is no hedge won: hedgesWon counts what reached the caller", async () => {
    const held = hold(backends[0]!, backends[1]!, backends[2]!);
    const m = meshOver({ hedge: { delayMs: 10, budget: false }, retry: { attempts: 1, budget: false } });
    const r = dispatch(m);
    const first = await held.next(); // b0
    vi.advanceTimersByTime(10);
    const copy = await held.next(); // b1, the hedge
    first.answer(503); // non-fatal while the copy runs: it leaves the race
    await until(() => endpoint(m, 0).requests === 1);
    copy.answer(503); // the race's last answer, from the copy: held back and retried
    const retried = await until(() => {
      vi.advanceTimersByTime(0); // the back-off (0 ms: random is 0)
      return held.count === 3;
    }).then(() => held.next()); // the retry's race, its first copy: b2
    retried.answer(200, 'retried');
    expect(await r.done).toMatchObject({ starts: 1, status: 200, body: 'retried' });
    expect(api(m)).toMatchObject({ hedges: 1, hedgesWon: 0, retries: 1 });
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
