// An attempt's books (request/attempt.ts): the caller's own abort after the response headers says
// nothing about the endpoint, so mesh.stats() counts no failure for it — as outlier detection
// counts none — while a response whose status is a failure stays one however it ends.
import type http from 'node:http';
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { until } from '../support/holding.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;
const open: http.ServerResponse[] = [];
afterEach(async () => {
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
