// The whole project type-checks (src, tests, benchmarks, examples' TypeScript): among other
// things this is what proves every `@ts-expect-error` line in the tests still expects an error.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { expect, test } from 'vitest';

const root = join(__dirname, '..');

test('tsc --noEmit passes over the project', async () => {
  const out = await new Promise<string>((done) => {
    execFile(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', join(root, 'tsconfig.json')], { cwd: root, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      done(err ? `${stdout}${stderr}` || String(err) : ''),
    );
  });
  expect(out.split('\n').filter((l) => /error TS/.test(l))).toEqual([]);
}, 120_000);
