import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, isMeshError, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[];
let mesh: Mesh;

beforeEach(async () => {
  backends = await startBackends(2);
  mesh = createMesh({
    services: {
      slow: { endpoints: [backends[0]!.url], timeoutMs: 150 },
      open: { endpoints: [backends[1]!.url] },
    },
  });
});

afterEach(async () => {
  vi.useRealTimers();
  await mesh.close();
  await closeAll(backends);
});

test('the service timeout ends a hung request with TIMEOUT and frees the endpoint', async () => {
  backends[0]!.fault = { kind: 'hang' };
  const started = performance.now();
  const err = await request('http://slow/x', { dispatcher: mesh.dispatcher }).catch((e: unknown) => e);
  const elapsed = performance.now() - started;
  expect(isMeshError(err)).toBe(true);
  expect(err).toMatchObject({ code: 'TIMEOUT', service: 'slow', endpoint: backends[0]!.url, attempts: 1 });
  expect(elapsed).toBeGreaterThanOrEqual(140);
  await vi.waitFor(() => expect(mesh.stats().services.slow!.inFlight).toBe(0), { timeout: 10_000 });
});

test('the timeout also covers a slow body, and fetch reports it as the cause', async () => {
  backends[0]!.handler = (_req, res) => {
    res.writeHead(200);
    res.write('partial');
    // never ends
  };
  const res = await mesh.fetch('http://slow/body');
  expect(res.status).toBe(200);
  const err = await res.text().catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  const cause = (err as Error & { cause?: unknown }).cause ?? err;
  expect(cause).toMatchObject({ code: 'TIMEOUT' });
});

test('an AbortSignal aborts a request in flight, end to end', async () => {
  backends[1]!.fault = { kind: 'hang' };
  const ac = new AbortController();
  const p = mesh.fetch('http://open/hang', { signal: ac.signal });
  await vi.waitFor(() => expect(backends[1]!.received).toHaveLength(1), { timeout: 10_000 }); // in flight: the backend has it
  ac.abort(new Error('caller gave up'));
  const err = await p.catch((e: Error) => e);
  expect((err as Error).message).toBe('caller gave up');
  await vi.waitFor(() => expect(mesh.stats().services.open!.inFlight).toBe(0), { timeout: 10_000 });
});

test('an already-aborted signal never reaches a backend', async () => {
  const ac = new AbortController();
  ac.abort();
  const err = await request('http://open/x', { dispatcher: mesh.dispatcher, signal: ac.signal }).catch((e: Error) => e);
  expect((err as Error).name).toBe('AbortError');
  expect(backends[1]!.received).toHaveLength(0);
});

test('undici.request with a signal aborts while the response body streams', async () => {
  backends[1]!.handler = (_req, res) => {
    res.writeHead(200);
    res.write('x'.repeat(1000));
  };
  const ac = new AbortController();
  const res = await request('http://open/stream', { dispatcher: mesh.dispatcher, signal: ac.signal });
  ac.abort();
  const err = await res.body.text().catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
});

test('close waits for in-flight requests, and aborts them after graceMs', async () => {
  // The grace runs on the fake clock. The backend holds the response until close has waited all
  // but 1 ms of it: the response still arrives, so close waited for it.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  let answer!: () => void;
  const arrived = new Promise<void>((resolve) => {
    backends[1]!.handler = (_req, res) => {
      answer = () => res.end('done');
      resolve();
    };
  });
  const finished = request('http://open/slow', { dispatcher: mesh.dispatcher }).then((r) => r.statusCode);
  await arrived;
  const closing = mesh.close({ graceMs: 1_000 });
  await vi.advanceTimersByTimeAsync(999);
  answer();
  await closing;
  expect(await finished).toBe(200);

  const m2 = (await import('../../src/index.js')).createMesh({ services: { open: { endpoints: [backends[1]!.url] } } });
  const hanging = new Promise<void>((resolve) => (backends[1]!.handler = () => resolve())); // never answers
  const hung = request('http://open/hang', { dispatcher: m2.dispatcher }).catch((e: Error) => e);
  await hanging;
  // The backend never answers: close resolves only because the grace ran out and cut the request.
  let closed = false;
  const closing2 = m2.close({ graceMs: 100 }).then(() => (closed = true));
  await vi.advanceTimersByTimeAsync(99);
  expect(closed).toBe(false);
  await vi.advanceTimersByTimeAsync(1);
  await closing2;
  expect(await hung).toMatchObject({ code: 'MESH_CLOSED' });
});
