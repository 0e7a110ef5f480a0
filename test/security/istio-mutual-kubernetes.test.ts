// istio-mutual with the kubernetes discovery: the server's identity is checked against the service
// accounts of the destination's pods, as the pod watch sees them (the Kubernetes API test server),
// and follows them as they change; a connection made before the pod is known waits for it.
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { createMesh, type Mesh } from '../../src/index.js';
import { PeerIdentities } from '../../src/security/istio-mutual.js';
import { slice, startKubeApi, type KubeApiServer } from '../support/kube-apiserver.js';
import { fingerprint, serveMtls, writeAgentFiles, type MtlsServer } from '../support/mtls-server.js';
import { hasOpenssl, Pki, type Pair } from '../support/pki.js';

const ORDERS = 'spiffe://cluster.local/ns/default/sa/orders';

describe.skipIf(!hasOpenssl)('istio-mutual with the kubernetes discovery', () => {
  let pki: Pki;
  let orders: Pair;
  let client: Pair;
  let certDir: string;
  let api: KubeApiServer;
  let server: MtlsServer;
  let mesh: Mesh | null = null;

  beforeAll(() => {
    pki = new Pki();
    orders = pki.issue('orders', [`URI:${ORDERS}`]);
    client = pki.issue('gateway', ['URI:spiffe://cluster.local/ns/default/sa/gateway'], { clientAuth: true });
    certDir = mkdtempSync(join(pki.dir, 'agent-'));
    writeAgentFiles(certDir, client, pki.ca);
  });
  afterAll(() => pki.dispose());

  beforeEach(async () => {
    api = await startKubeApi();
    server = await serveMtls(orders, pki.ca, { closeEach: true });
    api.apply('services', 'default', { metadata: { name: 'orders' }, spec: { selector: { app: 'orders' } } });
    api.apply('endpointslices', 'default', slice('orders-a', 'orders', [{ ip: '127.0.0.1', pod: 'orders-1' }], server.port));
  });

  afterEach(async () => {
    await mesh?.close({ graceMs: 500 });
    mesh = null;
    await api.close();
    await server.close();
  });

  const pod = (serviceAccountName: string) =>
    api.apply('pods', 'default', { metadata: { name: 'orders-1', labels: { app: 'orders' } }, spec: { serviceAccountName, containers: [{ name: 'app' }] } });

  function meshFor(): Mesh {
    mesh = createMesh({
      services: {
        orders: {
          discovery: { type: 'kubernetes', service: 'orders', namespace: 'default', port: 'http', apiServer: api.url },
          tls: { mode: 'istio-mutual', certDir },
          retry: false,
          // The wait for the pod is bounded by the connect timeout: long here, so no machine is too slow.
          pool: { connectTimeoutMs: 60_000 },
        },
      },
      logger: { debug: () => {}, warn: () => {} },
    });
    return mesh;
  }

  const get = async (m: Mesh) => (await request('http://orders.default.svc.cluster.local/', { dispatcher: m.dispatcher })).statusCode;

  test("a connection made before the pod is known waits for its service account, then is accepted", async () => {
    const m = meshFor();
    const handshake = server.nextConnection();
    const answered = get(m);
    await handshake; // the TLS handshake is done; the client now waits for the pod's identity
    pod('orders');
    expect(await answered).toBe(200);
    expect(server.connections).toEqual([{ sni: `outbound_.${server.port}_._.orders.default.svc.cluster.local`, client: fingerprint(client.cert) }]);
    expect(m.stats().services.orders!.endpoints[0]!.failures).toBe(0);
  });

  test("a pod with another service account is refused; the check follows the pod's change", async () => {
    pod('payments');
    const m = meshFor();
    const err = await get(m).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TLS_IDENTITY_MISMATCH' });
    expect((err as Error).message).toContain('expected one of spiffe://cluster.local/ns/default/sa/payments');
    // The pod's new account reaches the endpoint as a discovery update: the next connection is accepted.
    const updated = new Promise((r) => m.on('discovery-update', r));
    pod('orders');
    await updated;
    expect(await get(m)).toBe(200);
  });
});

describe('PeerIdentities', () => {
  afterEach(() => vi.useRealTimers());

  test('waits for the first account, up to its time-out; configured identities ignore the endpoints', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const peers = new PeerIdentities(null);
    const seen: string[][] = [];
    peers.whenKnown(1000, (ids) => seen.push([...ids]));
    peers.setAccounts('cluster.local', [undefined]); // an endpoint whose pod is not known yet
    expect(seen).toEqual([]);
    peers.setAccounts('cluster.local', ['shop/orders', undefined, 'shop/orders']);
    expect(seen).toEqual([['spiffe://cluster.local/ns/shop/sa/orders']]);
    peers.setAccounts('cluster.local', []);
    peers.whenKnown(1000, (ids) => seen.push([...ids]));
    vi.advanceTimersByTime(999);
    expect(seen).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(seen).toEqual([['spiffe://cluster.local/ns/shop/sa/orders'], []]);
    const fixed = new PeerIdentities(['spiffe://td/ns/a/sa/b']);
    fixed.setAccounts('td', ['x/y']);
    expect([...fixed.current]).toEqual(['spiffe://td/ns/a/sa/b']);
  });
});
