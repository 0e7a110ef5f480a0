import { Readable } from 'node:stream';
import { fetch as undiciFetch } from 'undici';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { createMesh, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

let orders: Backend;
let payments: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  orders = await startBackend('orders');
  payments = await startBackend('payments');
  orders.handler = (req, res) => {
    const to: Record<string, [number, string]> = {
      '/same': [302, '/landing'],
      '/other-service': [302, 'http://payments/landing'],
      '/temp-post': [307, '/landing'],
      '/see-other': [303, '/landing'],
    };
    const hop = to[req.url!];
    if (hop) {
      req.resume();
      res.writeHead(hop[0], { location: hop[1] });
      res.end();
      return;
    }
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => res.end(JSON.stringify({ at: 'orders', url: req.url, method: req.method, body, auth: req.headers.authorization ?? null })));
  };
  payments.handler = (req, res) => {
    req.resume();
    res.end(JSON.stringify({ at: 'payments', auth: req.headers.authorization ?? null, cookie: req.headers.cookie ?? null }));
  };
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll([orders, payments]);
});

function meshWith(redirects?: 'same-origin' | 'any'): Mesh {
  mesh = createMesh({
    services: { orders: { endpoints: [orders.url] }, payments: { endpoints: [payments.url] } },
    ...(redirects ? { redirects } : {}),
  });
  return mesh;
}

const creds = { authorization: 'Bearer s3cret-token', cookie: 'session=abc' };

test('a redirect within the same service is followed, credentials kept', async () => {
  const res = await meshWith().fetch('http://orders/same', { headers: creds });
  expect(await res.json()).toMatchObject({ at: 'orders', url: '/landing', auth: 'Bearer s3cret-token' });
});

test('a redirect to another service is not followed by default', async () => {
  const res = await meshWith().fetch('http://orders/other-service', { headers: creds });
  expect(res.status).toBe(302);
  expect(res.headers.get('location')).toBe('http://payments/landing');
  expect(payments.received).toHaveLength(0);
});

test("with redirects: 'any' a cross-origin redirect is followed without the credentials", async () => {
  const res = await meshWith('any').fetch('http://orders/other-service', { headers: creds });
  expect(await res.json()).toEqual({ at: 'payments', auth: null, cookie: null });
});

test('307 resends method and a replayable body; 303 turns a POST into a GET', async () => {
  const m = meshWith();
  const r1 = await m.fetch('http://orders/temp-post', { method: 'POST', body: 'payload' });
  expect(await r1.json()).toMatchObject({ url: '/landing', method: 'POST', body: 'payload' });
  const r2 = await m.fetch('http://orders/see-other', { method: 'POST', body: 'payload' });
  expect(await r2.json()).toMatchObject({ url: '/landing', method: 'GET', body: '' });
});

test('a 307 with a streamed body is returned, never replayed', async () => {
  const m = meshWith();
  const res = await m.fetch('http://orders/temp-post', {
    method: 'POST',
    body: Readable.toWeb(Readable.from([Buffer.from('x')])) as unknown as ReadableStream,
    duplex: 'half',
  } as never);
  expect(res.status).toBe(307);
});

test("the caller's own redirect: 'manual' is honoured", async () => {
  const res = await meshWith().fetch('http://orders/same', { redirect: 'manual' });
  expect(res.status).toBe(302);
});

test('header values with CR/LF are refused with a clear error, never sent, never retried', async () => {
  const m = meshWith();
  const err = await m.fetch('http://orders/x', { headers: { 'x-evil': 'a\r\nInjected: yes' } }).catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  expect(orders.received).toHaveLength(0);
  const { request } = await import('undici');
  const err2 = await request('http://orders/x', { dispatcher: m.dispatcher, headers: { 'x-evil': 'a\r\nb' } }).catch((e: Error) => e);
  // The caller's own mistake: typed, with undici's error as the cause.
  expect(err2).toMatchObject({ code: 'INVALID_REQUEST', service: 'orders', cause: { code: 'UND_ERR_INVALID_ARG' } });
  expect(orders.received).toHaveLength(0);
  expect(m.stats().services.orders!.endpoints[0]!.failures).toBe(0);
});

test('an oversized response header block fails the request with a clear error', async () => {
  orders.handler = (_req, res) => {
    res.writeHead(200, { 'x-big': 'a'.repeat(20_000) });
    res.end();
  };
  const { request } = await import('undici');
  const err = await request('http://orders/x', { dispatcher: meshWith().dispatcher }).catch((e: Error) => e);
  expect(err).toMatchObject({ code: 'UPSTREAM_FAILED', service: 'orders', cause: { code: 'UND_ERR_HEADERS_OVERFLOW' } });
});

test("fetch through mesh.dispatcher follows a service's redirect to any host by default; unknownHosts: { passthrough } refuses it", async () => {
  const outside = await startBackend('outside'); // a loopback server that is no service
  orders.handler = (req, res) => {
    req.resume();
    res.writeHead(302, { location: `${outside.url}/landing` });
    res.end();
  };
  const open = createMesh({ services: { orders: { endpoints: [orders.url] } } });
  const listed = createMesh({ services: { orders: { endpoints: [orders.url] } }, unknownHosts: { passthrough: ['api.stripe.com', '.example.org'] }, redirects: 'any' });
  try {
    // What the README warns about: global-style fetch follows the redirect out of the mesh.
    const followed = await undiciFetch('http://orders/go', { dispatcher: open.dispatcher });
    expect(await followed.json()).toMatchObject({ backend: 'outside', url: '/landing' });
    expect(outside.received).toHaveLength(1);

    const refused = await undiciFetch('http://orders/go', { dispatcher: listed.dispatcher }).catch((e: Error) => e);
    expect(refused).toBeInstanceOf(TypeError);
    expect((refused as Error).cause).toMatchObject({ code: 'UNKNOWN_SERVICE', service: `127.0.0.1:${outside.port}` });
    const viaNode = await fetch('http://orders/go', { dispatcher: listed.dispatcher } as RequestInit).catch((e: Error) => e);
    expect((viaNode as Error).cause).toMatchObject({ code: 'UNKNOWN_SERVICE' });
    const viaMesh = await listed.fetch('http://orders/go').catch((e: Error) => e);
    expect((viaMesh as Error).cause).toMatchObject({ code: 'UNKNOWN_SERVICE' });
    expect(outside.received, 'the refused hops never reached the outside server').toHaveLength(1);
    expect(orders.received).toHaveLength(4);
  } finally {
    await Promise.all([open.close(), listed.close(), outside.close()]);
  }
});
