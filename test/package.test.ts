// The built package (dist/, made by `npm test`'s pretest build) loads with both `import` and
// `require`, and errors from one copy are recognised by the other.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';

const root = process.cwd(); // vitest runs from the repository root
const built = existsSync(join(root, 'dist', 'index.js')) && existsSync(join(root, 'dist', 'index.mjs'));

function run(code: string, ext: 'cjs' | 'mjs'): string {
  const flag = ext === 'cjs' ? [] : ['--input-type=module'];
  return execFileSync(process.execPath, [...flag, '-e', code], { cwd: root, encoding: 'utf8' }).trim();
}

describe('the built package', () => {
  test('dist/ exists (npm test builds it first)', () => {
    expect(built, 'dist/ is missing: run `npm test`, which builds before testing').toBe(true);
  });

  test('require("meshletjs") gives the public API (CJS build)', () => {
    const out = run(
      `const m = require('meshletjs');
       const mesh = m.createMesh({ services: { a: { endpoints: ['http://127.0.0.1:9'] } } });
       console.log(typeof m.createMesh, typeof m.registerBalancer, typeof m.MeshError, typeof mesh.dispatcher.dispatch);
       mesh.close();`,
      'cjs',
    );
    expect(out).toBe('function function function function');
  });

  test('import "meshletjs" gives the public API (ESM build)', () => {
    const out = run(
      `import { createMesh, registerDiscovery, isMeshError } from 'meshletjs';
       const mesh = createMesh({ services: { a: { endpoints: ['http://127.0.0.1:9'] } } });
       console.log(typeof createMesh, typeof registerDiscovery, typeof isMeshError, typeof mesh.fetch);
       await mesh.close();`,
      'mjs',
    );
    expect(out).toBe('function function function function');
  });

  test('an error from the CJS copy is a MeshError to the ESM copy', () => {
    const out = run(
      `import { createRequire } from 'node:module';
       import { MeshError, isMeshError } from 'meshletjs';
       const cjs = createRequire(import.meta.url)('meshletjs');
       let e; try { cjs.createMesh({ services: { a: {} } }); } catch (err) { e = err; }
       console.log(e instanceof MeshError, isMeshError(e), e.code, e instanceof cjs.InvalidConfigError);`,
      'mjs',
    );
    expect(out).toBe('true true INVALID_CONFIG true');
  });

  test('instanceof works for every error subclass across the ESM and CJS copies, and registrations are shared', () => {
    const out = run(
      `import { createRequire } from 'node:module';
       import * as esm from 'meshletjs';
       const cjs = createRequire(import.meta.url)('meshletjs');
       let e; try { cjs.createMesh({ services: { a: {} } }); } catch (err) { e = err; }
       const closed = new cjs.MeshClosedError();
       cjs.registerBalancer('from-cjs', (eps) => ({ pick: () => eps[0].picked }));
       const m = esm.createMesh({ services: { a: { endpoints: ['http://127.0.0.1:1'], balancer: 'from-cjs' } } });
       console.log(e instanceof esm.InvalidConfigError, e instanceof esm.TimeoutError, closed instanceof esm.MeshClosedError,
         closed instanceof esm.InvalidConfigError, m.stats().services.a.balancer);
       await m.close();`,
      'mjs',
    );
    expect(out).toBe('true false true false from-cjs');
  });

  test('the CJS build retries (p-retry is ESM-only: the CJS bundle must still call it)', () => {
    const out = run(
      `const http = require('node:http');
       const { createMesh } = require('meshletjs');
       const { request } = require('undici');
       const a = http.createServer((q, r) => { r.writeHead(503); r.end(); });
       const b = http.createServer((q, r) => r.end('ok'));
       a.listen(0, '127.0.0.1', () => b.listen(0, '127.0.0.1', async () => {
         const mesh = createMesh({ services: { s: { endpoints: ['http://127.0.0.1:' + a.address().port, 'http://127.0.0.1:' + b.address().port], balancer: 'round-robin' } }, random: () => 0 });
         const r = await request('http://s/', { dispatcher: mesh.dispatcher });
         console.log(r.statusCode, await r.body.text(), mesh.stats().services.s.retries);
         await mesh.close(); a.close(); b.close();
       }));`,
      'cjs',
    );
    expect(out).toBe('200 ok 1');
  });
});

// The machines' own Node (/usr/bin/node) is 20, which meshlet does not support: undici 8 crashes
// there at load with "Cannot read properties of undefined (reading 'bind')". The package must fail
// first, naming the supported lines. The check is dist/node-check.*, loaded before undici.
const OLD_NODE = '/usr/bin/node';
const oldMajor = existsSync(OLD_NODE) ? Number(spawnSync(OLD_NODE, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.split('.')[0]) : NaN;
const hasOldNode = oldMajor < 22;
if (!hasOldNode) console.warn(`skipping the unsupported-Node tests: ${OLD_NODE} is not a Node.js older than 22`);

describe('on an unsupported Node.js (older than 22.19)', () => {
  test('both bundles load the Node check before anything else (it must precede undici)', () => {
    const esm = readFileSync(join(root, 'dist', 'index.mjs'), 'utf8');
    const cjs = readFileSync(join(root, 'dist', 'index.js'), 'utf8');
    expect(esm.match(/^import\b.*$/m)?.[0]).toBe('import "./node-check.mjs";');
    expect(cjs.match(/require\("[^"]+"\)/)?.[0]).toBe('require("./node-check.js")');
  });

  for (const [how, code, flags] of [
    ['import', `import('meshletjs').then(() => console.log('loaded'))`, ['--input-type=module']],
    ['require', `require('meshletjs'); console.log('loaded')`, []],
  ] as const) {
    test.skipIf(!hasOldNode)(`${how}('meshletjs') on ${OLD_NODE} fails with a message naming Node 22 and 24`, () => {
      const r = spawnSync(OLD_NODE, [...flags, '-e', code], { cwd: root, encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stdout).not.toContain('loaded');
      expect(r.stderr).toContain('meshlet (the meshletjs package) supports Node.js 22 (22.19 or later) and 24; this is Node.js v');
      expect(r.stderr).toContain('ERR_MESHLET_UNSUPPORTED_NODE');
      expect(r.stderr).not.toContain("reading 'bind'");
    });
  }
});
