import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request, fetch as undiciFetch, setGlobalDispatcher, getGlobalDispatcher, Agent, Client } from 'undici';
import { createMesh, isMeshError, type Mesh, type MeshConfig } from '../../src/index.js';
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

  test('a legacy-shape handler (onConnect, onHeaders, onData, onComplete, onError) dispatched directly gets the response, raw headers, and a MeshError once closed', async () => {
    const legacy = (path: string) =>
      new Promise<{ status: number; raw: string[]; body: string; error?: unknown }>((resolve) => {
        let status = 0;
        let raw: string[] = [];
        const chunks: Buffer[] = [];
        mesh.dispatcher.dispatch({ origin: 'http://orders', path, method: 'GET' }, {
          onConnect: () => {},
          onHeaders: (s: number, headers: Buffer[]) => ((status = s), (raw = headers.map(String)), true),
          onData: (chunk: Buffer) => (chunks.push(chunk), true),
          onComplete: () => resolve({ status, raw, body: Buffer.concat(chunks).toString() }),
          onError: (error: Error) => resolve({ status, raw, body: '', error }),
        } as never);
      });
    const ok = await legacy('/legacy');
    expect(ok.status).toBe(200);
    expect(ok.raw.map((x) => x.toLowerCase())).toContain('content-type');
    expect((JSON.parse(ok.body) as { url: string }).url).toBe('/legacy');
    await mesh.close();
    const closed = await legacy('/after');
    expect(isMeshError(closed.error) && closed.error.code).toBe('MESH_CLOSED');
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

/** The error a request through `m` fails with, or null when it got a response. */
async function failure(m: Mesh, url: string): Promise<{ code?: string; service?: string } | null> {
  try {
    const res = await request(url, { dispatcher: m.dispatcher });
    await res.body.dump();
    return null;
  } catch (err) {
    return err as { code?: string; service?: string };
  }
}

describe('which hosts address a service: its name, its hosts, and Kubernetes forms in its namespaces only', () => {
  const meshes: Mesh[] = [];
  const make = (config: MeshConfig): Mesh => {
    const m = createMesh({ unknownHosts: 'reject', logger: { warn() {} }, ...config });
    meshes.push(m);
    return m;
  };
  afterEach(async () => {
    await Promise.all(meshes.splice(0).map((m) => m.close({ graceMs: 0 })));
  });

  test("a service's namespaces give it name.ns, name.ns.svc and name.ns.svc.cluster.local; other namespaces and domains are unknown hosts", async () => {
    const m = make({ services: { orders: { endpoints: [backends[0]!.url], namespaces: ['shop'] } } });
    for (const host of ['orders', 'ORDERS', 'orders.', 'orders.shop', 'orders.shop.svc', 'Orders.Shop.Svc.Cluster.Local.', 'orders.shop:8080']) {
      expect(await failure(m, `http://${host}/k`), host).toBeNull();
    }
    expect(backends[0]!.received).toHaveLength(7);
    for (const host of ['orders.com', 'orders.evil', 'orders.prod.svc', 'orders.shop.svc.cluster.evil', 'orders.shop.example', 'orders.svc.cluster.local', 'x.orders.shop']) {
      expect(await failure(m, `http://${host}/k`), host).toMatchObject({ code: 'UNKNOWN_SERVICE', service: host });
      expect(m.dispatcher.lookup(host), host).toBeNull();
    }
    expect(backends[0]!.received).toHaveLength(7);
  });

  test('without namespaces, only the name and hosts address a service; the mesh-level namespace and clusterDomain are the defaults', async () => {
    const m = make({ services: { orders: { endpoints: [backends[0]!.url], hosts: ['orders.internal.example'] } } });
    expect(m.dispatcher.lookup('orders')).not.toBeNull();
    expect(m.dispatcher.lookup('orders.internal.example')).not.toBeNull();
    expect(m.dispatcher.lookup('orders.shop')).toBeNull();
    expect(m.dispatcher.lookup('orders.internal.example.svc')).toBeNull();

    const corp = make({
      namespace: 'shop',
      clusterDomain: 'corp.internal',
      services: { orders: { endpoints: [backends[0]!.url] }, billing: { endpoints: [backends[1]!.url], namespaces: ['finance', 'audit'] } },
    });
    expect(await failure(corp, 'http://orders.shop.svc.corp.internal/x')).toBeNull();
    expect(backends[0]!.received).toHaveLength(1);
    expect(corp.dispatcher.lookup('orders.shop.svc.cluster.local')).toBeNull();
    for (const host of ['billing.finance', 'billing.audit.svc.corp.internal']) expect(corp.dispatcher.lookup(host), host).not.toBeNull();
    expect(corp.dispatcher.lookup('billing.shop'), 'an explicit list replaces the mesh default').toBeNull();
  });

  test("a service is known in its discovery's namespace: Kubernetes discovery's (given, or 'default'), or a custom source's namespace()", () => {
    const k8s = (namespace?: string) => ({ type: 'kubernetes' as const, service: 'orders-v2', port: 80, apiServer: 'http://127.0.0.1:9', ...(namespace ? { namespace } : {}) });
    const m = make({
      discoveries: { 'in-ops': { create: (_o, ctx) => (ctx.update([]), { stop() {} }), namespace: () => 'ops' } },
      services: {
        orders: { discovery: k8s('shop'), readyTimeoutMs: 0, namespaces: ['staging'] },
        stock: { discovery: k8s(), readyTimeoutMs: 0 },
        tools: { discovery: { type: 'in-ops' } as never }, // a type registered for this mesh only, not declared in CustomDiscoveries
      },
    });
    for (const host of ['orders.shop', 'orders.shop.svc.cluster.local', 'orders.staging.svc', 'stock.default.svc', 'tools.ops']) expect(m.dispatcher.lookup(host), host).not.toBeNull();
    for (const host of ['orders.default', 'stock.shop', 'tools.default']) expect(m.dispatcher.lookup(host), host).toBeNull();
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

describe('unknownHosts: { passthrough: [...] } lets listed hosts out and refuses the rest', () => {
  test('a listed host goes out through the Agent; an unlisted one fails with UNKNOWN_SERVICE and is never contacted', async () => {
    const other = await startBackend('other');
    const listed = createMesh({ services: { orders: { endpoints: [backends[0]!.url] } }, unknownHosts: { passthrough: ['api.stripe.com', '127.0.0.1'] } });
    const unlisted = createMesh({ services: { orders: { endpoints: [backends[0]!.url] } }, unknownHosts: { passthrough: ['api.stripe.com', '.example.org'] } });
    try {
      const res = await request(`${other.url}/out`, { dispatcher: listed.dispatcher });
      expect(((await res.body.json()) as { backend: string }).backend).toBe('other');
      const err = await failure(unlisted, `${other.url}/out`);
      expect(err).toMatchObject({ code: 'UNKNOWN_SERVICE', service: `127.0.0.1:${other.port}` });
      expect((err as Error).message).toMatch(/not a configured service, and unknownHosts does not let it pass through/);
      expect(other.received.map((r) => r.url)).toEqual(['/out']);
      // Services are routed as before.
      expect(await failure(unlisted, 'http://orders/in')).toBeNull();
    } finally {
      await Promise.all([listed.close(), unlisted.close(), other.close()]);
    }
  });
});
