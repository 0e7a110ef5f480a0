// The example trio end to end: seven processes on loopback, the demo, and a clean stop.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { expect, test } from 'vitest';

const built = existsSync('dist/index.mjs');

test.skipIf(!built)('npm run example -- --exit: balancing, split, canary, kill and restart with no error, rate limit, clean stop', async () => {
  const child = spawn(process.execPath, ['examples/trio/run.mjs', '--exit'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect(out).toContain('meshlet example trio is up');
  expect(out).toMatch(/catalog replicas: +catalog-1 \d+, catalog-2 \d+, catalog-3 \d+/);
  expect(out).toMatch(/versions: v2 20\n/);
  // One request's id and deadline, as each replica saw them (mesh.inbound in every replica).
  expect(out).toMatch(/gateway +request id demo-42, no deadline\n/);
  expect(out).toMatch(/catalog-\d +request id demo-42, (\d+) ms left\n/);
  expect(out).toMatch(/inventory-\d +request id demo-42, (\d+) ms left\n/);
  expect(Number(/catalog-\d +request id demo-42, (\d+) ms left/.exec(out)![1])).toBeLessThanOrEqual(1000);
  expect(Number(/inventory-\d +request id demo-42, (\d+) ms left/.exec(out)![1])).toBeLessThanOrEqual(500);
  expect(out).toMatch(/requests, 0 errors seen by the caller/);
  // /export's bucket holds 100 and refills one every 10 s: at least the burst passes, and (unless
  // the step took 2,000 s, far past this test's timeout) some are refused. Nothing else may appear.
  const statuses = /statuses: 200 (\d+), 429 (\d+)\n/.exec(out);
  expect(statuses, 'statuses: 200 N, 429 M').not.toBeNull();
  const [ok, limited] = [Number(statuses![1]), Number(statuses![2])];
  expect(ok + limited).toBe(300);
  expect(ok).toBeGreaterThanOrEqual(100);
  expect(limited).toBeGreaterThan(0);
  expect(out).toContain('every replica stopped');
  expect(code).toBe(0);
}, 60_000);

test.skipIf(!built)('Ctrl-C (SIGINT) stops every replica: no orphaned process, no port left bound', async () => {
  const child = spawn(process.execPath, ['examples/trio/run.mjs'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  // Wait for the line itself (each chunk of output is checked as it arrives), or for the child to exit.
  await new Promise<void>((resolve) => {
    const check = (): void => {
      if (out.includes('serving — Ctrl-C stops everything')) resolve();
    };
    child.stdout.on('data', check);
    child.once('exit', () => resolve());
    check();
  });
  expect(out).toContain('serving — Ctrl-C stops everything');
  const ports = [...out.matchAll(/http:\/\/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
  expect(ports.length).toBeGreaterThanOrEqual(7);
  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect(code).toBe(0);
  expect(out).toContain('no process left, no port bound');
  // Every port is free again: binding each one succeeds.
  const net = await import('node:net');
  for (const port of new Set(ports)) {
    await new Promise<void>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => s.close(() => resolve()));
    });
  }
}, 60_000);
