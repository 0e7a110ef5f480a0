// Bundles bench/balancers/pick-app.ts with tsup's build API into a directory under node_modules/.cache and runs it
// with this Node, in a child process of its own; prints ns per pick. Target: ≤ 200 ns at 1,000
// endpoints for least-request, peak-ewma, prequal and maglev (issue #12 §1). Run alone:
// node bench/balancers/pick-app.mjs
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';

const TARGET_NS = 200;

export async function pickApp() {
  // Under node_modules/.cache, so that the bundle's few external imports resolve from the project.
  const cache = fileURLToPath(new URL('../../node_modules/.cache/', import.meta.url));
  mkdirSync(cache, { recursive: true });
  const dir = mkdtempSync(join(cache, 'meshlet-pick-'));
  try {
    await build({ entry: { pick: fileURLToPath(new URL('./pick-app.ts', import.meta.url)) }, outDir: dir, format: ['esm'], platform: 'node', target: 'node22', dts: false, sourcemap: false, silent: true, clean: false, config: false });
    const run = spawnSync(process.execPath, [join(dir, 'pick.mjs')], { encoding: 'utf8', timeout: 300_000 });
    if (run.status !== 0) throw new Error(`pick bench exited with ${run.status ?? run.signal}: ${run.stderr.trim().split('\n').slice(-5).join(' / ')}`);
    const ns = JSON.parse(run.stdout);
    console.log(`pick cost as an application runs it (bundled, plain Node; best of 30 × 100,000 picks), ns per pick; target ≤ ${TARGET_NS} at 1,000`);
    console.log('| balancer | 10 | 1000 | target |');
    console.log('|---|---:|---:|---|');
    for (const [name, by] of Object.entries(ns)) {
      const mark = name === 'round-robin' ? '' : by[1000] <= TARGET_NS ? 'met' : 'MISSED';
      console.log(`| ${name} | ${by[10].toFixed(1)} | ${by[1000].toFixed(1)} | ${mark} |`);
    }
    return ns;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await pickApp();
