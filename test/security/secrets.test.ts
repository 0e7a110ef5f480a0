// No secret — a bearer token, an Authorization or Cookie value, a Kubernetes token, a private key —
// ever appears in anything meshlet emits: logs, events (listeners and diagnostics_channel), errors
// (messages, causes, stacks), stats, or the live view's JSON. Everything emitted during a run full
// of failures is collected and searched.
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type MeshEventName } from '../../src/index.js';
import { closeAll, startBackends } from '../support/backend.js';
import { slice, startKubeApi } from '../support/kube-apiserver.js';
import { hasOpenssl, Pki } from '../support/pki.js';

const AUTH = 'Bearer auth-SECRET-1f2e3d';
const COOKIE = 'session=cookie-SECRET-9a8b7c';
const K8S_TOKEN = 'k8s-SECRET-token-5566';

const EVENTS: MeshEventName[] = ['ejection', 'unejection', 'circuit', 'health-check', 'retry', 'retry-budget-exhausted', 'rate-limited', 'overloaded', 'discovery-update', 'discovery-error', 'panic', 'request'];

test('nothing secret in logs, events, errors, stats or the live view', async () => {
  const emitted: string[] = [];
  const dump = (x: unknown): void => {
    if (x instanceof Error) {
      let e: unknown = x;
      for (let depth = 0; e instanceof Error && depth < 5; depth++) {
        emitted.push(`${e.name}: ${e.message}\n${e.stack ?? ''}\n${JSON.stringify(e)}`);
        e = (e as Error & { cause?: unknown }).cause;
      }
    } else emitted.push(typeof x === 'string' ? x : JSON.stringify(x));
  };
  const channelListeners = EVENTS.map((name) => {
    const fn = (msg: unknown): void => dump(msg);
    diagnostics.subscribe(`meshlet:${name}`, fn);
    return () => diagnostics.unsubscribe(`meshlet:${name}`, fn);
  });

  const backends = await startBackends(3);
  const dir = mkdtempSync(join(tmpdir(), 'meshlet-secrets-'));
  const api = await startKubeApi();
  api.token = K8S_TOKEN;
  api.apply('endpointslices', 'default', slice('web-a', 'web', [{ ip: '127.0.0.1' }], backends[2]!.port));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, K8S_TOKEN);
  const pki = hasOpenssl ? new Pki() : null;
  const client = pki?.issue('client', ['URI:spiffe://t/ns/a/sa/b'], { clientAuth: true });
  const keyLine = client ? client.key.split('\n')[1]! : 'no-key';

  backends[0]!.fault = { kind: 'status', status: 503 };
  await backends[1]!.stop();
  const mesh = createMesh({
    services: {
      orders: { endpoints: backends.map((b) => b.url), outlierDetection: { consecutive5xxErrors: 2, maxEjectionPercent: 100 }, balancer: 'round-robin' },
      web: { discovery: { type: 'kubernetes', service: 'web', namespace: 'default', port: 'http', apiServer: api.url, tokenFile } },
      ...(client
        ? { secure: { endpoints: ['https://127.0.0.1:1'], tls: { ca: pki!.ca.certPath, cert: client.certPath, key: client.keyPath }, retry: false } }
        : {}),
    },
    logger: { debug: (m: string, ...a: unknown[]) => dump([m, ...a].map(String).join(' ')), warn: (m: string, ...a: unknown[]) => dump([m, ...a].map(String).join(' ')) },
  });
  for (const name of EVENTS) mesh.on(name, dump);
  try {
    for (let i = 0; i < 12; i++) {
      await request('http://orders/x', { dispatcher: mesh.dispatcher, headers: { authorization: AUTH, cookie: COOKIE } }).then((r) => r.body.dump(), dump);
    }
    await request('http://web/x', { dispatcher: mesh.dispatcher, headers: { authorization: AUTH } }).then((r) => r.body.dump(), dump);
    // The API rotates its token: 401s until meshlet re-reads the file. Rotate the file only once
    // a 401 has been reported, so the run surely went through that path.
    const refused = new Promise<void>((resolve) => mesh.on('discovery-error', (e) => / 401\b/.test(e.message) && resolve()));
    api.token = `${K8S_TOKEN}-rotated`;
    api.dropWatches();
    await refused;
    writeFileSync(tokenFile, `${K8S_TOKEN}-rotated`);
    if (client) await request('http://secure/x', { dispatcher: mesh.dispatcher, headers: { authorization: AUTH } }).then((r) => r.body.dump(), dump);
    await mesh.fetch('http://orders/x', { headers: { authorization: AUTH, cookie: COOKIE } }).then((r) => r.arrayBuffer(), dump);
    await request('http://nowhere.invalid/x', { dispatcher: createMesh({ services: {}, unknownHosts: 'reject' }).dispatcher, headers: { authorization: AUTH } }).catch(dump);
    dump(mesh.stats());
  } finally {
    await mesh.close({ graceMs: 200 });
    for (const off of channelListeners) off();
    await api.close();
    await closeAll(backends);
    pki?.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  const all = emitted.join('\n');
  expect(emitted.length).toBeGreaterThan(20); // the run did emit plenty: retries, ejections, discovery errors…
  for (const secret of ['auth-SECRET', 'cookie-SECRET', 'k8s-SECRET', keyLine]) expect(all).not.toContain(secret);
});
