// The live view in a real headless browser (Debian's chromium, driven by playwright-core); skipped
// with a message where either is missing.
import http from 'node:http';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, liveView, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

const CHROMIUM = '/usr/bin/chromium';
const require_ = createRequire(`${process.cwd()}/package.json`);
let playwright: typeof import('playwright-core') | null = null;
try {
  playwright = require_('playwright-core') as typeof import('playwright-core');
} catch {
  playwright = null;
}
const ready = playwright !== null && existsSync(CHROMIUM);
if (!ready) console.warn('skipping the live-view browser test: needs /usr/bin/chromium (apt-get install chromium) and playwright-core');

let backends: Backend[];
let mesh: Mesh;
let server: http.Server;
let url: string;

beforeAll(async () => {
  backends = await startBackends(3);
  mesh = createMesh({
    // round robin keeps sending the stopped replica its share, so it is ejected within a few requests
    // (the default prequal stops choosing a replica whose connects fail and only probes it now and then).
    services: { orders: { endpoints: backends.map((b) => b.url), balancer: 'round-robin', outlierDetection: { consecutive5xxErrors: 3, baseEjectionTimeMs: 60_000, maxEjectionPercent: 100 }, retry: { attempts: 2 } } },
  });
  const view = liveView(mesh);
  server = http.createServer((req, res) => {
    if (!view(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/_meshlet`;
});

afterAll(async () => {
  await mesh.close({ graceMs: 200 });
  await new Promise((r) => server.close(r));
  await closeAll(backends);
});

test('the stats endpoint serves mesh.stats() as JSON', async () => {
  const res = await request(`${url}/stats`);
  const body = (await res.body.json()) as { services: Record<string, unknown> };
  expect(res.headers['content-type']).toBe('application/json');
  expect(Object.keys(body.services)).toEqual(['orders']);
});

test.skipIf(!ready)('the page shows an ejected replica after it is killed', async () => {
  const browser = await playwright!.chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let running = true;
  const load = (async () => {
    while (running) {
      const r = await request('http://orders/x', { dispatcher: mesh.dispatcher }).catch(() => null);
      await r?.body.dump();
      await new Promise((res) => setTimeout(res, 5));
    }
  })();
  try {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForSelector('tr[data-state="healthy"]');
    await backends[1]!.stop();
    const victim = `tr[data-endpoint="${backends[1]!.url}"][data-state="ejected"]`;
    await page.waitForSelector(victim, { timeout: 8000 });
    expect(await page.locator(victim).count()).toBe(1);
    expect(await page.locator('tr[data-state="healthy"]').count()).toBe(2);
    await page.screenshot({ path: '/tmp/live-view.png', fullPage: true });
  } finally {
    running = false;
    await load;
    await browser.close();
  }
}, 30_000);

// Mounted under a prefix, behind an authorization hook; the page shows each endpoint's labels
// (v1 and v2 told apart) and the mesh's own inbound side.
async function labelledView(): Promise<{ url: string; close(): Promise<void>; mesh: Mesh }> {
  const m = createMesh({
    services: {
      catalog: {
        endpoints: [
          { url: backends[0]!.url, labels: { version: 'v1' } },
          { url: backends[2]!.url, labels: { version: 'v2' } },
        ],
      },
    },
  });
  const view = liveView(m, { path: '/ops/meshlet', authorize: (req) => req.headers['x-ops-token'] === 'secret' });
  const app = m.inbound((_req, res) => res.end('app'), { limits: { maxRequests: 7 } });
  const s = http.createServer((req, res) => view(req, res) || app(req, res));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  return {
    url: base,
    mesh: m,
    close: async () => {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
      await m.close();
    },
  };
}

test('under a prefix and an authorization hook: 403 without it, the stats (inbound side included) with it; other paths go to the app', async () => {
  const v = await labelledView();
  try {
    expect((await request(`${v.url}/ops/meshlet/stats`)).statusCode).toBe(403);
    expect((await request(`${v.url}/ops/meshlet`)).statusCode).toBe(403);
    expect((await request(`${v.url}/_meshlet/stats`)).statusCode).toBe(200); // not the view's path: the app's
    const res = await request(`${v.url}/ops/meshlet/stats`, { headers: { 'x-ops-token': 'secret' } });
    const body = (await res.body.json()) as { services: Record<string, { endpoints: { labels: Record<string, string> }[] }>; inbound: { entries: Record<string, { concurrencyLimit: number }> } };
    expect(body.services.catalog!.endpoints.map((e) => e.labels.version)).toEqual(['v1', 'v2']);
    expect(body.inbound.entries.http!.concurrencyLimit).toBe(7);
  } finally {
    await v.close();
  }
});

test('a hook that throws refuses', async () => {
  const m = createMesh({ services: {} });
  const view = liveView(m, { authorize: () => { throw new Error('no'); } });
  const s = http.createServer((req, res) => view(req, res) || res.end('app'));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  try {
    expect((await request(`http://127.0.0.1:${(s.address() as AddressInfo).port}/_meshlet/stats`)).statusCode).toBe(403);
  } finally {
    await new Promise((r) => s.close(r));
    await m.close();
  }
});

test.skipIf(!ready)('the page shows each endpoint\'s labels and the inbound side', async () => {
  const v = await labelledView();
  const browser = await playwright!.chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  try {
    const page = await browser.newPage({ extraHTTPHeaders: { 'x-ops-token': 'secret' } });
    await page.goto(`${v.url}/ops/meshlet`);
    await page.waitForSelector('tr[data-entry="http"]');
    expect(await page.locator(`tr[data-endpoint="${backends[2]!.url}"] td.labels`).textContent()).toBe('version=v2');
    expect(await page.locator('tr[data-entry="http"] td').nth(3).textContent()).toBe('7');
  } finally {
    await browser.close();
    await v.close();
  }
}, 30_000);
