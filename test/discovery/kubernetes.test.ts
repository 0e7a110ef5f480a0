import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { fromKubeconfig } from '../../src/discovery/kubernetes-client.js';
import { slice, startKubeApi, type KubeApiServer } from '../support/kube-apiserver.js';

let api: KubeApiServer;
let port: number;
let servers: http.Server[] = [];
let mesh: Mesh | null = null;
let dir: string;

async function serveOn(address: string, p: number): Promise<number> {
  const s = http.createServer((req, res) => res.end(JSON.stringify({ at: address })));
  await new Promise<void>((r) => s.listen(p, address, r));
  servers.push(s);
  return (s.address() as AddressInfo).port;
}

beforeEach(async () => {
  api = await startKubeApi();
  port = await serveOn('127.0.0.1', 0);
  for (const a of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) await serveOn(a, port);
  dir = mkdtempSync(join(tmpdir(), 'meshlet-k8s-'));
  api.apply('services', 'default', { metadata: { name: 'web' }, spec: { selector: { app: 'web' } } });
});

afterEach(async () => {
  await mesh?.close({ graceMs: 200 });
  mesh = null;
  await api.close();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  servers = [];
  rmSync(dir, { recursive: true, force: true });
});

function meshFor(extra: Record<string, unknown> = {}): Mesh {
  mesh = createMesh({
    services: { web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: api.url, ...extra }, balancer: 'round-robin' } },
  });
  return mesh;
}

const urls = (m: Mesh): string[] => m.stats().services.web!.endpoints.filter((e) => e.state !== 'draining').map((e) => e.url).sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Poll `check` until it holds; resolves with the ms it took. Bounded, at least 10 s: only a condition that never comes fails it. */
async function until(check: () => boolean, ms = 10_000): Promise<number> {
  const t = performance.now();
  while (!check()) {
    if (performance.now() - t > Math.max(ms, 10_000)) throw new Error('condition not reached in time');
    await sleep(2);
  }
  return performance.now() - t;
}
const at = async (m: Mesh): Promise<string> => ((await (await request('http://web/', { dispatcher: m.dispatcher })).body.json()) as { at: string }).at;

describe('kubernetes discovery (EndpointSlices)', () => {
  test('lists, then follows ADDED / MODIFIED / DELETED within milliseconds of the event', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }, { ip: '127.0.0.2' }], port));
    const m = meshFor();
    expect(await at(m)).toMatch(/127\.0\.0\.[12]/);
    expect(urls(m)).toEqual([`http://127.0.0.1:${port}`, `http://127.0.0.2:${port}`]);
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }, { ip: '127.0.0.2' }, { ip: '127.0.0.3' }], port));
    const added = await until(() => urls(m).length === 3);
    api.remove('endpointslices', 'default', 'web-a');
    const removed = await until(() => urls(m).length === 0);
    console.log(`convergence: added in ${added.toFixed(1)} ms, removed in ${removed.toFixed(1)} ms`);
    // Followed from the watch events, not from relists (the timing above is measured, not asserted).
    expect(api.requests.filter((r) => r.includes('/endpointslices?') && !r.includes('watch=1'))).toHaveLength(1);
  });

  test('slices are merged and de-duplicated; conditions honoured (ready unset = ready, terminating out)', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }, { ip: '127.0.0.2', ready: false }], port));
    api.apply('endpointslices', 'default', slice('web-b', 'web', [{ ip: '127.0.0.1' }, { ip: '127.0.0.3', ready: null }, { ip: '127.0.0.4', ready: false, terminating: true }], port));
    api.apply('endpointslices', 'default', slice('other', 'payments', [{ ip: '127.0.0.4' }], port));
    const m = meshFor();
    await at(m);
    expect(urls(m)).toEqual([`http://127.0.0.1:${port}`, `http://127.0.0.3:${port}`]);
  });

  test('zone, node name and pod labels are carried onto endpoints (version subsets work)', async () => {
    api.apply('pods', 'default', { metadata: { name: 'web-v2-abc', labels: { app: 'web', version: 'v2' } } });
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1', zone: 'us-east-1a', pod: 'web-v2-abc' }, { ip: '127.0.0.2', pod: 'web-v1-xyz' }], port));
    const m = meshFor();
    await at(m);
    await until(() => m.stats().services.web!.endpoints.some((e) => e.labels.version === 'v2'));
    const ep = m.stats().services.web!.endpoints.find((e) => e.url.includes('127.0.0.1'))!;
    expect(ep).toMatchObject({ zone: 'us-east-1a', labels: { app: 'web', version: 'v2', 'kubernetes.io/hostname': 'node-1' } });
    // The other pod arrives later: its endpoint gets its labels then.
    api.apply('pods', 'default', { metadata: { name: 'web-v1-xyz', labels: { app: 'web', version: 'v1' } } });
    await until(() => m.stats().services.web!.endpoints.some((e) => e.labels.version === 'v1'));
  });

  test('with pod labels, the first snapshot waits for the first list of pods: the first update already carries them', async () => {
    api.apply('pods', 'default', { metadata: { name: 'web-v2-abc', labels: { app: 'web', version: 'v2' } } });
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1', pod: 'web-v2-abc' }], port));
    const m = meshFor();
    const updates: number[] = [];
    m.on('discovery-update', (e) => updates.push(e.endpoints));
    await until(() => updates.length > 0);
    expect(updates).toEqual([1]);
    expect(m.stats().services.web!.endpoints[0]!.labels).toMatchObject({ version: 'v2' });
  });

  test('with pod labels and a Service that cannot be read, the endpoints go out without labels rather than never', async () => {
    api.remove('services', 'default', 'web');
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1', pod: 'web-v2-abc' }], port));
    const m = meshFor();
    await at(m);
    expect(m.stats().services.web!.endpoints[0]!.labels).not.toHaveProperty('version');
  });

  test('with nodeLabels, each endpoint gets its node\'s region (and zone when the slice has none); a relabelled node is followed', async () => {
    const node = (name: string, region: string, zone: string) =>
      api.apply('nodes', '', { metadata: { name, labels: { 'topology.kubernetes.io/region': region, 'topology.kubernetes.io/zone': zone } } });
    node('node-a', 'eu-west', 'eu-west-1a');
    node('node-b', 'us-east', 'us-east-1b');
    api.apply('endpointslices', 'default', {
      ...slice('web-a', 'web', [{ ip: '127.0.0.1', node: 'node-a' }, { ip: '127.0.0.2', node: 'node-b', zone: 'from-slice' }], port),
    });
    const m = meshFor({ nodeLabels: true, podLabels: false });
    await at(m);
    const where = () => m.stats().services.web!.endpoints.map((e) => `${e.url.includes('127.0.0.1') ? 'a' : 'b'} ${e.region}/${e.zone}`).sort();
    expect(where()).toEqual(['a eu-west/eu-west-1a', 'b us-east/from-slice']);
    expect(api.requests.some((r) => r.startsWith('GET /api/v1/nodes?'))).toBe(true);
    node('node-a', 'eu-central', 'eu-central-1a');
    await until(() => where()[0] === 'a eu-central/eu-central-1a');
  });

  test('a dropped watch resumes from the last resourceVersion without relisting', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], port));
    const m = meshFor();
    await at(m);
    await until(() => api.watchers >= 1);
    const lists = () => api.requests.filter((r) => r.includes('/endpointslices?') && !r.includes('watch=1')).length;
    expect(lists()).toBe(1);
    api.dropWatches();
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }, { ip: '127.0.0.2' }], port));
    await until(() => urls(m).length === 2, 5000);
    expect(lists()).toBe(1);
    expect(api.requests.filter((r) => r.includes('watch=1')).at(-1)).toMatch(/resourceVersion=\d+/);
  });

  test.each(['event', 'http'] as const)('410 Gone (%s) makes it relist and converge', async (mode) => {
    api.goneMode = mode;
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], port));
    const m = meshFor();
    await at(m);
    await until(() => api.watchers >= 1);
    api.dropWatches();
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.3' }], port));
    api.compact(); // the watch's resourceVersion is now too old
    await until(() => urls(m).join() === `http://127.0.0.3:${port}`, 5000);
    expect(api.requests.filter((r) => r.includes('/endpointslices?') && !r.includes('watch=1')).length).toBe(2);
  });

  test('while the API is down the last good set stays and requests keep flowing', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], port));
    const m = meshFor();
    await at(m);
    api.failWith = 503;
    api.dropWatches();
    await until(() => m.stats().services.web!.discoveryErrors > 0 && api.requests.some((r) => r.includes('watch=1')));
    const n = api.requests.length;
    await until(() => api.requests.length > n, 5000); // the next try, refused with 503
    expect(await at(m)).toBe('127.0.0.1');
    api.failWith = null;
  });

  test('malformed watch lines and slices without the port are skipped and reported', async () => {
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], port));
    const m = meshFor();
    await at(m);
    await until(() => api.watchers >= 1);
    api.sendRaw('{not json');
    api.apply('endpointslices', 'default', { ...slice('web-b', 'web', [{ ip: '127.0.0.2' }], port), ports: [{ name: 'grpc', port: 9 }] });
    await until(() => m.stats().services.web!.discoveryErrors >= 2);
    expect(urls(m)).toEqual([`http://127.0.0.1:${port}`]);
    expect(await at(m)).toBe('127.0.0.1');
  });

  test('bearer token from a file; a rotated token is re-read after a 401', async () => {
    api.token = 'token-1';
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'token-1\n');
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], port));
    const m = meshFor({ tokenFile, podLabels: false });
    expect(await at(m)).toBe('127.0.0.1');
    api.token = 'token-2';
    writeFileSync(tokenFile, 'token-2\n');
    api.dropWatches();
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.2' }], port));
    await until(() => urls(m).join() === `http://127.0.0.2:${port}`, 5000);
    expect(JSON.stringify(m.stats())).not.toContain('token-');
  });

  test("the token file is re-read every 60 s of the mesh's clock (injected), not only after a 401", async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'token-1\n');
    let clock = 0;
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], port));
    mesh = createMesh({
      now: () => clock,
      services: { web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: api.url, tokenFile, podLabels: false }, balancer: 'round-robin' } },
    });
    expect(await at(mesh)).toBe('127.0.0.1');
    writeFileSync(tokenFile, 'token-2\n'); // rotated; the server accepts any token, so no 401 triggers a re-read
    const before = api.authorizations.length;
    clock = 61_000; // a minute passes on the mesh's clock, none on the wall's
    api.dropWatches();
    await until(() => api.authorizations.length > before);
    expect(api.authorizations.slice(before)[0]).toBe('Bearer token-2');
  });

  test('config errors name the field', () => {
    expect(() => createMesh({ services: { web: { discovery: { type: 'kubernetes', port: 80 } as never } } }) /* missing service, on purpose */).toThrowError(/discovery\.service: required/);
    expect(() => createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', port: 0 } } } })).toThrowError(/discovery\.port: expected a port name or number/);
    expect(() => createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', port: 80, apiServer: 'localhost:6443' } } } })).toThrowError(/discovery\.apiServer: expected an http\(s\) URL/);
    expect(() => createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', port: 80, apiServer: api.url, watchTimeoutMs: '2h' } } } })).toThrowError(/discovery\.watchTimeoutMs: expected an integer ≥ 1000 and ≤ 3600000/);
  });

  test('outside a cluster with no kubeconfig and no apiServer: InvalidConfigError at createMesh, naming the field', () => {
    const env = { ...process.env };
    delete process.env.KUBERNETES_SERVICE_HOST;
    process.env.KUBECONFIG = join(dir, 'absent-kubeconfig');
    process.env.HOME = dir; // no ~/.kube/config
    try {
      let err: { code?: string; path?: string; message?: string } = {};
      try {
        createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', port: 'http' } } } });
      } catch (e) {
        err = e as typeof err;
      }
      expect(err).toMatchObject({ code: 'INVALID_CONFIG', path: 'services.web.discovery.kubeconfig' });
      expect(err.message).toMatch(/cannot read kubeconfig/);
      delete process.env.KUBECONFIG;
      err = {};
      try {
        createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', port: 'http' } } } });
      } catch (e) {
        err = e as typeof err;
      }
      expect(err).toMatchObject({ code: 'INVALID_CONFIG', path: 'services.web.discovery.apiServer' });
      expect(err.message).toMatch(/no API server to ask — not in a cluster \(KUBERNETES_SERVICE_HOST is not set\), no kubeconfig/);
      expect(() => createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', port: 'http', kubeconfig: join(dir, 'nope') } } } })).toThrowError(
        /services\.web\.discovery\.kubeconfig: kubernetes discovery: cannot read kubeconfig/,
      );
    } finally {
      process.env = env;
    }
  });

  test('watchTimeoutMs (ms or "5m") is sent as timeoutSeconds; the old watchTimeoutSeconds still works, with a DeprecationWarning', async () => {
    const emit = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], port));
      const m = meshFor({ watchTimeoutMs: '5m', podLabels: false });
      await at(m);
      await until(() => api.requests.some((r) => r.includes('watch=1')));
      expect(api.requests.find((r) => r.includes('watch=1'))).toMatch(/timeoutSeconds=300\b/);
      expect(() => createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', port: 'http', apiServer: api.url, watchTimeoutSeconds: 60, watchTimeoutMs: 60_000 } } } })).toThrowError(/give either/);
      const { kubernetesDiscovery } = await import('../../src/discovery/kubernetes.js');
      expect(kubernetesDiscovery.parseOptions!({ service: 'web', port: 'http', apiServer: api.url, watchTimeoutSeconds: 60 }, 'd').watchTimeoutMs).toBe(60_000);
      expect(emit.mock.calls.map((c) => c[1])).toEqual([{ type: 'DeprecationWarning', code: 'MESHLET_DEP_WATCHTIMEOUTSECONDS' }]);
    } finally {
      emit.mockRestore();
    }
  });
});

describe('kubeconfig', () => {
  test('context selection, token, inline client certificate and CA, insecure flag', () => {
    const path = join(dir, 'config');
    writeFileSync(
      path,
      `apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: ${Buffer.from('CA PEM').toString('base64')}
- name: prod-cluster
  cluster:
    server: https://127.0.0.1:7443
    insecure-skip-tls-verify: true
contexts:
- name: dev
  context: { cluster: dev-cluster, user: dev-user, namespace: shop }
- name: prod
  context: { cluster: prod-cluster, user: prod-user }
users:
- name: dev-user
  user: { token: abc }
- name: prod-user
  user:
    client-certificate-data: ${Buffer.from('CERT PEM').toString('base64')}
    client-key-data: ${Buffer.from('KEY PEM').toString('base64')}
`,
    );
    expect(fromKubeconfig(path, undefined)).toMatchObject({ server: 'https://127.0.0.1:6443', namespace: 'shop', token: 'abc', ca: 'CA PEM', insecure: false });
    expect(fromKubeconfig(path, 'prod')).toMatchObject({ server: 'https://127.0.0.1:7443', cert: 'CERT PEM', key: 'KEY PEM', insecure: true });
    expect(() => fromKubeconfig(path, 'staging')).toThrowError(/no context "staging"/);
    // Through createMesh, the error names the config field that chose the context.
    let err: unknown;
    try {
      createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', port: 'http', kubeconfig: path, context: 'staging' } } } });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'INVALID_CONFIG', path: 'services.web.discovery.context' });
    expect((err as Error).message).toMatch(/no context "staging"/);
  });
});

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
if (!kubectl) console.warn('skipping the kubectl shape check: kubectl is not installed');

test.skipIf(!kubectl)('kubectl reads the test server as a real API server', async () => {
  api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], port));
  // Asynchronously: the test server runs in this process and must keep answering.
  const { stdout: out } = await promisify(execFile)(
    'kubectl',
    ['--server', api.url, '-n', 'default', 'get', 'endpointslices', '-l', 'kubernetes.io/service-name=web', '-o', 'json', '--request-timeout=10s'],
    { env: { ...process.env, KUBECONFIG: '/dev/null', HOME: dir }, encoding: 'utf8', timeout: 30_000 },
  );
  const list = JSON.parse(out) as { items: { metadata: { name: string }; endpoints: { addresses: string[] }[] }[] };
  expect(list.items.map((i) => i.metadata.name)).toEqual(['web-a']);
  expect(list.items[0]!.endpoints[0]!.addresses).toEqual(['127.0.0.1']);
});

describe('in-cluster access over TLS', () => {
  test('KUBERNETES_SERVICE_HOST/PORT, the service-account token, ca.crt and namespace file', async () => {
    const { Pki, hasOpenssl } = await import('../support/pki.js');
    if (!hasOpenssl) {
      console.warn('skipping the in-cluster TLS test: the openssl CLI is not installed');
      return;
    }
    const pki = new Pki();
    const cert = pki.issue('apiserver', ['IP:127.0.0.1', 'DNS:kubernetes.default.svc']);
    const secure = await startKubeApi({ tls: { cert: cert.cert, key: cert.key } });
    const saDir = join(dir, 'sa');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(saDir);
    writeFileSync(join(saDir, 'token'), 'sa-token');
    writeFileSync(join(saDir, 'ca.crt'), pki.ca.cert);
    writeFileSync(join(saDir, 'namespace'), 'shop');
    secure.token = 'sa-token';
    secure.apply('endpointslices', 'shop', slice('web-a', 'web', [{ ip: '127.0.0.2' }], port));
    const env = { ...process.env };
    process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
    process.env.KUBERNETES_SERVICE_PORT = new URL(secure.url).port;
    try {
      mesh = createMesh({ services: { web: { discovery: { type: 'kubernetes', service: 'web', port: 'http', serviceAccountDir: saDir, podLabels: false } } } });
      expect(await at(mesh)).toBe('127.0.0.2');
      expect(secure.requests.some((r) => r.startsWith('GET /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices'))).toBe(true);
    } finally {
      process.env = env;
      await mesh?.close({ graceMs: 100 });
      mesh = null;
      await secure.close();
      pki.dispose();
    }
  });
});

test.skipIf(!kubectl)('kubectl get endpointslices --watch follows the test server’s watch stream', async () => {
  api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], port));
  const { spawn } = await import('node:child_process');
  const child = spawn('kubectl', ['--server', api.url, '-n', 'default', 'get', 'endpointslices', '-l', 'kubernetes.io/service-name=web', '--watch', '--output-watch-events', '-o', 'json'], {
    env: { ...process.env, KUBECONFIG: '/dev/null', HOME: dir },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  try {
    await until(() => out.includes('"ADDED"'), 20_000);
    api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }, { ip: '127.0.0.2' }], port));
    await until(() => out.includes('"MODIFIED"'), 10_000);
    api.remove('endpointslices', 'default', 'web-a');
    await until(() => out.includes('"DELETED"'), 10_000);
    expect(out).toContain('127.0.0.2');
  } finally {
    child.kill('SIGTERM');
  }
}, 45_000);
