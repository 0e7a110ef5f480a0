// A mirror target that never answers costs the callers nothing: copies go over a pool of their own,
// end at the route's timeout (Envoy's shadow timeout), and are none of the in-flight requests the
// balancers weigh. Through createMesh and real loopback backends that hold every `-shadow` request.
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type http from 'node:http';
import { createMesh, type Mesh, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';
import { dispatch, until } from '../support/holding.js';

let api: Backend;
let audit: Backend;
let mesh: Mesh | null = null;

/** The `-shadow` requests a backend holds (never answered), each with whether its connection closed. */
interface Shadows {
  readonly held: { readonly req: http.IncomingMessage; closed: boolean }[];
}

/** `b` answers its callers at once (200, its name) and holds every copy, unanswered. */
function holdShadows(b: Backend): Shadows {
  const shadows: Shadows = { held: [] };
  b.handler = (req, res) => {
    req.resume();
    if (String(req.headers.host).includes('-shadow')) {
      const h = { req, closed: false };
      res.once('close', () => (h.closed = true));
      shadows.held.push(h);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(b.name);
  };
  return shadows;
}

beforeEach(async () => {
  api = await startBackend('api');
  audit = await startBackend('audit');
});

afterEach(async () => {
  vi.useRealTimers();
  await mesh?.close();
  mesh = null;
  await closeAll([api, audit]);
});

function meshWith(service: Partial<ServiceConfig>): Mesh {
  mesh = createMesh({ services: { api: { endpoints: [api.url], ...service }, audit: { endpoints: [audit.url] } } });
  return mesh;
}

/** One caller's request to `api`, run to its end (or failing after 10,000 turns of the event loop). */
async function call(m: Mesh, path = '/x'): Promise<number> {
  const r = dispatch(m, { path });
  let status = -1;
  void r.done.then((seen) => (status = seen.error ? 0 : seen.status));
  await until(() => status !== -1);
  return status;
}

describe('copies to the same service', () => {
  test('a copy that hangs takes none of the callers\' connections, even with one connection', async () => {
    const shadows = holdShadows(api);
    const m = meshWith({ pool: { connections: 1 }, routes: [{ mirror: { percent: 100 } }] });
    // Each request's copy is sent before the request itself; with the callers' pool it would take
    // the only connection, and every caller would wait behind it.
    for (let i = 0; i < 3; i++) expect(await call(m, `/r${i}`)).toBe(200);
    await until(() => shadows.held.length === 1); // the mirror pool's one connection; the other copies wait in it
    expect(shadows.held[0]!.req.headers.host).toBe('api-shadow');
    expect(api.received.filter((r) => r.headers.host === 'api').map((r) => r.url)).toEqual(['/r0', '/r1', '/r2']);
  });

  test('the default pool: 64 copies that hang do not stop the 65th caller', async () => {
    const shadows = holdShadows(api);
    const m = meshWith({ routes: [{ mirror: { percent: 100 } }] });
    for (let i = 0; i < 70; i++) expect(await call(m, `/r${i}`)).toBe(200);
    await until(() => shadows.held.length === 64);
  });

  test('copies are none of the in-flight requests balancers read: stats show the callers\' only', async () => {
    const shadows = holdShadows(api);
    const m = meshWith({ balancer: 'least-request', routes: [{ mirror: { percent: 100 } }] });
    for (let i = 0; i < 3; i++) expect(await call(m)).toBe(200);
    await until(() => shadows.held.length === 3);
    const s = m.stats().services.api!;
    expect([s.inFlight, s.endpoints[0]!.inFlight]).toEqual([0, 0]);
  });

  test('a copy ends at the route\'s timeout, which the caller has too', async () => {
    const shadows = holdShadows(api);
    const m = meshWith({ timeoutMs: 60_000, routes: [{ timeoutMs: 1_000, mirror: { percent: 100 } }] });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    expect(await call(m)).toBe(200);
    await until(() => shadows.held.length === 1);
    await vi.advanceTimersByTimeAsync(999);
    expect(shadows.held[0]!.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => shadows.held[0]!.closed);
    // Ended, and counted on the endpoint's books as a failure.
    await until(() => m.stats().services.api!.endpoints[0]!.failures === 1);
  });

  test('a copy ends at the service\'s timeout when its route sets none', async () => {
    const shadows = holdShadows(api);
    const m = meshWith({ timeoutMs: 2_000, routes: [{ mirror: { percent: 100 } }] });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    expect(await call(m)).toBe(200);
    await until(() => shadows.held.length === 1);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(shadows.held[0]!.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => shadows.held[0]!.closed);
  });

  test('with no timeout anywhere, a copy ends after 15 s (Envoy\'s default route timeout)', async () => {
    const shadows = holdShadows(api);
    const m = meshWith({ routes: [{ mirror: { percent: 100 } }] });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    expect(await call(m)).toBe(200);
    await until(() => shadows.held.length === 1);
    await vi.advanceTimersByTimeAsync(14_999);
    expect(shadows.held[0]!.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => shadows.held[0]!.closed);
  });
});

describe('copies to another service', () => {
  test('a copy ends at the sending route\'s timeout', async () => {
    const shadows = holdShadows(audit);
    const m = meshWith({ routes: [{ timeoutMs: 1_000, mirror: { service: 'audit', percent: 100 } }] });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    expect(await call(m)).toBe(200);
    await until(() => shadows.held.length === 1);
    expect(shadows.held[0]!.req.headers.host).toBe('api-shadow');
    await vi.advanceTimersByTimeAsync(999);
    expect(shadows.held[0]!.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => shadows.held[0]!.closed);
    // The copy is audit's request: its books say it failed (timed out).
    await until(() => m.stats().services.audit!.failures === 1);
  });

  test('with no timeout anywhere, a copy ends after 15 s', async () => {
    const shadows = holdShadows(audit);
    const m = meshWith({ routes: [{ mirror: { service: 'audit', percent: 100 } }] });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    expect(await call(m)).toBe(200);
    await until(() => shadows.held.length === 1);
    await vi.advanceTimersByTimeAsync(14_999);
    expect(shadows.held[0]!.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await until(() => shadows.held[0]!.closed);
  });
});
