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
    services: { orders: { endpoints: backends.map((b) => b.url), outlierDetection: { consecutive5xxErrors: 3, baseEjectionTimeMs: 60_000, maxEjectionPercent: 100 }, retry: { attempts: 2 } } },
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
