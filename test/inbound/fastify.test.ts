// The inbound side in a real Fastify app (issue 14 §1): app.register(mesh.fastifyPlugin()) at the
// root — the context reaches mesh calls a route makes after Fastify parsed the JSON body (read
// from the socket's events, in another async context), responses carry a load report, the rate
// limit answers 429 through Fastify's reply before any route runs.
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { createMesh, type Mesh } from '../../src/index.js';
import { readLoadReport } from '../../src/load/orca.js';
import { startBackend, type Backend } from '../support/backend.js';
import { httpRequest } from '../support/http-client.js';

let leaf: Backend;
let mesh: Mesh;
let app: FastifyInstance;
let url: string;
let t = 0;

beforeEach(async () => {
  t = 0;
  leaf = await startBackend('leaf');
  mesh = createMesh({ now: () => t, services: { leaf: { endpoints: [leaf.url] } } });
  app = Fastify();
  await app.register(mesh.fastifyPlugin({ propagate: ['end-user'], rateLimit: { requestsPerSecond: 1, burst: 3 } }));
  // A child scope: the plugin's hook reaches into it too (skip-override).
  await app.register(async (child) => {
    child.post('/order', async (request) => {
      const stock = await mesh.fetch('http://leaf/stock');
      return { order: request.body, leaf: await stock.json() };
    });
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});

afterEach(async () => {
  await app.close();
  await mesh.close();
  await leaf.close();
});

const order = (headers: Record<string, string> = {}) =>
  httpRequest(`${url}/order`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, JSON.stringify({ sku: 'tea' }));

test('a route calling the mesh after Fastify parsed the body passes the trace headers and the deadline on', async () => {
  const r = await order({ 'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7', 'end-user': 'jason', 'x-envoy-expected-rq-timeout-ms': '1200' });
  expect(r.status).toBe(200);
  expect(JSON.parse(r.body)).toMatchObject({ order: { sku: 'tea' }, leaf: { backend: 'leaf' } });
  expect(leaf.received[0]!.headers).toMatchObject({
    'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
    'end-user': 'jason',
    'x-meshlet-deadline-ms': '1200', // the mesh's clock stood still
  });
  expect(leaf.received[0]!.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(readLoadReport(r.headers as Record<string, string>)).toMatchObject({ type: 'report', report: { namedMetrics: { rif: 0 } } });
});

test('past the burst the plugin answers 429 with Retry-After through the reply, and no route runs', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await order()).status);
  expect(statuses).toEqual([200, 200, 200, 429]);
  const over = await order();
  expect([over.status, over.headers['retry-after'], over.body]).toEqual([429, '1', 'inbound fastify: rate limited\n']);
  expect(leaf.received).toHaveLength(3);
  expect(mesh.stats().inbound!.entries.fastify).toMatchObject({ rateLimited: 2 });
  t += 1000;
  expect((await order()).status).toBe(200);
});
