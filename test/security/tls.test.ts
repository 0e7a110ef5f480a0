import { createHash } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type ServiceConfig, type MeshEventName } from '../../src/index.js';
import { hasOpenssl, Pki, type Pair } from '../support/pki.js';

if (!hasOpenssl) console.warn('skipping the TLS tests: the openssl CLI is not installed');

const ORDERS_ID = 'spiffe://cluster.local/ns/shop/sa/orders';

interface Server {
  url: string;
  close(): Promise<void>;
  /** SHA-256 of the client certificate presented on each connection (or 'none'). */
  clientCerts: string[];
  /** Connections open now. */
  open(): number;
  /** Settles once every connection made so far has closed. */
  allClosed(): Promise<void>;
  /** Present another certificate from the next connection on. */
  present(pair: Pair): void;
}

async function serve(pair: Pair, ca: Pair, opts: { requireClientCert?: boolean; closeEach?: boolean } = {}): Promise<Server> {
  const clientCerts: string[] = [];
  const server = https.createServer(
    { cert: pair.cert, key: pair.key, ca: ca.cert, requestCert: opts.requireClientCert ?? false, rejectUnauthorized: opts.requireClientCert ?? false },
    (req, res) => {
      res.writeHead(200, opts.closeEach ? { connection: 'close' } : {});
      res.end(JSON.stringify({ host: req.headers.host }));
    },
  );
  const closed: Promise<void>[] = [];
  let open = 0;
  server.on('connection', (socket: Socket) => {
    open++;
    closed.push(new Promise((r) => socket.once('close', () => (open--, r()))));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const peer = socket.getPeerCertificate();
    clientCerts.push(peer && peer.raw ? createHash('sha256').update(peer.raw).digest('hex') : 'none');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    clientCerts,
    open: () => open,
    allClosed: () => Promise.all(closed).then(() => {}),
    present: (p) => server.setSecureContext({ cert: p.cert, key: p.key, ca: ca.cert }),
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe.skipIf(!hasOpenssl)('TLS and mutual TLS to endpoints', () => {
  let pki: Pki;
  let server: Pair;
  let client: Pair;
  let expired: Pair;
  const servers: Server[] = [];
  const meshes: Mesh[] = [];
  const logs: string[] = [];
  /** The warnings alone (logs has the debug lines and events too). */
  const warnings: string[] = [];

  beforeAll(() => {
    pki = new Pki();
    server = pki.issue('orders', ['DNS:orders', 'DNS:localhost', 'IP:127.0.0.1', `URI:${ORDERS_ID}`]);
    client = pki.issue('gateway', [`URI:spiffe://cluster.local/ns/shop/sa/gateway`], { clientAuth: true });
    expired = pki.issue('old', ['DNS:orders', 'IP:127.0.0.1'], { days: -1 });
  });

  afterEach(async () => {
    vi.useRealTimers();
    warnings.length = 0;
    await Promise.all(meshes.splice(0).map((m) => m.close({ graceMs: 1000 })));
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  afterAll(() => pki.dispose());

  function meshFor(url: string, service: Partial<ServiceConfig>): Mesh {
    const events: MeshEventName[] = ['ejection', 'retry', 'circuit', 'discovery-error'];
    const m = createMesh({
      services: { orders: { endpoints: [url], retry: false, ...service } },
      logger: { debug: (msg: string, ...a: unknown[]) => logs.push([msg, ...a].join(' ')), warn: (msg: string, ...a: unknown[]) => (logs.push([msg, ...a].join(' ')), warnings.push(msg)) },
    });
    for (const e of events) m.on(e, (p) => logs.push(JSON.stringify(p)));
    meshes.push(m);
    return m;
  }

  const get = async (m: Mesh) => {
    const res = await request('http://orders/x', { dispatcher: m.dispatcher });
    return { status: res.statusCode, body: (await res.body.json()) as { host: string } };
  };

  test('an https endpoint verified against a custom CA; the Host header keeps the service name', async () => {
    const s = await serve(server, pki.ca);
    servers.push(s);
    const m = meshFor(s.url, { tls: { ca: pki.ca.certPath } });
    expect(await get(m)).toEqual({ status: 200, body: { host: 'orders' } });
  });

  test('requests alternating between two Hosts (a rewritten authority) keep their TLS connections: one per Host, not one per switch', async () => {
    const s = await serve(server, pki.ca);
    servers.push(s);
    const m = meshFor(s.url, {
      tls: { ca: pki.ca.certPath },
      pool: { connections: 1 },
      routes: [{ match: [{ uri: { prefix: '/rw' } }], rewrite: { authority: 'other.example' } }, {}],
    });
    const hosts: string[] = [];
    for (const path of ['/a', '/rw', '/b', '/rw', '/c']) {
      const res = await request(`http://orders${path}`, { dispatcher: m.dispatcher });
      hosts.push(((await res.body.json()) as { host: string }).host);
    }
    expect(hosts).toEqual(['orders', 'other.example', 'orders', 'other.example', 'orders']);
    // undici reconnects an https pool whenever a request's Host (its server name) changes: 5 here.
    expect(s.clientCerts).toHaveLength(2);
  });

  test('more Hosts than an endpoint keeps pools for still get their own Host (orders:443 too, which an https URL would write as orders); close ends every connection of every pool', async () => {
    const s = await serve(server, pki.ca);
    servers.push(s);
    const m = meshFor(s.url, { tls: { ca: pki.ca.certPath } });
    const hosts: string[] = [];
    const expected: string[] = [];
    for (const port of [443, ...Array.from({ length: 12 }, (_, i) => 8001 + i)]) {
      const res = await request(`http://orders:${port}/`, { dispatcher: m.dispatcher });
      hosts.push(((await res.body.json()) as { host: string }).host);
      expected.push(`orders:${port}`);
    }
    expect(hosts).toEqual(expected);
    expect(s.open()).toBeGreaterThan(1);
    await m.close({ graceMs: 1000 });
    await s.allClosed();
    expect(s.open()).toBe(0);
  });

  test('without the CA the endpoint is not trusted', async () => {
    const s = await serve(server, pki.ca);
    servers.push(s);
    const m = meshFor(s.url, {});
    const err = await get(m).catch((e: { code?: string; cause?: { code?: string } }) => e);
    expect(err).toMatchObject({ code: 'UPSTREAM_FAILED', kind: 'connect-failure' });
    expect(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN']).toContain((err as { cause: { code: string } }).cause.code);
  });

  test('plain addresses from discovery are upgraded to TLS when the service sets tls', async () => {
    const s = await serve(server, pki.ca);
    servers.push(s);
    const m = meshFor(s.url.replace('https:', 'http:'), { tls: { ca: pki.ca.cert } });
    expect((await get(m)).status).toBe(200);
    expect(m.stats().services.orders!.endpoints[0]!.url).toBe(s.url);
  });

  test('mutual TLS: the server requires and checks the client certificate', async () => {
    const s = await serve(server, pki.ca, { requireClientCert: true });
    servers.push(s);
    const withCert = meshFor(s.url, { tls: { ca: pki.ca.certPath, cert: client.certPath, key: client.keyPath } });
    expect((await get(withCert)).status).toBe(200);
    const fingerprint = createHash('sha256').update(Buffer.from(client.cert.split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64')).digest('hex');
    expect(s.clientCerts).toContain(fingerprint);
    const without = meshFor(s.url, { tls: { ca: pki.ca.certPath } });
    expect(await get(without).catch(() => 'refused')).toBe('refused');
  });

  test('subjectAltNames: a matching SPIFFE identity is accepted', async () => {
    const s = await serve(server, pki.ca);
    servers.push(s);
    const m = meshFor(s.url, { tls: { ca: pki.ca.certPath, subjectAltNames: [ORDERS_ID] } });
    expect((await get(m)).status).toBe(200);
  });

  test('subjectAltNames: a mismatch fails with TLS_IDENTITY_MISMATCH and counts against the endpoint', async () => {
    const s = await serve(server, pki.ca);
    servers.push(s);
    const m = meshFor(s.url, { tls: { ca: pki.ca.certPath, subjectAltNames: ['spiffe://cluster.local/ns/shop/sa/payments'] } });
    const err = await get(m).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TLS_IDENTITY_MISMATCH' });
    expect((err as Error).message).toContain(ORDERS_ID);
    expect(m.stats().services.orders!.endpoints[0]!.failures).toBe(1);
  });

  test('a TLS_IDENTITY_MISMATCH is a connect failure: even a POST is retried on another endpoint, which answers', async () => {
    const impostor = pki.issue('payments', ['DNS:orders', 'IP:127.0.0.1', 'URI:spiffe://cluster.local/ns/shop/sa/payments']);
    const wrong = await serve(impostor, pki.ca);
    const right = await serve(server, pki.ca);
    servers.push(wrong, right);
    const m = createMesh({
      random: () => 0, // round robin starts at the first endpoint: the impostor
      logger: { debug: () => {}, warn: () => {} },
      services: { orders: { endpoints: [wrong.url, right.url], balancer: 'round-robin', tls: { ca: pki.ca.certPath, subjectAltNames: [ORDERS_ID] } } },
    });
    meshes.push(m);
    const res = await request('http://orders/x', { dispatcher: m.dispatcher, method: 'POST', body: 'order' });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    const s = m.stats().services.orders!;
    expect(s.retries).toBe(1);
    expect(s.endpoints.find((e) => e.url === wrong.url)).toMatchObject({ failures: 1 });
    expect(s.endpoints.find((e) => e.url === right.url)).toMatchObject({ failures: 0, requests: 1 });
  });

  test('an expired server certificate is refused', async () => {
    const s = await serve(expired, pki.ca);
    servers.push(s);
    const m = meshFor(s.url, { tls: { ca: pki.ca.certPath } });
    expect(await get(m).catch((e: { cause?: { code?: string } }) => e.cause?.code)).toBe('CERT_HAS_EXPIRED');
  });

  test('rotated client certificate files are picked up by new connections, with no failed request', async () => {
    const s = await serve(server, pki.ca, { requireClientCert: true, closeEach: true });
    servers.push(s);
    const certPath = join(pki.dir, 'live.crt');
    const keyPath = join(pki.dir, 'live.key');
    copyFileSync(client.certPath, certPath);
    copyFileSync(client.keyPath, keyPath);
    // The reload interval runs on the fake clock: each step below is one reload, whatever the machine's speed.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const m = meshFor(s.url, { tls: { ca: pki.ca.certPath, cert: certPath, key: keyPath, reloadIntervalMs: 50 } });
    const next = pki.issue('gateway-2', ['URI:spiffe://cluster.local/ns/shop/sa/gateway'], { clientAuth: true });
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await get(m)).status);
    // Rotate: key first, then cert (a non-atomic rotation; the half-written state must be skipped).
    copyFileSync(next.keyPath, keyPath);
    vi.advanceTimersByTime(50); // a reload sees the new key with the old cert
    expect(logs.at(-1)).toMatch(/tls: keeping the current certificates, the new ones do not load yet/);
    const keeping = (): number => warnings.filter((w) => w.includes('keeping the current certificates')).length;
    expect(keeping()).toBe(1);
    vi.advanceTimersByTime(150); // three more reloads of the same half-written state: not warned again
    expect(keeping()).toBe(1);
    for (let i = 0; i < 5; i++) statuses.push((await get(m)).status);
    copyFileSync(next.certPath, certPath);
    vi.advanceTimersByTime(50); // a reload sees both
    for (let i = 0; i < 10; i++) statuses.push((await get(m)).status);
    expect(statuses.every((x) => x === 200)).toBe(true);
    expect(new Set(s.clientCerts).size).toBe(2);
    expect(s.clientCerts.at(-1)).not.toBe(s.clientCerts[0]);
  });

  test('an emptied certificate or key file is not taken (Node would make it a client without a certificate): kept, warned once; refused at createMesh', async () => {
    const s = await serve(server, pki.ca, { requireClientCert: true, closeEach: true });
    servers.push(s);
    const certPath = join(pki.dir, 'empty-live.crt');
    const keyPath = join(pki.dir, 'empty-live.key');
    copyFileSync(client.certPath, certPath);
    copyFileSync(client.keyPath, keyPath);
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const m = meshFor(s.url, { tls: { ca: pki.ca.certPath, cert: certPath, key: keyPath, reloadIntervalMs: 50 } });
    const keeping = (): string[] => warnings.filter((w) => w.includes('keeping the current certificates'));
    const statuses: number[] = [];
    statuses.push((await get(m)).status);
    for (const [path, whole, what] of [[certPath, client.certPath, 'the certificate chain is empty'], [keyPath, client.keyPath, 'the private key is empty']] as const) {
      writeFileSync(path, '');
      vi.advanceTimersByTime(200); // four reloads of the emptied file
      for (let i = 0; i < 3; i++) statuses.push((await get(m)).status);
      expect(keeping().at(-1)).toContain(what);
      copyFileSync(whole, path);
      vi.advanceTimersByTime(50);
    }
    expect(statuses).toEqual(Array(7).fill(200));
    expect(keeping()).toHaveLength(2);
    expect(s.clientCerts).not.toContain('none');
    writeFileSync(certPath, '');
    expect(() => createMesh({ services: { orders: { endpoints: [s.url], tls: { ca: pki.ca.certPath, cert: certPath, key: keyPath } } } })).toThrowError(
      /services\.orders\.tls: TLS material does not load: the certificate chain is empty/,
    );
  });

  test('a rotation that catches the CA file half-written or emptied keeps the current CA, warned once each, and takes the whole new bundle', async () => {
    const s = await serve(server, pki.ca, { closeEach: true }); // every request a new connection, with the material of the moment
    servers.push(s);
    const caPath = join(pki.dir, 'live-ca.pem');
    copyFileSync(pki.ca.certPath, caPath);
    // The reload interval runs on the fake clock: each step below is one reload, whatever the machine's speed.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const m = meshFor(s.url, { tls: { ca: caPath, reloadIntervalMs: 50 } });
    const next = new Pki(); // the new root, rolled out next to the old one: the new bundle holds both
    const nextServer = next.issue('orders-next', ['DNS:orders', 'IP:127.0.0.1']);
    const bundle = next.ca.cert + pki.ca.cert;
    const keeping = (): string[] => warnings.filter((w) => w.includes('keeping the current certificates'));
    const statuses: number[] = [];
    try {
      statuses.push((await get(m)).status);
      writeFileSync(caPath, bundle.slice(0, next.ca.cert.length >> 1)); // caught in the middle of its first certificate
      vi.advanceTimersByTime(200); // four reloads of the same half-written file
      for (let i = 0; i < 3; i++) statuses.push((await get(m)).status);
      expect(keeping()).toEqual([expect.stringContaining('the CA bundle ends inside a PEM block (begun at line 1): cut short, or still being written')]);
      writeFileSync(caPath, ''); // truncated, before the write
      vi.advanceTimersByTime(200);
      for (let i = 0; i < 3; i++) statuses.push((await get(m)).status);
      expect(keeping()).toHaveLength(2);
      expect(keeping()[1]).toContain('the CA bundle is empty');
      expect(statuses).toEqual(Array(7).fill(200));
      writeFileSync(caPath, bundle);
      vi.advanceTimersByTime(50); // one reload: the whole bundle is taken
      expect(warnings.at(-1)).toMatch(/tls: the certificate files load again/);
      s.present(nextServer); // a server certificate only the new root signs
      expect((await get(m)).status).toBe(200);
      expect(keeping()).toHaveLength(2);
    } finally {
      next.dispose();
    }
  });

  test('a CA that is no whole certificate bundle fails at createMesh at tls.ca, its content never quoted', () => {
    const file = (name: string, content: string): string => {
      const p = join(pki.dir, name);
      writeFileSync(p, content);
      return p;
    };
    const body = pki.ca.cert.split('\n')[1]!;
    const cases: [unknown, RegExp][] = [
      [file('garbage-ca.pem', 'this is not a pem\n'), /the CA bundle holds no PEM certificate/],
      [file('empty-ca.pem', ''), /the CA bundle is empty/],
      [file('half-ca.pem', pki.ca.cert.slice(0, pki.ca.cert.length >> 1)), /the CA bundle ends inside a PEM block \(begun at line 1\): cut short/],
      [file('ca-and-half.pem', pki.ca.cert + pki.ca.cert.slice(0, 100)), /the CA bundle ends inside a PEM block \(begun at line \d+\)/],
      [file('key-as-ca.pem', pki.ca.key), /the CA bundle holds no PEM certificate/],
      ['-----BEGIN CERTIFICATE-----\nAAAAgarbage\n-----END CERTIFICATE-----\n', /the CA bundle's certificate 1 \(line 1\) does not parse/],
      [`-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`, /the CA bundle's certificate 1 \(line 1\) does not parse/],
      [`  ${pki.ca.cert}`, /the CA bundle has a malformed PEM line \(line 1\)/], // OpenSSL reads no indented BEGIN: no CA at all
    ];
    for (const [ca, message] of cases) {
      let err: unknown;
      try {
        createMesh({ services: { orders: { endpoints: ['https://127.0.0.1:1'], tls: { ca } } } } as never);
      } catch (e) {
        err = e;
      }
      expect(err, String(ca).slice(0, 40)).toMatchObject({ code: 'INVALID_CONFIG', path: 'services.orders.tls.ca' });
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain(body);
      expect((err as Error).message).not.toContain('AAAAgarbage');
    }
    // A bundle with comments and more than one certificate, CRLF line ends too, is taken.
    for (const ca of [file('commented-ca.pem', `# meshlet test CA\n${pki.ca.cert}\n# again\n${pki.ca.cert}`), pki.ca.cert.replace(/\n/g, '\r\n')]) {
      meshes.push(createMesh({ services: { orders: { endpoints: ['https://127.0.0.1:1'], tls: { ca } } } }));
    }
  });

  test('bad TLS config fails at createMesh with the path', () => {
    expect(() => createMesh({ services: { orders: { endpoints: ['https://127.0.0.1:1'], tls: { cert: client.certPath } } } })).toThrowError(
      /services\.orders\.tls\.key: mutual TLS needs both/,
    );
    expect(() => createMesh({ services: { orders: { endpoints: ['https://127.0.0.1:1'], tls: { ca: '/nonexistent/ca.pem' } } } })).toThrowError(
      /services\.orders\.tls: TLS material does not load/,
    );
    expect(() => createMesh({ services: { orders: { endpoints: ['https://127.0.0.1:1'], tls: { subjectAltNames: [] } } } })).toThrowError(
      /services\.orders\.tls\.subjectAltNames/,
    );
  });

  test('no private key material appears in anything emitted during these tests', () => {
    const secrets = [client.key, server.key, expired.key, pki.ca.key].map((k) => k.split('\n')[1]!);
    const emitted = logs.join('\n');
    for (const s of secrets) expect(emitted).not.toContain(s);
  });
});
