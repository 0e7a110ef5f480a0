// The service-level breaker (serviceBreaker, opossum): one circuit for the whole service. Real
// backends on loopback; the endpoints' own health (outlier detection, their circuits) is off so
// that only the service's circuit decides. The reset timeout runs on fake timers (setTimeout
// only: requests still flow over real sockets, and those tests turn retries off), and every wait
// is for an event, so how fast the machine is cannot change what a test sees.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { CircuitOpenError, createMesh, InvalidConfigError, type Mesh, type MeshEventMap, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;

afterEach(async () => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await closeAll(backends);
  backends = [];
});

async function setup(service: Partial<ServiceConfig>): Promise<Mesh> {
  backends = await startBackends(1);
  mesh = createMesh({
    services: { api: { endpoints: [backends[0]!.url], outlierDetection: false, circuitBreaker: false, retry: false, ...service } },
  });
  return mesh;
}

/** The status, or the error's code. */
const get = (m: Mesh, init: { signal?: AbortSignal; headers?: Record<string, string> } = {}) =>
  request('http://api/x', { dispatcher: m.dispatcher, ...init }).then(
    async (r) => {
      await r.body.dump();
      return r.statusCode as number | string;
    },
    (e: { code?: unknown; name?: string }) => (typeof e.code === 'string' ? e.code : (e.name ?? 'error')),
  );

/** The service circuit's changes, as `from->to`. */
function transitions(m: Mesh): string[] {
  const out: string[] = [];
  m.on('circuit', (e) => {
    if (e.endpoint === '*') out.push(`${e.from}->${e.to}`);
  });
  return out;
}

/** Resolves on the service circuit's next move to `to`. */
function moved(m: Mesh, to: string): Promise<MeshEventMap['circuit']> {
  return new Promise((resolve) => {
    const sub = m.on('circuit', (e) => {
      if (e.endpoint === '*' && e.to === to) {
        sub.dispose();
        resolve(e);
      }
    });
  });
}

/** Resolves when the backend's next request arrives (its handler then holds it unanswered). */
function arrival(b: Backend): Promise<void> {
  return new Promise((resolve) => {
    b.handler = () => {
      b.handler = null;
      resolve();
    };
  });
}

const stats = (m: Mesh) => m.stats().services.api!;

/** Send failing requests one at a time until the circuit opens; returns how many were sent. */
async function openCircuit(m: Mesh, volume: number): Promise<number> {
  backends[0]!.fault = { kind: 'status', status: 500 };
  const open = moved(m, 'open');
  for (let i = 0; i < volume; i++) expect(await get(m)).toBe(500);
  await open;
  return volume;
}

describe('service breaker', () => {
  test('off unless set: an unconfigured service has no such layer; a configured one has it after ready, before retry', async () => {
    backends = await startBackends(1);
    const url = backends[0]!.url;
    mesh = createMesh({
      services: {
        plain: { endpoints: [url] },
        guarded: { endpoints: [url], serviceBreaker: {} },
      },
    });
    const s = mesh.stats().services;
    expect(s.plain!.pipeline).not.toContain('service-breaker');
    expect(s.plain).toMatchObject({ serviceCircuit: undefined, shortCircuited: 0 });
    expect(s.guarded!.pipeline).toEqual(['inbound-context', 'concurrency', 'ready', 'service-breaker', 'retry']);
    expect(s.guarded).toMatchObject({ serviceCircuit: 'closed', shortCircuited: 0 });
  });

  test('opens once the error rate is exceeded; then requests fail with CIRCUIT_OPEN without reaching the backend', async () => {
    const m = await setup({ serviceBreaker: { volumeThreshold: 4, errorThresholdPercentage: 50 } });
    const moves = transitions(m);
    // Three failures are below the volume threshold: still closed.
    backends[0]!.fault = { kind: 'status', status: 500 };
    for (let i = 0; i < 3; i++) expect(await get(m)).toBe(500);
    expect(stats(m).serviceCircuit).toBe('closed');
    const open = moved(m, 'open');
    expect(await get(m)).toBe(500);
    expect(await open).toEqual({ service: 'api', endpoint: '*', from: 'closed', to: 'open' });

    backends[0]!.fault = { kind: 'none' };
    for (let i = 0; i < 5; i++) expect(await get(m)).toBe('CIRCUIT_OPEN');
    expect(backends[0]!.received).toHaveLength(4);
    const err = await request('http://api/x', { dispatcher: m.dispatcher }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(err).toMatchObject({ code: 'CIRCUIT_OPEN', service: 'api', scope: 'service' });
    expect((err as Error).message).toContain("the service's circuit is open");
    expect(stats(m)).toMatchObject({ serviceCircuit: 'open', shortCircuited: 6 });
    expect(moves).toEqual(['closed->open']);
  });

  test('below the error threshold it stays closed', async () => {
    const m = await setup({ serviceBreaker: { volumeThreshold: 4, errorThresholdPercentage: 50 } });
    let n = 0;
    backends[0]!.handler = (_req, res) => {
      res.writeHead(n++ % 3 === 0 ? 503 : 200); // one in three fails: 33 % < 50 %
      res.end();
    };
    for (let i = 0; i < 30; i++) await get(m);
    expect(backends[0]!.received).toHaveLength(30);
    expect(stats(m)).toMatchObject({ serviceCircuit: 'closed', shortCircuited: 0 });
  });

  test('half-opens after resetTimeoutMs and closes on the trial’s success (fake timers)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const m = await setup({ serviceBreaker: { volumeThreshold: 2, resetTimeoutMs: 30_000 } });
    const moves = transitions(m);
    await openCircuit(m, 2);
    backends[0]!.fault = { kind: 'none' };
    vi.advanceTimersByTime(29_999);
    expect(await get(m)).toBe('CIRCUIT_OPEN');
    expect(stats(m).serviceCircuit).toBe('open');

    vi.advanceTimersByTime(1);
    expect(stats(m).serviceCircuit).toBe('half-open');
    const closed = moved(m, 'closed');
    expect(await get(m)).toBe(200);
    await closed;
    for (let i = 0; i < 5; i++) expect(await get(m)).toBe(200);
    expect(backends[0]!.received).toHaveLength(2 + 6);
    expect(moves).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
    expect(stats(m)).toMatchObject({ serviceCircuit: 'closed', shortCircuited: 1 });
  });

  test('a failed trial re-opens the circuit for another resetTimeoutMs (fake timers)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const m = await setup({ serviceBreaker: { volumeThreshold: 2, resetTimeoutMs: 1_000 } });
    const moves = transitions(m);
    await openCircuit(m, 2);
    vi.advanceTimersByTime(1_000);
    const reopened = moved(m, 'open');
    expect(await get(m)).toBe(500); // the trial, still failing
    await reopened;
    expect(await get(m)).toBe('CIRCUIT_OPEN');
    expect(moves).toEqual(['closed->open', 'open->half-open', 'half-open->open']);
  });

  test('while the trial is in flight, other requests are refused: one request probes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const m = await setup({ serviceBreaker: { volumeThreshold: 2, resetTimeoutMs: 1_000 } });
    await openCircuit(m, 2);
    vi.advanceTimersByTime(1_000);
    let release!: () => void;
    const arrived = new Promise<void>((resolve) => {
      backends[0]!.handler = (_req, res) => {
        resolve();
        release = () => {
          res.writeHead(200);
          res.end();
        };
      };
    });
    const trial = get(m);
    await arrived;
    for (let i = 0; i < 3; i++) expect(await get(m)).toBe('CIRCUIT_OPEN');
    const closed = moved(m, 'closed');
    release();
    expect(await trial).toBe(200);
    await closed;
    expect(backends[0]!.received).toHaveLength(3);
  });

  test("caller aborts, invalid requests and the caller's failing bodies do not count against the service", async () => {
    const m = await setup({ serviceBreaker: { volumeThreshold: 2, errorThresholdPercentage: 50 } });
    const moves = transitions(m);
    for (let i = 0; i < 5; i++) {
      const ac = new AbortController();
      const arrived = arrival(backends[0]!);
      const r = get(m, { signal: ac.signal });
      await Promise.race([arrived, r]); // a refused request settles instead of arriving
      ac.abort();
      expect(await r).toBe('AbortError');
    }
    for (let i = 0; i < 5; i++) expect(await get(m, { headers: { 'x-evil': 'a\r\nb' } })).toBe('INVALID_REQUEST');
    async function* broken(): AsyncGenerator<Buffer> {
      yield Buffer.from('a');
      throw new Error('the caller broke its body');
    }
    for (let i = 0; i < 5; i++) {
      const code = await request('http://api/upload', { dispatcher: m.dispatcher, method: 'POST', body: broken() as unknown as import('node:stream').Readable }).then(
        () => 'ok',
        (e: { code?: string }) => e.code,
      );
      expect(code).toBe('REQUEST_BODY_FAILED');
    }
    // Had any of those 15 counted as a failure, this one would open the circuit (volume 2, 50 %).
    backends[0]!.fault = { kind: 'status', status: 500 };
    expect(await get(m)).toBe(500);
    expect(moves).toEqual([]);
    expect(stats(m).serviceCircuit).toBe('closed');
  });

  test("a trial the caller aborts proves nothing: back to open for another resetTimeoutMs, not closed (fake timers)", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const m = await setup({ serviceBreaker: { volumeThreshold: 2, resetTimeoutMs: 1_000 } });
    const moves = transitions(m);
    await openCircuit(m, 2);
    vi.advanceTimersByTime(1_000);
    const ac = new AbortController();
    const arrived = arrival(backends[0]!);
    const verdict = Promise.race([moved(m, 'open'), moved(m, 'closed')]);
    const trial = get(m, { signal: ac.signal });
    await Promise.race([arrived, trial]);
    ac.abort();
    expect(await trial).toBe('AbortError');
    expect(await verdict).toMatchObject({ from: 'half-open', to: 'open' });
    expect(await get(m)).toBe('CIRCUIT_OPEN');
    backends[0]!.fault = { kind: 'none' };
    vi.advanceTimersByTime(1_000);
    const closed = moved(m, 'closed');
    expect(await get(m)).toBe(200);
    await closed;
    expect(moves).toEqual(['closed->open', 'open->half-open', 'half-open->open', 'open->half-open', 'half-open->closed']);
  });

  test('retries run inside one fire: the circuit counts requests, not attempts', async () => {
    const m = await setup({ serviceBreaker: { volumeThreshold: 2, errorThresholdPercentage: 50 }, retry: { attempts: 2, retryOn: ['5xx'], backoff: { baseMs: 1, maxMs: 2 } } });
    backends[0]!.fault = { kind: 'status', status: 500 };
    expect(await get(m)).toBe(500);
    // Three attempts, one fire: below the volume threshold of 2.
    expect(backends[0]!.received).toHaveLength(3);
    expect(stats(m)).toMatchObject({ serviceCircuit: 'closed', retries: 2 });
    const open = moved(m, 'open');
    expect(await get(m)).toBe(500);
    await open;
    expect(backends[0]!.received).toHaveLength(6);
    // A refusal is not retried.
    expect(await get(m)).toBe('CIRCUIT_OPEN');
    expect(backends[0]!.received).toHaveLength(6);
    expect(stats(m).retries).toBe(4);
  });

  test('close() shuts the breaker down: its reset timer and its bucket interval are cleared', async () => {
    const intervals = vi.spyOn(globalThis, 'setInterval');
    const cleared = vi.spyOn(globalThis, 'clearInterval');
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const m = await setup({ serviceBreaker: { volumeThreshold: 2, resetTimeoutMs: 1_000 } });
    const moves = transitions(m);
    await openCircuit(m, 2);
    const made = intervals.mock.results.map((r) => r.value as unknown);
    expect(made.length).toBeGreaterThan(0);
    await m.close({ graceMs: 0 });
    mesh = null;
    for (const handle of made) expect(cleared.mock.calls.map((c) => c[0] as unknown)).toContain(handle);
    vi.advanceTimersByTime(5_000);
    expect(moves).toEqual(['closed->open']);
  });

  test('its config is validated at createMesh, with the field path', () => {
    const make = (serviceBreaker: unknown) => () =>
      createMesh({ services: { api: { endpoints: ['http://127.0.0.1:1'], serviceBreaker: serviceBreaker as ServiceConfig['serviceBreaker'] } } });
    const pathOf = (f: () => unknown): string | undefined => {
      try {
        (f() as Mesh).close();
        return undefined;
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidConfigError);
        return (e as InvalidConfigError).path;
      }
    };
    expect(pathOf(make({ errorThresholdPercentage: 0 }))).toBe('services.api.serviceBreaker.errorThresholdPercentage');
    expect(pathOf(make({ volumeThreshold: 1.5 }))).toBe('services.api.serviceBreaker.volumeThreshold');
    expect(pathOf(make({ rollingWindowMs: 10 }))).toBe('services.api.serviceBreaker.rollingWindowMs');
    expect(pathOf(make({ resetTimeoutMs: -1 }))).toBe('services.api.serviceBreaker.resetTimeoutMs');
    expect(pathOf(make({ timeout: 5 }))).toBe('services.api.serviceBreaker.timeout');
    expect(pathOf(make(true))).toBe('services.api.serviceBreaker');
    expect(pathOf(make({}))).toBeUndefined();
  });
});
