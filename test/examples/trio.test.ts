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
  expect(out).toMatch(/requests, 0 errors seen by the caller/);
  expect(out).toMatch(/statuses: 200 \d+, 429 \d+/);
  expect(out).toContain('every replica stopped');
  expect(code).toBe(0);
}, 60_000);
