// The inbound side in a real Express app (issue 14 §1): mesh.middleware() first, then a body
// parser and routes — the deadline and trace headers reach the mesh calls a route makes after
// the JSON body was parsed, responses carry a load report, the limit answers 503, and the probes
// mounted before the middleware are never limited. An Express app passed to mesh.inbound() too.
import http from 'node:http';
import express from 'express';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { createMesh, type Mesh } from '../../src/index.js';
import { readLoadReport } from '../../src/load/orca.js';
import { startBackend, type Backend } from '../support/backend.js';
import { httpRequest } from '../support/http-client.js';
import { Gate, serve, type Served } from '../support/inbound.js';

let leaf: Backend;
let mesh: Mesh;
let front: Served;
let gate: Gate;

function app(): express.Express {
  const a = express();
  a.use(mesh.probes());
  a.use(mesh.middleware({ propagate: ['end-user'], limits: { maxRequests: 1 } }));
  a.use(express.json());
  a.post('/order', async (req, res) => {
    const stock = await mesh.fetch('http://leaf/stock');
    res.json({ order: req.body as unknown, leaf: await stock.json() });
  });
  a.get('/hold', async (_req, res) => {
    await gate.pass();
    res.send('held');
  });
  return a;
}

beforeEach(async () => {
  gate = new Gate();
  leaf = await startBackend('leaf');
  mesh = createMesh({ services: { leaf: { endpoints: [leaf.url] } } });
  front = await serve(http.createServer(app()));
});

afterEach(async () => {
  gate.open();
  await front.close();
  await mesh.close();
  await leaf.close();
});

const order = (headers: Record<string, string> = {}) =>
  httpRequest(`${front.url}/order`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, JSON.stringify({ sku: 'tea', n: 2 }));

test('a route calling the mesh after express.json() parsed the body passes the trace headers and the deadline on', async () => {
  const r = await order({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x-request-id': 'r-7', 'end-user': 'jason', 'grpc-timeout': '3S' });
  expect(r.status).toBe(200);
  expect(JSON.parse(r.body)).toMatchObject({ order: { sku: 'tea', n: 2 }, leaf: { backend: 'leaf' } });
  expect(leaf.received[0]!.headers).toMatchObject({
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    'x-request-id': 'r-7',
    'end-user': 'jason',
  });
  const left = Number(leaf.received[0]!.headers['x-meshlet-deadline-ms']);
  expect(left).toBeGreaterThan(0);
  expect(left).toBeLessThanOrEqual(3000);
  expect(readLoadReport(r.headers as Record<string, string>)).toMatchObject({ type: 'report', report: { namedMetrics: { rif: 0 } } });
});

test('the limit answers 503 with Retry-After before any route runs; the probes mounted before it still answer', async () => {
  const held = httpRequest(`${front.url}/hold`);
  await gate.arrived(1);
  const over = await order();
  expect([over.status, over.headers['retry-after']]).toEqual([503, '1']);
  expect(leaf.received).toHaveLength(0);
  expect((await httpRequest(`${front.url}/readyz`)).status).toBe(200);
  expect((await httpRequest(`${front.url}/healthz`)).body).toBe('ok\n');
  expect(mesh.stats().inbound!.entries.express).toMatchObject({ overloaded: 1, inFlight: 1 });
  gate.open();
  expect((await held).body).toBe('held');
});

test('an Express app wrapped whole with mesh.inbound() works the same', async () => {
  const plain = express();
  plain.get('/x', async (_req, res) => res.json(await (await mesh.fetch('http://leaf/x')).json()));
  const whole = await serve(mesh.inbound(plain));
  try {
    const r = await httpRequest(`${whole.url}/x`, { headers: { 'x-request-id': 'whole-1' } });
    expect(r.status).toBe(200);
    expect(leaf.received[0]!.headers['x-request-id']).toBe('whole-1');
    expect(r.headers['endpoint-load-metrics']).toMatch(/^TEXT /);
  } finally {
    await whole.close();
  }
});
