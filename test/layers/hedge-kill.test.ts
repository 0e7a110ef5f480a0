/**
 * Hedging and retries together when a replica stops under load: a copy or a retry that meets the
 * dead replica is tried elsewhere, and the caller sees no error (the retry budget is not drained).
 */
import { afterEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { startBackends, closeAll, type Backend } from '../support/backend.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;
afterEach(async () => {
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  await closeAll(backends);
});

for (const hedge of [false, true]) {
  test(`hedge ${hedge}: a replica stopped under load loses no request`, async () => {
    backends = await startBackends(3);
    mesh = createMesh({ services: { api: { endpoints: backends.map((b) => b.url), retry: { attempts: 2 }, ...(hedge ? { hedge: true } : {}) } } });
    const errors: string[] = [];
    let sent = 0;
    const worker = async () => {
      for (let i = 0; i < 150; i++) {
        sent++;
        if (sent === 300) await backends[1]!.stop();
        try {
          const r = await request('http://api/x', { dispatcher: mesh!.dispatcher });
          await r.body.dump();
          if (r.statusCode !== 200) errors.push(String(r.statusCode));
        } catch (err) {
          errors.push((err as { code?: string }).code ?? String(err));
        }
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
    expect(errors).toEqual([]);
  });
}
