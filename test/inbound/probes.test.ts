// Kubernetes probes (issue 14 §6): liveness answers while the process lives, readiness fails
// while draining or while the application says it is not ready; other paths go on to `next`.
import http from 'node:http';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { createMesh, type Mesh, type ProbeOptions } from '../../src/index.js';
import { httpRequest } from '../support/http-client.js';
import { serve, type Served } from '../support/inbound.js';

let mesh: Mesh;
let served: Served | null = null;
const warnings: string[] = [];

beforeEach(() => {
  warnings.length = 0;
  mesh = createMesh({ services: {}, logger: { warn: (m: string) => warnings.push(m), debug: () => {} } });
});

afterEach(async () => {
  await served?.close();
  served = null;
  await mesh.close();
});

async function start(options?: ProbeOptions, next?: boolean): Promise<string> {
  const probes = mesh.probes(options);
  served = await serve(next ? (req: http.IncomingMessage, res: http.ServerResponse) => probes(req, res, () => res.end('app')) : probes);
  return served.url;
}

test("readiness follows the application's ready(); a ready() that throws is not ready, with a warning", async () => {
  let state: boolean | 'throw' = false;
  const url = await start({ ready: () => (state === 'throw' ? (() => { throw new Error('db down'); })() : state) });
  expect(await httpRequest(`${url}/readyz`)).toMatchObject({ status: 503, body: 'not ready\n' });
  state = true;
  expect(await httpRequest(`${url}/readyz?verbose`)).toMatchObject({ status: 200, body: 'ok\n' });
  state = 'throw';
  expect((await httpRequest(`${url}/readyz`)).status).toBe(503);
  expect((await httpRequest(`${url}/readyz`)).status).toBe(503); // the kubelet asks again: warned once
  const warning = 'meshlet:inbound: probes: ready() threw, answering not ready (warned once until it returns again): db down';
  expect(warnings).toEqual([warning]);
  expect((await httpRequest(`${url}/healthz`)).status).toBe(200); // liveness does not depend on it
  state = true; // it returns again: the next throw is a new state, warned of
  expect((await httpRequest(`${url}/readyz`)).status).toBe(200);
  state = 'throw';
  expect((await httpRequest(`${url}/readyz`)).status).toBe(503);
  expect(warnings).toEqual([warning, warning]);
});

test('custom paths; HEAD answers without a body; another path or method goes to next, or is a 404 without one', async () => {
  const url = await start({ livenessPath: '/live', readinessPath: '/ready' });
  expect(await httpRequest(`${url}/live`, { method: 'HEAD' })).toMatchObject({ status: 200, body: '' });
  expect((await httpRequest(`${url}/ready`)).status).toBe(200);
  expect((await httpRequest(`${url}/healthz`)).status).toBe(404);
  expect((await httpRequest(`${url}/ready`, { method: 'POST' })).status).toBe(404);
  await served!.close();
  const withNext = await start(undefined, true);
  expect((await httpRequest(`${withNext}/orders`)).body).toBe('app');
  expect((await httpRequest(`${withNext}/healthz`)).body).toBe('ok\n');
});

test('readiness fails once a drain starts, and liveness does not', async () => {
  const url = await start();
  await mesh.drain({ graceMs: 0 });
  expect(await httpRequest(`${url}/readyz`)).toMatchObject({ status: 503, body: 'draining\n' });
  expect((await httpRequest(`${url}/healthz`)).status).toBe(200);
});
