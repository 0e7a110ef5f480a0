import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request, fetch as undiciFetch, setGlobalDispatcher, getGlobalDispatcher, Agent, Client } from 'undici';
import { createMesh, isMeshError, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, startBackend, type Backend } from '../support/backend.js';

let backends: Backend[];
let mesh: Mesh;

beforeEach(async () => {
  backends = await startBackends(3);
  mesh = createMesh({
    services: { orders: { endpoints: backends.map((b) => b.url), balancer: 'round-robin' } },
  });
});

afterEach(async () => {
  await mesh.close();
  await closeAll(backends);
});

describe('request paths through the mesh', () => {
  test('mesh.fetch reaches every replica and keeps the logical Host header', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await mesh.fetch('http://orders/api/orders/42?x=1');
      expect(res.status).toBe(200);
      const body = (await res.json()) as { backend: string; url: string; host: string };
      expect(body.url).toBe('/api/orders/42?x=1');
      expect(body.host).toBe('orders');
      seen.add(body.backend);
    }
    expect([...seen].sort()).toEqual(['b0', 'b1', 'b2']);
  });

  test("Node's global fetch with { dispatcher } works (legacy handler shape)", async () => {
    const res = await fetch('http://orders/a', { dispatcher: mesh.dispatcher } as RequestInit);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { host: string }).host).toBe('orders');
  });

  test("undici's fetch and request with { dispatcher } work", async () => {
    const r1 = await undiciFetch('http://orders/b', { dispatcher: mesh.dispatcher });
    expect(r1.status).toBe(200);
    await r1.arrayBuffer();
    const r2 = await request('http://orders/c', { dispatcher: mesh.dispatcher, method: 'POST', body: 'hi' });
    expect(r2.statusCode).toBe(200);
    expect(((await r2.body.json()) as { method: string }).method).toBe('POST');
  });

  test('setGlobalDispatcher routes undici.request and the global fetch', async () => {
    const previous = getGlobalDispatcher();
    setGlobalDispatcher(mesh.dispatcher);
    try {
      const r1 = await request('http://orders/d');
      expect(r1.statusCode).toBe(200);
      await r1.body.dump();
      const r2 = await fetch('http://orders/e');
      expect(r2.status).toBe(200);
      await r2.arrayBuffer();
    } finally {
      setGlobalDispatcher(previous);
    }
  });

  test('Kubernetes host forms address the service', async () => {
    for (const host of ['orders.shop', 'orders.shop.svc', 'orders.shop.svc.cluster.local', 'ORDERS']) {
      const res = await mesh.fetch(`http://${host}/k`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
  });

  test('unknown hosts pass through to an ordinary Agent by default', async () => {
    const other = await startBackend('other');
    try {
      const res = await mesh.fetch(`${other.url}/direct`);
      expect(((await res.json()) as { backend: string }).backend).toBe('other');
    } finally {
      await other.close();
    }
  });

  test('unknown hosts are refused with UNKNOWN_SERVICE when configured', async () => {
    const strict = createMesh({ services: { orders: { endpoints: [backends[0]!.url] } }, unknownHosts: 'reject' });
    try {
      const err = await request('http://payments/x', { dispatcher: strict.dispatcher }).catch((e: unknown) => e);
      expect(isMeshError(err)).toBe(true);
      expect((err as { code: string }).code).toBe('UNKNOWN_SERVICE');
      const ferr = await strict.fetch('http://payments:8080/x').catch((e: Error) => e);
      expect((ferr as Error & { cause: { code: string } }).cause.code).toBe('UNKNOWN_SERVICE');
    } finally {
      await strict.close();
    }
  });

  test('after close, requests fail with MESH_CLOSED and close is idempotent', async () => {
    await mesh.close();
    await mesh.close();
    const err = await request('http://orders/x', { dispatcher: mesh.dispatcher }).catch((e: unknown) => e);
    expect((err as { code: string }).code).toBe('MESH_CLOSED');
  });

  test('a plain Agent is unaffected (control)', async () => {
    const agent = new Agent();
    const r = await request(`${backends[0]!.url}/x`, { dispatcher: agent });
    expect(r.statusCode).toBe(200);
    await r.body.dump();
    await agent.close();
  });
});

describe('requests routed to a service: origin-form paths only', () => {
  test('an absolute-form path is refused with INVALID_REQUEST before any endpoint is contacted', async () => {
    const target = `${backends[1]!.url}/admin`;
    // The control: undici sends an absolute-form path as given, and a server sees it.
    const direct = new Client(backends[0]!.url);
    await (await direct.request({ path: target, method: 'GET' })).body.dump();
    await direct.close();
    expect(backends[0]!.received.map((r) => r.url)).toEqual([target]);

    const err = await mesh.dispatcher.request({ origin: 'http://orders', path: target, method: 'GET' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_REQUEST', service: 'orders', attempts: 0 });
    expect((err as Error).message).not.toContain(target);
    const authority = await mesh.dispatcher.connect({ origin: 'http://orders', path: '127.0.0.1:9' }).catch((e: unknown) => e);
    expect(authority).toMatchObject({ code: 'INVALID_REQUEST', service: 'orders' });
    const star = await mesh.dispatcher.request({ origin: 'http://orders', path: '*', method: 'OPTIONS' }).catch((e: unknown) => e);
    expect(star).toMatchObject({ code: 'INVALID_REQUEST', service: 'orders' });
    expect(backends.map((b) => b.received.length)).toEqual([1, 0, 0]);
    expect(mesh.stats().services.orders!.endpoints.map((e) => e.failures)).toEqual([0, 0, 0]);
  });
});
