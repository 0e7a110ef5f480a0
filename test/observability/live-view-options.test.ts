// liveView's options: checked when the view is made, and an async authorize awaited.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, liveView, type Mesh } from '../../src/index.js';

let mesh: Mesh;

beforeAll(() => {
  mesh = createMesh({ services: { orders: { endpoints: ['http://127.0.0.1:9'] } } });
});

afterAll(async () => {
  await mesh.close({ graceMs: 0 });
});

/** Serve `view` (anything it does not handle: 404 'app'), GET each path, and return `status body-start` per path. */
async function statuses(view: ReturnType<typeof liveView>, paths: string[]): Promise<string[]> {
  const server = http.createServer((req, res) => {
    if (!view(req, res)) res.writeHead(404).end('app');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const out: string[] = [];
    for (const p of paths) {
      const r = await request(`${base}${p}`);
      out.push(`${r.statusCode} ${(await r.body.text()).slice(0, 9)}`);
    }
    return out;
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test('wrong options are an InvalidConfigError at liveView.<option>', () => {
  const cases: [unknown, string][] = [
    [{ path: 'ops' }, 'liveView.path'],
    [{ path: '' }, 'liveView.path'],
    [{ path: 42 }, 'liveView.path'],
    [{ authorize: 'yes' }, 'liveView.authorize'],
    [{ authorize: true }, 'liveView.authorize'],
    [{ authorise: () => true }, 'liveView.authorise'],
    ['/ops', 'liveView'],
  ];
  for (const [options, path] of cases) {
    expect(() => liveView(mesh, options as never), JSON.stringify(options)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG', path }));
  }
});

test('an async authorize is awaited: true lets the request through; false, a rejection or a non-boolean answer 403', async () => {
  const paths = ['/_meshlet', '/_meshlet/stats'];
  expect(await statuses(liveView(mesh, { authorize: async () => true }), paths)).toEqual(['200 <!doctype', '200 {"service']);
  expect(await statuses(liveView(mesh, { authorize: async () => false }), paths)).toEqual(['403 forbidden', '403 forbidden']);
  expect(await statuses(liveView(mesh, { authorize: () => Promise.reject(new Error('auth down')) }), paths)).toEqual(['403 forbidden', '403 forbidden']);
  expect(await statuses(liveView(mesh, { authorize: (async () => 'yes') as never }), paths)).toEqual(['403 forbidden', '403 forbidden']);
  // a thenable that is no promise, and one whose then() throws
  const thenable = { then: (ok: (v: boolean) => void) => ok(true) };
  expect(await statuses(liveView(mesh, { authorize: () => thenable as never }), paths)).toEqual(['200 <!doctype', '200 {"service']);
  const broken = {
    then() {
      throw new Error('broken');
    },
  };
  expect(await statuses(liveView(mesh, { authorize: () => broken as never }), paths)).toEqual(['403 forbidden', '403 forbidden']);
});

test("path '/' mounts the view at the root; a trailing slash is dropped", async () => {
  expect(await statuses(liveView(mesh, { path: '/' }), ['/', '/stats', '/x'])).toEqual(['200 <!doctype', '200 {"service', '404 app']);
  expect(await statuses(liveView(mesh, { path: '/ops/meshlet/' }), ['/ops/meshlet', '/ops/meshlet/stats', '/_meshlet'])).toEqual(['200 <!doctype', '200 {"service', '404 app']);
});
