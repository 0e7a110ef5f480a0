// A logger that fails — throws, returns a rejected promise, is async and throws — never reaches
// meshlet's caller, and never becomes an unhandled rejection that would end the process (issue #11 §3).
import { afterEach, describe, expect, test } from 'vitest';
import { createMesh, type Mesh, type MeshConfig } from '../../src/index.js';

const meshes: Mesh[] = [];
afterEach(async () => {
  await Promise.all(meshes.splice(0).map((m) => m.close()));
});

describe('a logger that fails never reaches the caller or the process', () => {
  // A discovery that fails at once makes the service warn: the first discovery error is the warning the issue saw crash.
  const failing = { create: (_o: unknown, ctx: { error(e: Error): void }) => (ctx.error(new Error('registry down')), { stop() {} }) };
  const failingMesh = (logger: unknown) => createMesh({ discoveries: { failing }, services: { a: { discovery: { type: 'failing' } } }, logger } as unknown as MeshConfig);

  test.each([
    ['throws', () => { throw new Error('logger is broken'); }],
    ['returns a rejected promise', () => Promise.reject(new Error('log shipper is down'))],
    ['is async and throws', async () => { throw new Error('log shipper is down'); }],
  ])('a warn that %s', async (_name, warn) => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let calls = 0;
      const mesh = failingMesh({ warn: (...args: unknown[]) => (calls++, (warn as (...a: unknown[]) => unknown)(...args)) });
      meshes.push(mesh);
      expect(calls).toBe(1); // the discovery failure was warned about
      expect(mesh.stats().services.a).toMatchObject({ discoveryErrors: 1, lastDiscoveryError: 'registry down' });
      // Unhandled rejections are reported after the microtask queue drains, before the next macrotask.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
