// A service's `port`: `http://<host>:<port>/` reaches the service that claims that port of the host
// (Envoy's cluster per port), any other port the one without `port` — on real backends, through
// the dispatcher and the mesh's http.Agent.
import http from 'node:http';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, InvalidConfigError, type Mesh } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

let main: Backend;
let admin: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  main = await startBackend('main');
  admin = await startBackend('admin');
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll([main, admin]);
});

async function backendOf(m: Mesh, url: string): Promise<string> {
  const res = await request(url, { dispatcher: m.dispatcher });
  return ((await res.body.json()) as { backend: string }).backend;
}

test('the port picks the service: 9080 the one that claims it, any other port (or none) the one without a port', async () => {
  mesh = createMesh({
    namespace: 'shop',
    services: {
      reviews: { endpoints: [main.url] },
      '9080.reviews': { endpoints: [admin.url], hosts: ['reviews', 'reviews.shop', 'reviews.shop.svc.cluster.local'], port: 9080 },
    },
  });
  expect(await backendOf(mesh, 'http://reviews/')).toBe('main');
  expect(await backendOf(mesh, 'http://reviews:8080/')).toBe('main');
  expect(await backendOf(mesh, 'http://reviews:9080/')).toBe('admin');
  expect(await backendOf(mesh, 'http://reviews.shop.svc.cluster.local:9080/')).toBe('admin');
  expect(await backendOf(mesh, 'http://REVIEWS.shop.:9080/')).toBe('admin');
  // The caller's host and port go on as the Host header, as a sidecar keeps the authority.
  expect(admin.received[0]!.headers.host).toBe('reviews:9080');
  expect(JSON.parse(JSON.stringify(mesh)).services['9080.reviews'].port).toBe(9080);
});

test('a service with a port only takes that port: another port of its host is an unknown host', async () => {
  mesh = createMesh({ unknownHosts: 'reject', services: { api: { endpoints: [admin.url], port: 8443 } } });
  expect(await backendOf(mesh, 'http://api:8443/')).toBe('admin');
  await expect(request('http://api/', { dispatcher: mesh.dispatcher })).rejects.toMatchObject({ code: 'UNKNOWN_SERVICE' });
  // `port: 80` is the scheme's port: a URL without one reaches it.
  const m80 = createMesh({ unknownHosts: 'reject', services: { web: { endpoints: [main.url], port: 80 } } });
  try {
    expect(await backendOf(m80, 'http://web/')).toBe('main');
  } finally {
    await m80.close();
  }
});

test('node:http through the mesh agent reaches the service of the port', async () => {
  mesh = createMesh({
    services: {
      reviews: { endpoints: [main.url] },
      'reviews-admin': { endpoints: [admin.url], hosts: ['reviews'], port: 9080 },
    },
  });
  const agent = mesh.agent();
  try {
    const get = (port: number) =>
      new Promise<string>((resolve, reject) => {
        http
          .get({ host: 'reviews', port, path: '/', agent }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve((JSON.parse(body) as { backend: string }).backend));
          })
          .on('error', reject);
      });
    expect(await get(9080)).toBe('admin');
    expect(await get(80)).toBe('main');
  } finally {
    agent.destroy();
  }
});

test.each([
  ['a port out of range', { a: { endpoints: ['http://127.0.0.1:1'], port: 70_000 } }, 'services.a.port'],
  ['a port that is no integer', { a: { endpoints: ['http://127.0.0.1:1'], port: '9080' } }, 'services.a.port'],
  ['two services claiming one port of a host', { a: { endpoints: ['http://127.0.0.1:1'], hosts: ['x'], port: 9080 }, b: { endpoints: ['http://127.0.0.1:1'], hosts: ['x'], port: 9080 } }, 'services.b'],
])('%s is refused at createMesh, naming the field', (_name, services, path) => {
  expect(() => createMesh({ services } as never)).toThrowError(InvalidConfigError);
  expect(() => createMesh({ services } as never)).toThrowError(path);
});
