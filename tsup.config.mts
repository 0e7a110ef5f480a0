import { defineConfig } from 'tsup';

// ESM (.mjs) and CJS (.js) with type declarations for both. Dependencies stay external in both.
// p-retry and p-map are ESM-only: the CJS build `require`s them through Node's require(esm), on by
// default since 22.12 — every supported Node (≥ 22.19); test/package.test.ts requires the CJS build.
//
// src/node-check.ts (fails the import on Node < 22.19 with a clear message) is a separate entry
// and stays a separate file: a check inlined into the bundle would run after undici, which ESM
// evaluates first and which crashes on Node 20. The plugin keeps src/index.ts's first import of it
// external (pointing at the built file) instead of inlined; esbuild keeps import order, so that
// import/require comes before undici's in both bundles (test/package.test.ts checks the output,
// and runs it on Node 20).
export default defineConfig({
  entry: { index: 'src/index.ts', 'node-check': 'src/node-check.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node22',
  platform: 'node',
  // Code that needs its own file's path uses CommonJS's __filename (tsc reads src/ as CommonJS, so
  // import.meta is not allowed there); the ESM build gets it as import.meta.filename. Not tsup's
  // `shims`: its ESM shim is a chunk imported before ./node-check.mjs (see above).
  esbuildOptions(options, { format }) {
    if (format === 'esm') options.define = { ...options.define, __filename: 'import.meta.filename' };
  },
  esbuildPlugins: [
    {
      name: 'node-check-stays-external',
      setup(build) {
        const file = build.initialOptions.format === 'cjs' ? './node-check.js' : './node-check.mjs';
        build.onResolve({ filter: /^\.\/node-check\.js$/ }, () => ({ path: file, external: true }));
      },
    },
  ],
});
