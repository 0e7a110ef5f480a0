// Context that flows (issue 14 §3): a service wrapped with mesh.inbound copies the tracing
// headers Istio lists, and configured ones, onto the mesh calls it makes while serving — through
// fetch, undici.request (in undici's header shapes) and mesh.agent() — with real servers.
import http from 'node:http';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, inboundRequest, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';
import { httpRequest } from '../support/http-client.js';
import { serve, type Served } from '../support/inbound.js';

const ISTIO = {
  'x-request-id': 'req-1',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  tracestate: 'congo=t61rcWkgMzE',
  baggage: 'userId=alice',
  b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1',
  'x-b3-traceid': '80f198ee56343ba864fe8b2a57d3eff7',
  'x-b3-spanid': 'e457b5a2e4d86bd1',
  'x-b3-parentspanid': '05e3ac9a4f6e3b90',
  'x-b3-sampled': '1',
  'x-b3-flags': '1',
  'x-ot-span-context': 'ot-ctx',
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let leaf: Backend;
let canary: Backend;
let mesh: Mesh;
let front: Served;
/** What the handler does with its mesh; replaced per test. */
let handler: (req: http.IncomingMessage) => Promise<unknown>;

beforeEach(async () => {
  leaf = await startBackend('leaf');
  canary = await startBackend('canary');
  mesh = createMesh({
    services: {
      leaf: { endpoints: [leaf.url] },
      routed: {
        endpoints: [
          { url: leaf.url, labels: { v: '1' } },
          { url: canary.url, labels: { v: '2' } },
        ],
        subsets: { v1: { labels: { v: '1' } }, v2: { labels: { v: '2' } } },
        routes: [{ match: [{ headers: { 'end-user': { exact: 'jason' } } }], subset: 'v2' }, { subset: 'v1' }],
      },
    },
  });
  front = await serve(
    mesh.inbound(
      (req, res) => {
        handler(req).then(
          (out) => res.end(JSON.stringify(out ?? null)),
          (err: Error) => res.writeHead(500).end(err.message),
        );
      },
      { propagate: ['end-user'] },
    ),
  );
});

afterEach(async () => {
  await front.close();
  await mesh.close();
  await closeAll([leaf, canary]);
});

/**
 * Read the body with 'data' / 'end' listeners and call `then` from the 'end' listener, as body
 * parsers call `next()`: the socket emits 'end', not the handler's code.
 */
function afterBody<T>(req: http.IncomingMessage, then: () => Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.on('data', () => {});
    req.on('end', () => then().then(resolve, reject));
  });
}

test("the headers Istio lists and configured ones reach the calls made while serving — from the body's 'end' listener, and after a timer", async () => {
  handler = (req) =>
    afterBody(req, async () => {
      await (await mesh.fetch('http://leaf/first')).text();
      await new Promise((resolve) => setTimeout(resolve, 0));
      const r = await request('http://leaf/second', { dispatcher: mesh.dispatcher });
      await r.body.dump();
    });
  const r = await httpRequest(`${front.url}/`, { method: 'POST', headers: { ...ISTIO, 'end-user': 'jason', 'x-unrelated': 'no' } }, 'x'.repeat(200_000));
  expect(r.status).toBe(200);
  expect(leaf.received.map((x) => x.url)).toEqual(['/first', '/second']);
  for (const got of leaf.received) {
    expect(got.headers).toMatchObject({ ...ISTIO, 'end-user': 'jason' });
    expect(got.headers['x-unrelated']).toBeUndefined();
  }
});

test('a request without x-request-id gets a UUID: the handler, inboundRequest() and the outgoing call see the same one', async () => {
  handler = async (req) => {
    const seen = { header: req.headers['x-request-id'], context: inboundRequest()?.requestId };
    await (await mesh.fetch('http://leaf/x')).text();
    return seen;
  };
  const r = await httpRequest(`${front.url}/`);
  const seen = JSON.parse(r.body) as { header: string; context: string };
  expect(seen.header).toMatch(UUID);
  expect(seen.context).toBe(seen.header);
  expect(leaf.received[0]!.headers['x-request-id']).toBe(seen.header);
  // Each request gets its own.
  const again = JSON.parse((await httpRequest(`${front.url}/`)).body) as { header: string };
  expect(again.header).toMatch(UUID);
  expect(again.header).not.toBe(seen.header);
});

test("what the outgoing call sets itself is kept, in each of undici's header shapes", async () => {
  handler = async () => {
    const shapes = [
      ['x-request-id', 'own-flat'],
      [['X-Request-Id', 'own-pairs']],
      new Map([['x-request-id', 'own-map']]),
      { 'X-REQUEST-ID': 'own-object' },
    ];
    for (const headers of shapes) {
      const r = await request('http://leaf/x', { dispatcher: mesh.dispatcher, headers: headers as never });
      await r.body.dump();
    }
  };
  await httpRequest(`${front.url}/`, { headers: ISTIO });
  expect(leaf.received.map((x) => x.headers['x-request-id'])).toEqual(['own-flat', 'own-pairs', 'own-map', 'own-object']);
  for (const got of leaf.received) expect(got.headers.traceparent).toBe(ISTIO.traceparent);
});

test('a route matches a propagated header: the call goes where the caller\'s end-user sends it, without the handler copying it', async () => {
  handler = async () => (await mesh.fetch('http://routed/x')).json();
  const routed = async (headers: Record<string, string>) => (JSON.parse((await httpRequest(`${front.url}/`, { headers })).body) as { backend: string }).backend;
  expect(await routed({ 'end-user': 'jason' })).toBe('canary');
  expect(await routed({ 'end-user': 'someone' })).toBe('leaf');
  expect(await routed({})).toBe('leaf');
});

test('through mesh.agent(), each request of a kept-alive connection carries its own caller\'s context', async () => {
  const agent = mesh.agent();
  const get = (path: string) =>
    new Promise<void>((resolve, reject) => {
      http.get(`http://leaf${path}`, { agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
    });
  handler = async () => {
    await get('/a');
    await get('/b');
  };
  for (const id of ['one', 'two', 'three']) await httpRequest(`${front.url}/`, { headers: { 'x-request-id': id } });
  agent.destroy();
  expect(leaf.received.map((x) => `${x.url}:${x.headers['x-request-id']}`)).toEqual(['/a:one', '/b:one', '/a:two', '/b:two', '/a:three', '/b:three']);
});

test('outside a served request nothing is added', async () => {
  await (await mesh.fetch('http://leaf/x')).text();
  expect(leaf.received[0]!.headers['x-request-id']).toBeUndefined();
  expect(leaf.received[0]!.headers.traceparent).toBeUndefined();
  expect(inboundRequest()).toBeUndefined();
});

test('two requests served at once each keep their own context', async () => {
  let release!: () => void;
  const both = new Promise<void>((resolve) => (release = resolve));
  let arrived = 0;
  handler = async () => {
    if (++arrived === 2) release();
    await both;
    await (await mesh.fetch('http://leaf/x')).text();
  };
  await Promise.all(['p', 'q'].map((id) => httpRequest(`${front.url}/`, { headers: { 'x-request-id': id, 'end-user': `user-${id}` } })));
  expect(leaf.received.map((x) => `${x.headers['x-request-id']}:${x.headers['end-user']}`).sort()).toEqual(['p:user-p', 'q:user-q']);
});
