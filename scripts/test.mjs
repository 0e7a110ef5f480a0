// `npm test`: runs the vitest suite on Node 24 (the devDependency `node`, first on PATH under npm
// run) and on Node 22 (fetched from the npm registry with npx, cached after the first run), then
// prints one plain line `N passed, N failed, N skipped` summed over both — the line CI reads.
//
// Under CI=true a skipped test fails the run: CI installs every peer the tests need (.ci/run), so
// a skip there means a test silently did not run. The skipped tests are named. On a laptop without
// redis-server or chromium those tests skip with a message, and the run still passes.
//
//   npm test                      both Node lines
//   npm test -- test/core         pass a filter through to vitest
//   MESHLET_TEST_NODES=24 npm test   only the current Node (quicker while developing)
//
// test/typecheck.test.ts (tsc over the whole project, ~25 s) runs on the first Node line only:
// what tsc reports does not depend on the Node that runs it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const args = process.argv.slice(2);
const lines = (process.env.MESHLET_TEST_NODES ?? '24,22').split(',').map((s) => s.trim()).filter(Boolean);
const dir = mkdtempSync(join(tmpdir(), 'meshlet-test-'));
const vitest = join(process.cwd(), 'node_modules', 'vitest', 'vitest.mjs');
let passed = 0;
let failed = 0;
let skipped = 0;
let exit = 0;
/** "Node 24: file › test name" for every skipped or todo test. */
const skippedNames = [];

for (const [i, line] of lines.entries()) {
  const out = join(dir, `node${line}.json`);
  const once = i > 0 ? ['--exclude', 'test/typecheck.test.ts'] : [];
  const vitestArgs = ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${out}`, ...once, ...args];
  const current = process.versions.node.split('.')[0] === line;
  console.log(`\n=== tests on Node ${line} ${current ? `(${process.version})` : '(from the npm registry via npx)'} ===\n`);
  const r = current
    ? spawnSync(process.execPath, [vitest, ...vitestArgs], { stdio: 'inherit', env: { ...process.env, NO_COLOR: '1' } })
    : spawnSync('npx', ['-y', '-p', `node@${line}`, '--', 'node', vitest, ...vitestArgs], {
        stdio: 'inherit',
        env: { ...process.env, NO_COLOR: '1' },
      });
  if (r.status !== 0) exit = 1;
  try {
    const report = JSON.parse(readFileSync(out, 'utf8'));
    passed += report.numPassedTests;
    failed += report.numFailedTests;
    skipped += report.numPendingTests + (report.numTodoTests ?? 0);
    if (report.numTotalTests === 0) exit = 1;
    for (const file of report.testResults ?? []) {
      for (const t of file.assertionResults ?? []) {
        if (t.status !== 'passed' && t.status !== 'failed') {
          skippedNames.push(`Node ${line}: ${relative(process.cwd(), file.name)} › ${t.fullName} (${t.status})`);
        }
      }
    }
  } catch {
    console.error(`no test report from the Node ${line} run`);
    failed += 1;
    exit = 1;
  }
}
rmSync(dir, { recursive: true, force: true });
if (skippedNames.length > 0) {
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  console.log(`\n${skippedNames.length} skipped test${skippedNames.length === 1 ? '' : 's'}${ci ? ' — not allowed under CI=true (.ci/run installs what they need):' : ' (allowed outside CI; the warnings above say what is missing):'}`);
  for (const n of skippedNames) console.log(`  - ${n}`);
  if (ci) exit = 1;
}
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(exit);
