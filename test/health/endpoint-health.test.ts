import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type ServiceConfig, type MeshEventMap } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { seeded } from '../support/seeded.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;

afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close({ graceMs: 500 });
  mesh = null;
  await closeAll(backends);
  backends = [];
});

async function setup(n: number, service: Partial<ServiceConfig>, random: () => number = () => 0, now?: () => number): Promise<Mesh> {
  backends = await startBackends(n);
  mesh = createMesh({
    services: { api: { endpoints: backends.map((b) => b.url), balancer: 'round-robin', retry: false, circuitBreaker: false, ...service } },
    random,
    ...(now ? { now } : {}),
  });
  return mesh;
}

const get = (m: Mesh) =>
  request('http://api/x', { dispatcher: m.dispatcher }).then(
    async (r) => {
      await r.body.dump();
      return r.statusCode;
    },
    (e: { code?: string }) => e.code ?? 'error',
  );

const health = (m: Mesh, b: Backend) => m.stats().services.api!.endpoints.find((e) => e.url === b.url)!.health;
/**
 * Let the event loop turn until `done()` (at most 100 turns). For things that settle within a few
 * turns whatever the machine's speed (a peer's socket closing once ours did): this process is
 * both ends, so the kernel has the data before the next turn looks. Counting turns, not time,
 * also keeps a leaked keep-alive socket from closing on its own idle timer while we wait.
 */
async function turns(done: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setImmediate(r));
}
/**
 * Ejection times run on fake timers (setTimeout only: requests still flow over real sockets, and
 * these tests turn retries off), so how fast the machine sends requests cannot change what they see.
 */
const fakeEjectionClock = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });

function record<K extends keyof MeshEventMap>(m: Mesh, name: K): MeshEventMap[K][] {
  const out: MeshEventMap[K][] = [];
  m.on(name, (e) => out.push(e));
  return out;
}

describe('outlier detection', () => {
  test('5 consecutive 5xx eject an endpoint; it returns after the ejection time, through one probe', async () => {
    const m = await setup(3, { outlierDetection: { baseEjectionTimeMs: 200, maxEjectionPercent: 100 } });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    const circuits = record(m, 'circuit');
    backends[0]!.fault = { kind: 'status', status: 503 };
    for (let i = 0; i < 15; i++) await get(m); // round robin: every third request meets b0
    expect(backends[0]!.received).toHaveLength(5);
    expect(health(m, backends[0]!)).toBe('ejected');
    expect(ejections).toEqual([expect.objectContaining({ endpoint: backends[0]!.url, durationMs: 200, ejections: 1, reason: '5 consecutive 5xx' })]);
    const before = backends[0]!.received.length;
    for (let i = 0; i < 9; i++) expect(await get(m)).toBe(200);
    expect(backends[0]!.received).toHaveLength(before);
    backends[0]!.fault = { kind: 'none' };
    expect(health(m, backends[0]!)).toBe('ejected');
    vi.advanceTimersByTime(200);
    expect(health(m, backends[0]!)).toBe('half-open');
    for (let i = 0; i < 6; i++) expect(await get(m)).toBe(200);
    expect(health(m, backends[0]!)).toBe('healthy');
    expect(backends[0]!.received.length).toBeGreaterThan(before);
    expect(circuits.map((c) => `${c.from}->${c.to}`)).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
  });

  test('a failed probe re-ejects for longer (base × times ejected)', async () => {
    const m = await setup(2, { outlierDetection: { baseEjectionTimeMs: 100, maxEjectionPercent: 100, consecutive5xxErrors: 2 } });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    backends[0]!.fault = { kind: 'status', status: 500 };
    for (let i = 0; i < 4; i++) await get(m);
    expect(ejections.map((e) => e.durationMs)).toEqual([100]);
    vi.advanceTimersByTime(100);
    for (let i = 0; i < 4; i++) await get(m); // the probe fails
    expect(ejections.map((e) => e.durationMs)).toEqual([100, 200]);
  });

  test('responses cut short after their headers count as failures: 5 of them eject the endpoint', async () => {
    const m = await setup(3, { outlierDetection: { baseEjectionTimeMs: 200, maxEjectionPercent: 100 } });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    // Headers and part of the body, then the connection is destroyed: undici reports UND_ERR_SOCKET
    // after the response started.
    backends[0]!.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('partial', () => res.socket?.destroy());
    };
    const outcomes: unknown[] = [];
    for (let i = 0; i < 15; i++) {
      outcomes.push(
        await request('http://api/x', { dispatcher: m.dispatcher }).then(
          async (r) => {
            await r.body.text();
            return r.statusCode;
          },
          (e: { code?: string }) => ({ code: e.code, stage: 'headers' }),
        ).catch((e: { code?: string; kind?: string }) => ({ code: e.code, kind: e.kind })),
      );
    }
    expect(backends[0]!.received).toHaveLength(5); // round robin: every third request, until ejected
    const cut = outcomes.filter((o) => o !== 200);
    expect(cut).toEqual(Array.from({ length: 5 }, () => ({ code: 'UPSTREAM_FAILED', kind: 'reset' })));
    expect(health(m, backends[0]!)).toBe('ejected');
    expect(ejections).toEqual([expect.objectContaining({ endpoint: backends[0]!.url, reason: '5 consecutive local-origin failures (reset), counted as 5xx', ejections: 1 })]);
    expect(m.stats().services.api!.endpoints.find((e) => e.url === backends[0]!.url)).toMatchObject({ health: 'ejected', ejections: 1 });
  });

  test('a caller that stops reading a response mid-body does not count against the endpoint', async () => {
    const m = await setup(2, { outlierDetection: { consecutive5xxErrors: 2, maxEjectionPercent: 100 } });
    const ejections = record(m, 'ejection');
    backends[0]!.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('partial'); // the rest never comes
    };
    for (let i = 0; i < 8; i++) {
      const ac = new AbortController();
      const r = await request('http://api/x', { dispatcher: m.dispatcher, signal: ac.signal });
      if (r.headers['content-length'] === '1000') {
        ac.abort();
        await r.body.text().catch(() => undefined);
      } else await r.body.dump();
    }
    expect(backends[0]!.received).toHaveLength(4);
    expect(ejections).toEqual([]);
    expect(health(m, backends[0]!)).toBe('healthy');
  });

  test('connection refused (a stopped endpoint) ejects it as local-origin failures', async () => {
    const m = await setup(3, { outlierDetection: { maxEjectionPercent: 100 } });
    await backends[1]!.stop();
    for (let i = 0; i < 15; i++) await get(m);
    expect(health(m, backends[1]!)).toBe('ejected');
    for (let i = 0; i < 10; i++) expect(await get(m)).toBe(200);
  });

  test('maxEjectionPercent caps how many are ejected at once (one always may be)', async () => {
    // gRPC's rule: eject while fewer than 20 % are ejected — 0 % yes, then 25 % no.
    const m = await setup(4, { outlierDetection: { consecutive5xxErrors: 2, maxEjectionPercent: 20, baseEjectionTimeMs: 10_000 } });
    for (const b of backends.slice(0, 3)) b.fault = { kind: 'status', status: 503 };
    for (let i = 0; i < 40; i++) await get(m);
    const ejected = backends.filter((b) => health(m, b) === 'ejected');
    expect(ejected).toHaveLength(1);
  });

  test('maxEjectionPercent: 0 ejects nothing, not even the first endpoint (gRPC A50, Envoy)', async () => {
    const m = await setup(2, { outlierDetection: { consecutive5xxErrors: 2, maxEjectionPercent: 0 } });
    const ejections = record(m, 'ejection');
    backends[0]!.fault = { kind: 'status', status: 500 };
    for (let i = 0; i < 12; i++) await get(m); // round robin: 6 reach b0, three runs of two
    expect(backends[0]!.received).toHaveLength(6);
    expect(ejections).toEqual([]);
    expect(health(m, backends[0]!)).toBe('healthy');
  });

  test('a half-open endpoint lets exactly one probe through', async () => {
    const m = await setup(2, { outlierDetection: { consecutive5xxErrors: 1, baseEjectionTimeMs: 100, maxEjectionPercent: 100 } });
    backends[0]!.fault = { kind: 'status', status: 503 };
    fakeEjectionClock();
    await get(m); // b0 → ejected
    vi.advanceTimersByTime(100); // → half-open
    // The probe is held at b0 until every other request has finished or is held there too, so
    // all 20 arrive while it is outstanding; a second probe would be held beside it, not missed.
    const n = 20;
    const held: (() => void)[] = [];
    let finished = 0;
    const releaseWhenAllIn = (): void => {
      if (finished + held.length === n) for (const release of held.splice(0)) release();
    };
    backends[0]!.handler = (_req, res) => {
      held.push(() => res.end('{}'));
      releaseWhenAllIn();
    };
    const before = backends[0]!.received.length;
    const results = await Promise.all(
      Array.from({ length: n }, () =>
        get(m).then((r) => {
          finished++;
          releaseWhenAllIn();
          return r;
        }),
      ),
    );
    expect(results.every((r) => r === 200)).toBe(true);
    expect(backends[0]!.received.length - before).toBe(1);
  });

  test("a half-open endpoint's probe refused by its own rate limit is given back: the next request probes it", async () => {
    let t = 0; // the mesh's clock (the buckets'), moved by hand; the ejection timer on fake timers
    const m = await setup(2, { outlierDetection: { consecutive5xxErrors: 1, baseEjectionTimeMs: 100, maxEjectionPercent: 100 }, rateLimit: { requestsPerSecond: 1000, perEndpoint: { requestsPerSecond: 1, burst: 1 } } }, () => 0, () => t);
    const [b0, b1] = backends;
    b0!.fault = { kind: 'status', status: 503 };
    fakeEjectionClock();
    const first = await get(m);
    if (first === 200) expect(await get(m)).toBe(503); // round robin's start: b1 first, then b0
    else expect(first).toBe(503);
    expect(health(m, b0!)).toBe('ejected');
    b0!.fault = { kind: 'none' };
    vi.advanceTimersByTime(100);
    expect(health(m, b0!)).toBe('half-open');
    // Both buckets empty now (b1's too, if it answered above; else it takes this one): b0's trial,
    // admitted by its circuit, is refused by its bucket — and must not be lost.
    const codes = [await get(m), await get(m)];
    expect(codes).toContain('RATE_LIMITED');
    t += 1000; // both buckets refilled
    for (let i = 0; i < 2 && health(m, b0!) !== 'healthy'; i++) {
      expect(await get(m)).toBe(200);
      t += 1000;
    }
    expect(health(m, b0!)).toBe('healthy');
    expect(b0!.received.length).toBe(2); // the 503, then the probe that closed the circuit
    void b1;
  });

  test('the error-rate rule opens a circuit that consecutive counts miss', async () => {
    const m = await setup(2, {
      outlierDetection: { consecutive5xxErrors: 0, maxEjectionPercent: 100 },
      circuitBreaker: { errorThresholdPercentage: 40, volumeThreshold: 10 },
    });
    let n = 0;
    backends[0]!.handler = (_req, res) => {
      res.writeHead(n++ % 2 ? 503 : 200);
      res.end();
    };
    for (let i = 0; i < 40; i++) await get(m);
    expect(health(m, backends[0]!)).toBe('ejected');
  });

  test('with outlier detection off, the error-rate rule\'s ejections decay too: one step per 10 s interval while healthy', async () => {
    // The mesh's clock is the fake one (Date), so the sweep's "healthy for an interval" and the
    // ejection timers agree; requests run between the clock's moves, never across one.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const m = await setup(2, { outlierDetection: false, circuitBreaker: { errorThresholdPercentage: 50, volumeThreshold: 4 } }, () => 0, () => Date.now());
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    const ejectionsOf = () => m.stats().services.api!.endpoints.find((e) => e.url === b0.url)!.ejections;
    b0.fault = { kind: 'status', status: 503 };
    for (let i = 0; i < 8; i++) await get(m); // round robin: 4 reach b0, all fail
    vi.advanceTimersByTime(30_000); // the default base ejection time: half-open
    for (let i = 0; i < 2; i++) await get(m); // the probe fails: ejected again, for twice as long
    expect(ejections.map((e) => [e.durationMs, e.ejections])).toEqual([[30_000, 1], [60_000, 2]]);
    b0.fault = { kind: 'none' };
    vi.advanceTimersByTime(60_000);
    for (let i = 0; i < 2; i++) expect(await get(m)).toBe(200); // the probe succeeds
    expect(health(m, b0)).toBe('healthy');
    expect(ejectionsOf()).toBe(2);
    vi.advanceTimersByTime(10_000);
    expect(ejectionsOf()).toBe(1);
    vi.advanceTimersByTime(10_000);
    expect(ejectionsOf()).toBe(0);
    b0.fault = { kind: 'status', status: 503 };
    for (let i = 0; i < 8; i++) await get(m);
    expect(ejections.at(-1)).toMatchObject({ durationMs: 30_000, ejections: 1 }); // the base time again, not the 90 s a third ejection would get
  });

  test('panic: when fewer than panicThreshold % are available, traffic goes to all of them', async () => {
    const m = await setup(3, { outlierDetection: { consecutive5xxErrors: 1, maxEjectionPercent: 100 }, panicThreshold: 50 });
    const panics = record(m, 'panic');
    for (const b of backends.slice(0, 2)) b.fault = { kind: 'status', status: 503 };
    for (let i = 0; i < 6; i++) await get(m);
    expect(backends.slice(0, 2).map((b) => health(m, b))).toEqual(['ejected', 'ejected']);
    expect(panics).toEqual([expect.objectContaining({ active: true, available: 1, total: 3 })]);
    const before = backends.map((b) => b.received.length);
    for (let i = 0; i < 9; i++) await get(m);
    backends.forEach((b, i) => expect(b.received.length).toBeGreaterThan(before[i]!));
  });

  test('with panic off and every endpoint ejected, requests fail with CIRCUIT_OPEN', async () => {
    const m = await setup(2, { outlierDetection: { consecutive5xxErrors: 1, maxEjectionPercent: 100 }, panicThreshold: 0 });
    for (const b of backends) b.fault = { kind: 'status', status: 503 };
    await get(m);
    await get(m);
    expect(await get(m)).toBe('CIRCUIT_OPEN');
  });
});

describe('active health checks', () => {
  test('failing checks take an endpoint out and passing ones bring it back; requests never wait for a check', async () => {
    const m = await setup(2, { healthCheck: { path: '/healthz', intervalMs: 30, timeoutMs: 50, unhealthyThreshold: 2, healthyThreshold: 2 } });
    const checks = record(m, 'health-check');
    const checked = (healthy: boolean) => new Promise<void>((resolve) => m.on('health-check', (e) => e.healthy === healthy && resolve()));
    const down = checked(false);
    let healthy = false;
    backends[0]!.handler = (req, res) => {
      if (req.url === '/healthz') {
        if (healthy) res.end('ok');
        // unhealthy: hang — the check times out
        return;
      }
      res.end('{}');
    };
    await down;
    expect(health(m, backends[0]!)).toBe('unhealthy');
    const before = backends[0]!.received.filter((r) => r.url === '/x').length;
    for (let i = 0; i < 6; i++) expect(await get(m)).toBe(200);
    expect(backends[0]!.received.filter((r) => r.url === '/x').length).toBe(before);
    const up = checked(true);
    healthy = true;
    await up;
    expect(health(m, backends[0]!)).toBe('healthy');
    expect(checks.map((c) => c.healthy)).toEqual([false, true]);
    expect(backends[0]!.received.find((r) => r.url === '/healthz')!.headers.host).toBe('api');
  });
});

describe('the detail of a failed active health check says what happened, as a string', () => {
  test('a check that gets no answer reads "timeout after N ms" (not the 23 of AbortSignal.timeout\'s DOMException); a refused one its code; a 503 its status', async () => {
    // Accepts every connection and never answers: the check can only time out.
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((s) => void sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      backends = await startBackends(2);
      const [refusing, failing] = backends as [Backend, Backend];
      await refusing.stop();
      failing.fault = { kind: 'status', status: 503 };
      const m = (mesh = createMesh({
        services: {
          api: {
            endpoints: [silentUrl, refusing.url, failing.url],
            outlierDetection: false,
            healthCheck: { path: '/healthz', intervalMs: 10, timeoutMs: 30, unhealthyThreshold: 1 },
          },
        },
        random: () => 0,
      }));
      const details = new Map<string, unknown>();
      await new Promise<void>((resolve) =>
        m.on('health-check', (e) => {
          if (!e.healthy) details.set(e.endpoint, e.detail);
          if (details.size === 3) resolve();
        }),
      );
      expect(Object.fromEntries(details)).toEqual({ [silentUrl]: 'timeout after 30 ms', [refusing.url]: 'ECONNREFUSED', [failing.url]: 'status 503' });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('a passing active health check ends an ejection (Envoy successful_active_health_check_uneject_host)', () => {
  /**
   * b fails requests and its checks with 503 until `fixed` (so no check can pass before the test
   * says, however the checks and requests interleave), then passes both; `checks(n)` resolves
   * once n more checks have passed.
   */
  function failingUntilFixed(b: Backend) {
    const state = { fixed: false, checks: 0, waiters: [] as (() => void)[] };
    b.handler = (req, res) => {
      res.statusCode = state.fixed ? 200 : 503;
      if (req.url === '/healthz') {
        if (state.fixed) state.checks++;
        res.end('check', () => state.waiters.splice(0).forEach((w) => w()));
        return;
      }
      res.end('{}');
    };
    /** Resolves once `n` more checks have passed. */
    const checks = (n: number) => {
      const target = state.checks + n;
      return new Promise<void>((resolve) => {
        const wait = () => (state.checks >= target ? resolve() : state.waiters.push(wait));
        wait();
      });
    };
    return { state, checks };
  }

  test('on by default: the next passing check un-ejects, long before the ejection time', async () => {
    const m = await setup(2, { outlierDetection: { baseEjectionTimeMs: 3_600_000, maxEjectionPercent: 100 }, healthCheck: { path: '/healthz', intervalMs: 20, healthyThreshold: 1, unhealthyThreshold: 1000 } });
    const { state } = failingUntilFixed(backends[0]!);
    const unejections = record(m, 'unejection');
    const circuits = record(m, 'circuit');
    for (let i = 0; i < 10; i++) await get(m); // round robin: 5 reach b0, all 503
    expect(health(m, backends[0]!)).toBe('ejected');
    state.fixed = true;
    await new Promise<void>((resolve) => m.on('unejection', () => resolve()));
    expect(unejections).toEqual([{ service: 'api', endpoint: backends[0]!.url, reason: 'active health check passed' }]);
    expect(circuits.map((c) => `${c.from}->${c.to}`)).toEqual(['closed->open', 'open->closed']);
    expect(health(m, backends[0]!)).toBe('healthy');
    const before = backends[0]!.received.filter((r) => r.url === '/x').length;
    for (let i = 0; i < 4; i++) expect(await get(m)).toBe(200);
    expect(backends[0]!.received.filter((r) => r.url === '/x').length).toBe(before + 2); // back in the rotation
  });

  test('successfulActiveHealthCheckUnejectHost: false keeps the ejection for its time, however many checks pass', async () => {
    const m = await setup(2, {
      outlierDetection: { baseEjectionTimeMs: 3_600_000, maxEjectionPercent: 100, successfulActiveHealthCheckUnejectHost: false },
      healthCheck: { path: '/healthz', intervalMs: 20, healthyThreshold: 1, unhealthyThreshold: 1000 },
    });
    const { state, checks } = failingUntilFixed(backends[0]!);
    const unejections = record(m, 'unejection');
    for (let i = 0; i < 10; i++) await get(m);
    expect(health(m, backends[0]!)).toBe('ejected');
    state.fixed = true;
    await checks(3);
    await turns(() => false); // let what the third check's answer triggers run
    expect(unejections).toEqual([]);
    expect(health(m, backends[0]!)).toBe('ejected');
    expect(m.toJSON().services!.api!.outlierDetection).toMatchObject({ successfulActiveHealthCheckUnejectHost: false });
  });
});

describe('outlier detection: the other rules (README: consecutiveGatewayErrors, the local-origin split, failurePercentage, maxEjectionTimeMs)', () => {
  /**
   * b answers its nth request with `script[n]` — a status, or `'reset'` (the connection is
   * destroyed, no response) — and 200 once the script has run out.
   */
  function scripted(b: Backend, script: readonly (number | 'reset')[]): void {
    let n = 0;
    b.handler = (req, res) => {
      const step = script[n++] ?? 200;
      if (step === 'reset') {
        req.socket.destroy();
        return;
      }
      res.writeHead(step);
      res.end('{}');
    };
  }
  /** b fails (500) `failing` of every 5 requests it gets, the first ones of each five. */
  function failingShare(b: Backend, failing: number): void {
    let n = 0;
    b.handler = (_req, res) => {
      res.writeHead(n++ % 5 < failing ? 500 : 200);
      res.end('{}');
    };
  }
  const allTimers = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });

  test('consecutiveGatewayErrors: 502, 503 and 504 in a row eject, before consecutive5xxErrors (5) would', async () => {
    const m = await setup(2, { outlierDetection: { consecutiveGatewayErrors: 3, maxEjectionPercent: 100 } });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    scripted(b0, [502, 503, 504]);
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await get(m)); // round robin: 3 reach b0
    expect(results.filter((r) => r !== 200)).toEqual([502, 503, 504]);
    expect(health(m, b0)).toBe('ejected');
    expect(ejections).toEqual([expect.objectContaining({ endpoint: b0.url, reason: '3 consecutive gateway errors', ejections: 1 })]);
    for (let i = 0; i < 4; i++) expect(await get(m)).toBe(200);
    expect(b0.received).toHaveLength(3); // no more traffic while ejected
  });

  test("an ejection's reason says what its run was made of: 5xx and resets, without the split", async () => {
    const m = await setup(2, { outlierDetection: { consecutive5xxErrors: 3, maxEjectionPercent: 100 } });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    scripted(b0, [500, 'reset', 500]);
    for (let i = 0; i < 6; i++) await get(m); // round robin: 3 reach b0
    expect(b0.received).toHaveLength(3);
    expect(ejections).toEqual([expect.objectContaining({ endpoint: b0.url, reason: '3 consecutive 5xx or local-origin failures (reset)' })]);
  });

  test("an ejection's reason names only its own run: a reset a success ended is not in it", async () => {
    const m = await setup(2, { outlierDetection: { consecutive5xxErrors: 3, maxEjectionPercent: 100 } });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    scripted(b0, ['reset', 200, 500, 503, 500]);
    for (let i = 0; i < 10; i++) await get(m); // round robin: 5 reach b0
    expect(b0.received).toHaveLength(5);
    expect(ejections).toEqual([expect.objectContaining({ endpoint: b0.url, reason: '3 consecutive 5xx' })]);
  });

  test('consecutiveGatewayErrors: fewer in a row (a success between), or other 5xx, do not eject', async () => {
    const m = await setup(2, { outlierDetection: { consecutiveGatewayErrors: 3, consecutive5xxErrors: 0, maxEjectionPercent: 100 } });
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    // two gateway errors, a success, two more, a success; then 500s, which are 5xx but not gateway errors
    scripted(b0, [502, 503, 200, 504, 502, 200, 500, 500, 500, 500, 500, 500]);
    for (let i = 0; i < 24; i++) await get(m); // round robin: 12 reach b0
    expect(b0.received).toHaveLength(12);
    expect(ejections).toEqual([]);
    expect(health(m, b0)).toBe('healthy');
  });

  // As Envoy's detector (DetectorHostMonitorImpl::putHttpResponseCode: a 5xx that is not a
  // gateway error resets the gateway count).
  test('consecutiveGatewayErrors: a 500 between two gateway errors breaks the run (Envoy resets the count on a non-gateway 5xx)', async () => {
    const m = await setup(2, { outlierDetection: { consecutiveGatewayErrors: 2, consecutive5xxErrors: 0, maxEjectionPercent: 100 } });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    scripted(b0, [503, 500, 503]);
    for (let i = 0; i < 6; i++) await get(m); // round robin: 3 reach b0
    expect(b0.received).toHaveLength(3);
    expect(ejections).toEqual([]);
    expect(health(m, b0)).toBe('healthy');
  });

  test('splitExternalLocalOriginErrors: resets are local-origin failures, ejected by consecutiveLocalOriginFailures and not counted as 5xx', async () => {
    const m = await setup(2, {
      outlierDetection: { splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3, consecutive5xxErrors: 2, maxEjectionPercent: 100 },
    });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    b0.fault = { kind: 'reset' };
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await get(m)); // round robin: 2 reach b0
    expect(results.filter((r) => r !== 200)).toEqual(['UPSTREAM_FAILED', 'UPSTREAM_FAILED']);
    // two failures, consecutive5xxErrors: 2 — but with the split, resets are not 5xx
    expect(ejections).toEqual([]);
    expect(health(m, b0)).toBe('healthy');
    for (let i = 0; i < 2; i++) await get(m); // the third reset
    expect(b0.received).toHaveLength(3);
    expect(health(m, b0)).toBe('ejected');
    expect(ejections).toEqual([expect.objectContaining({ endpoint: b0.url, reason: '3 consecutive local-origin failures', ejections: 1 })]);
  });

  test('splitExternalLocalOriginErrors: an HTTP answer between resets (a connection that worked) breaks their run, as in Envoy', async () => {
    const m = await setup(2, {
      outlierDetection: { splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3, consecutive5xxErrors: 0, maxEjectionPercent: 100 },
    });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    scripted(b0, ['reset', 500, 'reset', 'reset']);
    for (let i = 0; i < 8; i++) await get(m); // round robin: 4 reach b0
    expect(b0.received).toHaveLength(4);
    expect(ejections).toEqual([]); // reset, 500, reset, reset: two in a row, not three
    expect(health(m, b0)).toBe('healthy');
  });

  test('splitExternalLocalOriginErrors: with the split, HTTP 5xx still eject by consecutive5xxErrors, resets between them notwithstanding', async () => {
    const m = await setup(2, {
      outlierDetection: { splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3, consecutive5xxErrors: 2, maxEjectionPercent: 100 },
    });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    scripted(b0, [500, 'reset', 500]);
    for (let i = 0; i < 6; i++) await get(m); // round robin: 3 reach b0
    expect(b0.received).toHaveLength(3);
    expect(ejections).toEqual([expect.objectContaining({ endpoint: b0.url, reason: '2 consecutive 5xx' })]);
  });

  test('without the split, the same resets count as 5xx: consecutive5xxErrors: 2 ejects after two', async () => {
    const m = await setup(2, { outlierDetection: { consecutiveLocalOriginFailures: 3, consecutive5xxErrors: 2, maxEjectionPercent: 100 } });
    fakeEjectionClock();
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    b0.fault = { kind: 'reset' };
    for (let i = 0; i < 4; i++) await get(m); // round robin: 2 reach b0
    expect(b0.received).toHaveLength(2);
    expect(health(m, b0)).toBe('ejected');
    // The reason says what counted: resets, as 5xx (not "2 consecutive 5xx", which no endpoint answered).
    expect(ejections).toEqual([expect.objectContaining({ endpoint: b0.url, reason: '2 consecutive local-origin failures (reset), counted as 5xx' })]);
  });

  test('failurePercentage: the sweep, every intervalMs, ejects an endpoint whose failure share reached threshold — not before, and not one below it', async () => {
    allTimers(); // before the mesh: the sweep is its setInterval
    const m = await setup(3, {
      outlierDetection: { consecutive5xxErrors: 0, intervalMs: 1_000, baseEjectionTimeMs: 60_000, maxEjectionPercent: 100, failurePercentage: { threshold: 60, minimumHosts: 3, requestVolume: 10 } },
    });
    const ejections = record(m, 'ejection');
    const [b0, b1, b2] = backends as [Backend, Backend, Backend];
    failingShare(b0, 3); // 60 %
    failingShare(b1, 2); // 40 %
    for (let i = 0; i < 30; i++) await get(m); // round robin: 10 each
    expect([b0, b1, b2].map((b) => b.received.length)).toEqual([10, 10, 10]);
    vi.advanceTimersByTime(999);
    expect(ejections).toEqual([]); // judged at the sweep only
    expect(health(m, b0)).toBe('healthy');
    vi.advanceTimersByTime(1);
    expect(ejections).toEqual([expect.objectContaining({ endpoint: b0.url, reason: 'failure percentage 60 %', ejections: 1, durationMs: 60_000 })]);
    expect([b0, b1, b2].map((b) => health(m, b))).toEqual(['ejected', 'healthy', 'healthy']);
    for (let i = 0; i < 6; i++) await get(m);
    expect(b0.received).toHaveLength(10); // no more traffic while ejected
  });

  test('failurePercentage: an endpoint with fewer than requestVolume requests in the interval is not judged (the count starts again each interval)', async () => {
    allTimers();
    const m = await setup(3, {
      outlierDetection: { consecutive5xxErrors: 0, intervalMs: 1_000, baseEjectionTimeMs: 60_000, maxEjectionPercent: 100, failurePercentage: { threshold: 50, minimumHosts: 3, requestVolume: 10 } },
    });
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    b0.fault = { kind: 'status', status: 500 }; // every request fails
    for (let i = 0; i < 27; i++) await get(m); // 9 each
    vi.advanceTimersByTime(1_000);
    expect(ejections).toEqual([]);
    for (let i = 0; i < 3; i++) await get(m); // 1 each: 10 over both intervals, 1 in this one
    vi.advanceTimersByTime(1_000);
    expect(ejections).toEqual([]);
    expect(health(m, b0)).toBe('healthy');
    for (let i = 0; i < 30; i++) await get(m); // 10 each in this interval
    vi.advanceTimersByTime(1_000);
    expect(ejections).toEqual([expect.objectContaining({ endpoint: b0.url, reason: 'failure percentage 100 %' })]);
    expect(health(m, b0)).toBe('ejected');
  });

  test('failurePercentage: no endpoint is judged while fewer than minimumHosts have requestVolume requests', async () => {
    allTimers();
    const m = await setup(3, {
      outlierDetection: { consecutive5xxErrors: 0, intervalMs: 1_000, baseEjectionTimeMs: 60_000, maxEjectionPercent: 100, failurePercentage: { threshold: 50, minimumHosts: 4, requestVolume: 10 } },
    });
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    b0.fault = { kind: 'status', status: 500 };
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 30; i++) await get(m); // 10 each: 3 hosts with the volume, 4 needed
      vi.advanceTimersByTime(1_000);
    }
    expect(b0.received).toHaveLength(30);
    expect(ejections).toEqual([]);
    expect(health(m, b0)).toBe('healthy');
  });

  test('maxEjectionTimeMs caps the growing ejection time (base × times ejected), on the event and on the clock', async () => {
    allTimers(); // the decay sweep too (10 s), which this test never reaches
    const m = await setup(2, { outlierDetection: { consecutive5xxErrors: 1, baseEjectionTimeMs: 100, maxEjectionTimeMs: 250, maxEjectionPercent: 100 } });
    const ejections = record(m, 'ejection');
    const b0 = backends[0]!;
    b0.fault = { kind: 'status', status: 503 };
    /** Requests until b0 (its probe, when half-open) fails once more — at most 4. */
    const untilEjected = async () => {
      const n = ejections.length;
      for (let i = 0; i < 4 && ejections.length === n; i++) await get(m);
      expect(ejections).toHaveLength(n + 1);
    };
    await untilEjected();
    for (const ms of [100, 200, 250, 250]) {
      expect(ejections.at(-1)!.durationMs).toBe(ms);
      vi.advanceTimersByTime(ms - 1);
      expect(health(m, b0)).toBe('ejected');
      vi.advanceTimersByTime(1);
      expect(health(m, b0)).toBe('half-open');
      await untilEjected(); // the probe fails
    }
    expect(ejections.map((e) => [e.durationMs, e.ejections])).toEqual([[100, 1], [200, 2], [250, 3], [250, 4], [250, 5]]);
    expect(m.stats().services.api!.endpoints.find((e) => e.url === b0.url)).toMatchObject({ health: 'ejected', ejections: 5 });
  });
});

describe('slow start', () => {
  test("a new endpoint's share ramps up over the window", async () => {
    let t = 0; // the mesh's clock, moved by hand
    const m = await setup(2, { slowStart: { windowMs: 600, minWeightPercent: 10 } }, seeded(5), () => t);
    const [a, b] = backends;
    m.setEndpoints('api', [a!.url]);
    m.setEndpoints('api', [a!.url, b!.url]); // b is new now
    b!.received.length = 0;
    for (let i = 0; i < 60; i++) await get(m);
    const early = b!.received.length;
    t = 650; // past the window
    b!.received.length = 0;
    for (let i = 0; i < 60; i++) await get(m);
    const late = b!.received.length;
    expect(early).toBeLessThan(late);
    expect(late).toBe(30);
  });

  // random() → 0.99 sheds every pick a ramping endpoint gets (its share starts at minWeightPercent).
  test('a new endpoint alone (it replaced the only one) takes every request of its window', async () => {
    const m = await setup(2, { slowStart: { windowMs: 600_000, minWeightPercent: 10 } }, () => 0.99, () => 0);
    const [a, b] = backends;
    m.setEndpoints('api', [a!.url]);
    m.setEndpoints('api', [b!.url]); // b is new, and the only endpoint: a restarted one-replica deployment
    const results = [];
    for (let i = 0; i < 30; i++) results.push(await get(m));
    expect(results).toEqual(Array.from({ length: 30 }, () => 200));
    expect(b!.received).toHaveLength(30);
  });

  test('a shed pick goes to an old endpoint when there is one, and to the new endpoint only when no other takes it', async () => {
    const m = await setup(2, { slowStart: { windowMs: 600_000, minWeightPercent: 10 }, outlierDetection: { consecutive5xxErrors: 1, maxEjectionPercent: 100 }, panicThreshold: 0 }, () => 0.99, () => 0);
    const [a, b] = backends;
    m.setEndpoints('api', [a!.url]);
    m.setEndpoints('api', [a!.url, b!.url]); // b is new
    for (let i = 0; i < 10; i++) expect(await get(m)).toBe(200);
    expect(b!.received).toHaveLength(0); // every pick of b shed, onto a
    a!.fault = { kind: 'status', status: 503 };
    expect(await get(m)).toBe(503); // a ejected: b, ramping, is all that is left
    expect(health(m, a!)).toBe('ejected');
    for (let i = 0; i < 10; i++) expect(await get(m)).toBe(200);
    expect(b!.received).toHaveLength(10);
  });

  test("when the first shed endpoint's own rate limit refuses, the next shed one takes the request", async () => {
    // b and c both new, every pick of either shed; each endpoint may take one request (the clock stands still).
    const m = await setup(3, { slowStart: { windowMs: 600_000, minWeightPercent: 10 }, rateLimit: { requestsPerSecond: 1000, perEndpoint: { requestsPerSecond: 0.001, burst: 1 } } }, () => 0.99, () => 0);
    const [a, b, c] = backends;
    m.setEndpoints('api', [a!.url]);
    m.setEndpoints('api', [b!.url, c!.url]);
    expect([await get(m), await get(m), await get(m)]).toEqual([200, 200, 'RATE_LIMITED']);
    expect([b!.received.length, c!.received.length]).toEqual([1, 1]);
  });
});

describe('lifecycle and config', () => {
  test('close leaves no timer behind', async () => {
    // The mesh's timers are unref'd, which process.getActiveResourcesInfo() does not list: they run
    // on fake timers here, which count every pending one. A first request on the real clock makes
    // undici's shared tick timer there, so the fake clock holds only the mesh's timers.
    backends = await startBackends(1);
    await request(backends[0]!.url).then((r) => r.body.dump());
    await closeAll(backends);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    const m = await setup(2, { healthCheck: { path: '/', intervalMs: 20 }, outlierDetection: { intervalMs: 50 } });
    await get(m);
    await vi.advanceTimersByTimeAsync(20); // the health checks go out
    await vi.waitFor(() => expect(backends.every((b) => b.received.some((r) => r.url === '/'))).toBe(true), { timeout: 10_000 });
    expect(vi.getTimerCount()).toBeGreaterThan(0); // the checker's and the sweep's timers
    await m.close();
    mesh = null;
    expect(vi.getTimerCount()).toBe(0);
  });

  test.each([
    [{ outlierDetection: { baseEjectionTimeMs: 0 } }, /outlierDetection\.baseEjectionTimeMs/],
    [{ outlierDetection: { maxEjectionPercent: 101 } }, /outlierDetection\.maxEjectionPercent/],
    [{ outlierDetection: { consecutive5xx: 3 } }, /outlierDetection\.consecutive5xx: unknown field/],
    [{ circuitBreaker: { errorThresholdPercentage: 0 } }, /circuitBreaker\.errorThresholdPercentage/],
    [{ healthCheck: { intervalMs: 10 } }, /healthCheck\.path: required/],
    [{ healthCheck: { path: '/h', expectedStatuses: [500, 200] } }, /healthCheck\.expectedStatuses/],
    [{ slowStart: {} }, /slowStart\.windowMs: required/],
    [{ panicThreshold: -1 }, /services\.api\.panicThreshold/],
  ])('rejects %j', (service, message) => {
    expect(() => createMesh({ services: { api: { endpoints: ['http://127.0.0.1:1'], ...(service as object) } } })).toThrowError(message);
  });
});

test('after mesh.close() no socket and no timer of the mesh is left (keep-alive connections included)', async () => {
  const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;
  const sockets0 = count('TCPSocketWrap');
  const timers0 = count('Timeout');
  const m = await setup(3, { retry: { attempts: 2 }, healthCheck: { path: '/', intervalMs: 25 }, outlierDetection: { intervalMs: 40 } });
  backends[0]!.fault = { kind: 'status', status: 503 };
  await Promise.all(Array.from({ length: 30 }, () => get(m)));
  expect(count('TCPSocketWrap')).toBeGreaterThan(sockets0); // pooled keep-alive connections exist
  await m.close();
  mesh = null;
  await turns(() => count('TCPSocketWrap') <= sockets0); // the backends' ends of the closed connections
  expect(count('TCPSocketWrap')).toBeLessThanOrEqual(sockets0);
  expect(count('Timeout')).toBeLessThanOrEqual(timers0);
});
