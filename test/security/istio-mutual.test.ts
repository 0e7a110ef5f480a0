// tls: { mode: 'istio-mutual' } against real https servers that require a client certificate: the
// files istio-agent writes (made here, in a temp dir, by test/support/pki.ts), Envoy's SNI, the
// server's SPIFFE ID checked against the endpoints' service accounts, rotation, missing files.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { createMesh, type Mesh, type ServiceConfig, type TlsConfig } from '../../src/index.js';
import { fingerprint, serveMtls, writeAgentFiles, type MtlsServer } from '../support/mtls-server.js';
import { hasOpenssl, Pki, type Pair } from '../support/pki.js';

if (!hasOpenssl) console.warn('skipping the istio-mutual tests: the openssl CLI is not installed');

describe.skipIf(!hasOpenssl)('tls: istio-mutual', () => {
  let pki: Pki;
  let orders: Pair;
  let client: Pair;
  let certDir: string;
  let n = 0;
  const servers: MtlsServer[] = [];
  const meshes: Mesh[] = [];
  const logs: string[] = [];

  beforeAll(() => {
    pki = new Pki();
    orders = pki.issue('orders', ['URI:spiffe://cluster.local/ns/shop/sa/orders']);
    client = pki.issue('gateway', ['URI:spiffe://cluster.local/ns/shop/sa/gateway'], { clientAuth: true });
  });

  afterEach(async () => {
    vi.useRealTimers();
    await Promise.all(meshes.splice(0).map((m) => m.close({ graceMs: 1000 })));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  afterAll(() => pki.dispose());

  async function server(opts: { closeEach?: boolean } = {}): Promise<MtlsServer> {
    const s = await serveMtls(orders, pki.ca, opts);
    servers.push(s);
    return s;
  }

  /** A fresh certDir with istio-agent's files (or none). */
  function agentDir(write = true): string {
    certDir = join(pki.dir, `agent-${n++}`);
    if (write) writeAgentFiles(certDir, client, pki.ca);
    else mkdirSync(certDir, { recursive: true });
    return certDir;
  }

  function meshFor(endpoint: string | { url: string; serviceAccount?: string }, service: Partial<ServiceConfig>): Mesh {
    const m = createMesh({
      services: { orders: { endpoints: [endpoint], namespaces: ['shop'], retry: false, ...service } as ServiceConfig },
      logger: { debug: () => {}, warn: (msg: string, ...a: unknown[]) => logs.push([msg, ...a].join(' ')) },
    });
    meshes.push(m);
    return m;
  }

  const get = async (m: Mesh) => {
    const res = await request('http://orders.shop.svc.cluster.local/x', { dispatcher: m.dispatcher });
    return { status: res.statusCode, body: await res.body.json() };
  };

  test("mutual TLS with istio-agent's files; Envoy's SNI; the endpoint's service account accepted", async () => {
    const s = await server();
    const m = meshFor({ url: s.url, serviceAccount: 'shop/orders' }, { tls: { mode: 'istio-mutual', certDir: agentDir() } });
    expect(await get(m)).toEqual({ status: 200, body: { host: 'orders.shop.svc.cluster.local' } });
    expect(s.connections).toEqual([{ sni: `outbound_.${s.port}_._.orders.shop.svc.cluster.local`, client: fingerprint(client.cert) }]);
  });

  test('the Service port and an explicit SNI', async () => {
    const s = await server();
    const m = meshFor({ url: s.url, serviceAccount: 'shop/orders' }, { tls: { mode: 'istio-mutual', certDir: agentDir(), port: 9080 } });
    await get(m);
    const e = meshFor({ url: s.url, serviceAccount: 'shop/orders' }, { tls: { mode: 'istio-mutual', certDir: certDir, servername: 'orders.example' } });
    await get(e);
    expect(s.connections.map((c) => c.sni)).toEqual(['outbound_.9080_._.orders.shop.svc.cluster.local', 'orders.example']);
  });

  test('a server with another service account is refused with TLS_IDENTITY_MISMATCH, counted against it', async () => {
    const s = await server();
    const m = meshFor({ url: s.url, serviceAccount: 'shop/payments' }, { tls: { mode: 'istio-mutual', certDir: agentDir() } });
    const err = await get(m).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TLS_IDENTITY_MISMATCH', service: 'orders', endpoint: s.url, attempts: expect.any(Number) });
    expect((err as Error).message).toContain('spiffe://cluster.local/ns/shop/sa/orders');
    expect((err as Error).message).toContain('spiffe://cluster.local/ns/shop/sa/payments');
    expect(m.stats().services.orders!.endpoints[0]!.failures).toBe(1);
  });

  test('only a URI SAN is an identity: a DNS name that equals a configured one does not pass', async () => {
    const dnsOnly = await serveMtls(pki.issue('dns-only', ['DNS:orders.shop']), pki.ca);
    servers.push(dnsOnly);
    const m = meshFor(dnsOnly.url, { tls: { mode: 'istio-mutual', certDir: agentDir(), subjectAltNames: ['orders.shop'] } });
    const err = await get(m).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TLS_IDENTITY_MISMATCH' });
    expect((err as Error).message).toContain('names no URI SAN (SPIFFE ID); expected one of orders.shop');
  });

  test('the trust domain is part of the identity', async () => {
    const s = await server();
    const m = meshFor({ url: s.url, serviceAccount: 'shop/orders' }, { tls: { mode: 'istio-mutual', certDir: agentDir(), trustDomain: 'prod.example' } });
    expect(await get(m).catch((e: { code?: string }) => e.code)).toBe('TLS_IDENTITY_MISMATCH');
  });

  test("configured serviceAccounts or subjectAltNames replace the endpoints' accounts", async () => {
    const s = await server();
    const dir = agentDir();
    const byAccount = meshFor({ url: s.url, serviceAccount: 'shop/payments' }, { tls: { mode: 'istio-mutual', certDir: dir, serviceAccounts: ['shop/orders'] } });
    expect((await get(byAccount)).status).toBe(200);
    const bySan = meshFor(s.url, { tls: { mode: 'istio-mutual', certDir: dir, subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/orders'] } });
    expect((await get(bySan)).status).toBe(200);
    const wrong = meshFor({ url: s.url, serviceAccount: 'shop/orders' }, { tls: { mode: 'istio-mutual', certDir: dir, serviceAccounts: ['shop/payments'] } });
    expect(await get(wrong).catch((e: { code?: string }) => e.code)).toBe('TLS_IDENTITY_MISMATCH');
  });

  test('a rotated certificate chain is used by the next connection, with no failed request', async () => {
    const s = await server({ closeEach: true });
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const dir = agentDir();
    const m = meshFor({ url: s.url, serviceAccount: 'shop/orders' }, { tls: { mode: 'istio-mutual', certDir: dir, reloadIntervalMs: 50 } });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await get(m)).status);
    const next = pki.issue('gateway-2', ['URI:spiffe://cluster.local/ns/shop/sa/gateway'], { clientAuth: true });
    writeAgentFiles(dir, next, pki.ca);
    vi.advanceTimersByTime(50); // one reload
    for (let i = 0; i < 3; i++) statuses.push((await get(m)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    expect(s.connections.map((c) => c.client)).toEqual([...Array(3).fill(fingerprint(client.cert)), ...Array(3).fill(fingerprint(next.cert))]);
  });

  test('root-cert.pem caught half-written or emptied by a rotation: the current root kept, warned once each; the whole new one taken', async () => {
    const s = await server({ closeEach: true }); // every request a new connection, with the material of the moment
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const dir = agentDir();
    const m = meshFor({ url: s.url, serviceAccount: 'shop/orders' }, { tls: { mode: 'istio-mutual', certDir: dir, reloadIntervalMs: 50 } });
    const next = new Pki(); // the mesh's new root, next to the old one in the new root-cert.pem
    const bundle = next.ca.cert + pki.ca.cert;
    const from = logs.length;
    const keeping = (): string[] => logs.slice(from).filter((w) => w.includes('keeping the current certificates'));
    const statuses: number[] = [];
    try {
      statuses.push((await get(m)).status);
      writeFileSync(join(dir, 'root-cert.pem'), bundle.slice(0, next.ca.cert.length >> 1));
      vi.advanceTimersByTime(200); // four reloads of the same half-written file
      for (let i = 0; i < 3; i++) statuses.push((await get(m)).status);
      expect(keeping()).toEqual([expect.stringContaining('the CA bundle ends inside a PEM block (begun at line 1): cut short, or still being written')]);
      writeFileSync(join(dir, 'root-cert.pem'), '');
      vi.advanceTimersByTime(200);
      for (let i = 0; i < 3; i++) statuses.push((await get(m)).status);
      expect(keeping()).toHaveLength(2);
      expect(keeping()[1]).toContain('the CA bundle is empty');
      expect(statuses).toEqual(Array(7).fill(200));
      writeFileSync(join(dir, 'root-cert.pem'), bundle);
      vi.advanceTimersByTime(50); // one reload: the whole new root-cert.pem is taken
      s.present(next.issue('orders-next', ['URI:spiffe://cluster.local/ns/shop/sa/orders'])); // signed by the new root only
      expect((await get(m)).status).toBe(200);
      expect(keeping()).toHaveLength(2);
    } finally {
      next.dispose();
    }
  });

  test('a root-cert.pem half-written at start-up is no certificate yet: TLS_CERTIFICATES_UNAVAILABLE, then the whole file is used', async () => {
    const s = await server();
    const dir = agentDir();
    writeFileSync(join(dir, 'root-cert.pem'), pki.ca.cert.slice(0, pki.ca.cert.length >> 1));
    const m = meshFor({ url: s.url, serviceAccount: 'shop/orders' }, { tls: { mode: 'istio-mutual', certDir: dir } });
    expect(logs.at(-1)).toMatch(/tls: no certificates yet \(.*: the CA bundle ends inside a PEM block/);
    expect(await get(m).catch((e: { code?: string }) => e.code)).toBe('TLS_CERTIFICATES_UNAVAILABLE');
    expect(s.connections).toEqual([]);
    writeFileSync(join(dir, 'root-cert.pem'), pki.ca.cert);
    expect((await get(m)).status).toBe(200); // a new connection re-reads the files while there are none
  });

  test('files istio-agent has not written yet: logged, requests fail with TLS_CERTIFICATES_UNAVAILABLE blaming no endpoint, and work once they appear', async () => {
    const s = await server();
    const dir = agentDir(false);
    const m = meshFor({ url: s.url, serviceAccount: 'shop/orders' }, { tls: { mode: 'istio-mutual', certDir: dir } });
    expect(logs.at(-1)).toContain(`tls: no certificates yet (${join(dir, 'cert-chain.pem')}, ${join(dir, 'key.pem')}, ${join(dir, 'root-cert.pem')}: ENOENT`);
    const err = await get(m).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TLS_CERTIFICATES_UNAVAILABLE', service: 'orders' });
    expect(m.stats().services.orders!.endpoints[0]!.failures).toBe(0);
    expect(s.connections).toEqual([]);
    writeAgentFiles(dir, client, pki.ca);
    // No timer needed: a new connection re-reads the files while there are none.
    expect((await get(m)).status).toBe(200);
    expect(logs.at(-1)).toMatch(/tls: certificates available; connections can be made$/);
  });

  test('bad istio-mutual config fails at createMesh with the path', () => {
    // Typed too: settings of your own certificates are not istio-mutual's, and the mode is spelled one way.
    // @ts-expect-error insecureSkipVerify is no istio-mutual setting
    const skip: TlsConfig = { mode: 'istio-mutual', insecureSkipVerify: true };
    // @ts-expect-error the mode is 'istio-mutual'
    const upper: TlsConfig = { mode: 'ISTIO_MUTUAL' };
    expect([skip, upper]).toHaveLength(2);
    const svc = (tls: unknown, endpoint: unknown = { url: 'https://127.0.0.1:1', serviceAccount: 'shop/orders' }) => () =>
      createMesh({ services: { orders: { endpoints: [endpoint], tls } } } as never);
    expect(svc({ mode: 'ISTIO_MUTUAL' })).toThrowError(/services\.orders\.tls\.mode: expected "istio-mutual"/);
    expect(svc({ mode: 'istio-mutual', insecureSkipVerify: true })).toThrowError(/services\.orders\.tls\.insecureSkipVerify: unknown/);
    expect(svc({ mode: 'istio-mutual', cert: client.cert })).toThrowError(/services\.orders\.tls\.cert: istio-mutual reads the files/);
    expect(svc({ mode: 'istio-mutual', serviceAccounts: ['orders'] })).toThrowError(/services\.orders\.tls\.serviceAccounts\[0\]: expected "<namespace>\/<service account>"/);
    expect(svc({ mode: 'istio-mutual', trustDomain: 'Not A Domain' })).toThrowError(/services\.orders\.tls\.trustDomain/);
    expect(svc({ mode: 'istio-mutual', port: 0 })).toThrowError(/services\.orders\.tls\.port/);
    expect(svc({ mode: 'istio-mutual' }, 'https://127.0.0.1:1')).toThrowError(/services\.orders\.tls: istio-mutual needs the destination's identities/);
    expect(svc({ mode: 'istio-mutual' }, { url: 'https://127.0.0.1:1', serviceAccount: 'orders' })).toThrowError(/services\.orders\.endpoints\[0\]\.serviceAccount/);
  });

  test('toJSON writes the config back, defaults left out', () => {
    const m = createMesh({
      services: {
        orders: { endpoints: [{ url: 'https://127.0.0.1:1', serviceAccount: 'shop/orders' }], tls: { mode: 'istio-mutual', certDir: '/certs', ca: '/roots/root.pem', port: 9080 } },
      },
    });
    meshes.push(m);
    const svc = (m.toJSON() as unknown as { services: { orders: { tls: unknown; discovery: { endpoints: unknown } } } }).services.orders;
    expect(svc.tls).toEqual({ mode: 'istio-mutual', certDir: '/certs', ca: '/roots/root.pem', trustDomain: 'cluster.local', port: 9080, minVersion: 'TLSv1.2', reloadIntervalMs: 5000 });
    expect(svc.discovery.endpoints).toEqual([{ url: 'https://127.0.0.1:1', weight: 1, labels: {}, priority: 0, serviceAccount: 'shop/orders' }]);
  });

  test('the default certDir is istio-agent\'s proxyless output, /var/lib/istio/data', () => {
    const m = createMesh({ services: { orders: { endpoints: [{ url: 'https://127.0.0.1:1', serviceAccount: 'shop/orders' }], tls: { mode: 'istio-mutual' } } }, logger: { debug: () => {}, warn: (s: string) => logs.push(s) } });
    meshes.push(m);
    expect(logs.at(-1)).toContain('/var/lib/istio/data/cert-chain.pem, /var/lib/istio/data/key.pem, /var/lib/istio/data/root-cert.pem');
  });

  test('no private key material appears in anything logged', () => {
    for (const k of [client.key, orders.key, pki.ca.key]) expect(logs.join('\n')).not.toContain(k.split('\n')[1]!);
  });
});
