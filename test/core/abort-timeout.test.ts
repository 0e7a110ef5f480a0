import { afterEach, beforeEach, expect, test } from 'vitest';
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
  await new Promise((r) => setTimeout(r, 20));
  expect(mesh.stats().services.slow!.inFlight).toBe(0);
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
  setTimeout(() => ac.abort(new Error('caller gave up')), 50);
  const err = await p.catch((e: Error) => e);
  expect((err as Error).message).toBe('caller gave up');
  await new Promise((r) => setTimeout(r, 20));
  expect(mesh.stats().services.open!.inFlight).toBe(0);
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
  backends[1]!.fault = { kind: 'delay', ms: 100 };
  const finished = request('http://open/slow', { dispatcher: mesh.dispatcher }).then((r) => r.statusCode);
  await new Promise((r) => setTimeout(r, 20));
  await mesh.close();
  expect(await finished).toBe(200);

  const m2 = (await import('../../src/index.js')).createMesh({ services: { open: { endpoints: [backends[1]!.url] } } });
  backends[1]!.fault = { kind: 'hang' };
  const hung = request('http://open/hang', { dispatcher: m2.dispatcher }).catch((e: Error) => e);
  await new Promise((r) => setTimeout(r, 20));
  // The backend never answers: close resolves only because the grace ran out and cut the request.
  await m2.close({ graceMs: 100 });
  expect(await hung).toMatchObject({ code: 'MESH_CLOSED' });
});
