// What is hedged and when, on real backends that hold each request until the test answers it
// (support/holding.ts); the hedge delay runs on fake timers. Checked: methods and routes that are
// not hedged, the budget, the adaptive delay (a percentile of recent latencies, on the mesh's
// injected clock) and Envoy's hedgeOnPerTryTimeout. The races themselves: hedge.test.ts.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { createMesh, type Mesh, type MeshEventMap, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { dispatch, hold } from '../support/holding.js';

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
const events = <K extends keyof MeshEventMap>(m: Mesh, name: K): MeshEventMap[K][] => {
  const out: MeshEventMap[K][] = [];
  m.on(name, (e) => out.push(e));
  return out;
};

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

  test('a PUT through fetch is hedged with the kept bytes of its body; with nothing kept, it is not hedged', async () => {
    const body = Buffer.from(Array.from({ length: 30_000 }, (_, i) => i % 253));
    for (const [limit, hedged] of [[65_536, 1], [0, 0]] as const) {
      const held = hold(backends[0]!);
      backends[1]!.handler = null; // answers (and records the body)
      backends[1]!.received.length = 0;
      const m = meshOver({ hedge: { delayMs: 10 }, perRequestBufferLimitBytes: limit });
      const res = m.fetch('http://api/doc', { method: 'PUT', body });
      const first = await held.next();
      if (!first.req.readableEnded) await new Promise<void>((resolve) => first.req.once('end', () => resolve())); // the whole body was read
      vi.advanceTimersByTime(10);
      expect(api(m).hedges, `limit ${limit}`).toBe(hedged);
      if (!hedged) first.answer();
      expect((await res).status).toBe(200);
      if (hedged) expect(backends[1]!.received[0]!.body.equals(body)).toBe(true);
      await m.close({ graceMs: 0 });
      mesh = null;
    }
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

  test('hedgeOnPerTryTimeout hedges under a policy with no retries too (attempts: 0)', async () => {
    const held = hold(backends[0]!, backends[1]!);
    const m = meshOver({ retry: { attempts: 0, perTryTimeoutMs: 50 }, hedge: { hedgeOnPerTryTimeout: true } });
    const hedges = events(m, 'hedge');
    const r = dispatch(m);
    const first = await held.next();
    vi.advanceTimersByTime(50);
    expect(hedges).toMatchObject([{ delayMs: 50 }]);
    const copy = await held.next();
    copy.answer(200, 'the copy');
    expect(await r.done).toMatchObject({ starts: 1, errors: 0, body: 'the copy' });
    await first.closed;
    expect(api(m)).toMatchObject({ hedges: 1, retries: 0 });
  });

  test('hedgeOnPerTryTimeout with no other endpoint: the copy goes to the same one, as the retry Envoy launches would', async () => {
    const held = hold(backends[0]!);
    mesh = createMesh({
      services: { api: { endpoints: [backends[0]!.url], retry: { attempts: 2, perTryTimeoutMs: 50 }, hedge: { hedgeOnPerTryTimeout: true, budget: false }, outlierDetection: false } },
      logger: { debug: () => {}, warn: () => {} },
    });
    const hedges = events(mesh, 'hedge');
    const r = dispatch(mesh);
    const first = await held.next();
    vi.advanceTimersByTime(50);
    expect(hedges).toMatchObject([{ endpoint: backends[0]!.url, delayMs: 50 }]);
    const copy = await held.next(); // the same endpoint, the first try still in flight
    copy.answer(200, 'the copy');
    expect(await r.done).toMatchObject({ starts: 1, errors: 0, body: 'the copy' });
    await first.closed;
    expect(api(mesh)).toMatchObject({ hedges: 1, hedgesWon: 1, failures: 0 });
  });

  test('hedgeOnPerTryTimeout times each copy as a per-try timeout: from when it has a connection, not while it waits for one', async () => {
    const held = hold(backends[0]!);
    mesh = createMesh({
      services: {
        api: {
          endpoints: [backends[0]!.url],
          pool: { connections: 1 },
          retry: { attempts: 1, perTryTimeoutMs: 50 },
          hedge: { hedgeOnPerTryTimeout: true, budget: false },
          outlierDetection: false,
          // /busy holds the one connection, neither timed nor hedged.
          routes: [{ match: [{ uri: { prefix: '/busy' } }], retry: false, hedge: false }, {}],
        },
      },
      logger: { debug: () => {}, warn: () => {} },
    });
    const hedges = events(mesh, 'hedge');
    const busy = dispatch(mesh, { path: '/busy' });
    const blocker = await held.next();
    const r = dispatch(mesh); // waits for the one connection
    vi.advanceTimersByTime(200);
    expect(hedges).toEqual([]); // no copy while it waits
    blocker.answer();
    expect((await busy.done).status).toBe(200);
    const first = await held.next(); // on the connection now
    vi.advanceTimersByTime(49);
    expect(hedges).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(hedges).toMatchObject([{ delayMs: 50 }]);
    first.answer(200, 'first try');
    expect(await r.done).toMatchObject({ starts: 1, errors: 0, body: 'first try' });
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
