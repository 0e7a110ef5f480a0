import { defineConfig } from 'tsup';

// ESM (.mjs) and CJS (.js) with type declarations for both. p-retry is ESM-only: the CJS build
// bundles it so `require('meshletjs')` works without relying on require(esm) interop.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node22',
  platform: 'node',
});
