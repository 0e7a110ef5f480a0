/**
 * The adaptive limit under a lower `maxRequests`: what is in force is the cap, and that is what
 * `concurrency-limit` events report — an algorithm moving above the cap changes nothing in force
 * and announces nothing. Latency comes from an injected clock, randomness from a seeded source;
 * the backend holds each round.
 */
import { afterEach, beforeEach, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';
import { hold } from '../support/holding.js';
import { seeded } from '../support/seeded.js';

let backends: Backend[];
let mesh: Mesh | null = null;

beforeEach(async () => {
  backends = await startBackends(1);
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll(backends);
});

for (const algorithm of ['gradient2', 'vegas'] as const) {
  test(`${algorithm}: concurrency-limit events carry the limit in force (capped by maxRequests), only when it moves`, async () => {
    const held = hold(backends[0]!);
    let t = 0;
    mesh = createMesh({
      now: () => t,
      // vegas probes its minimum RTT at random moments: seeded, so the run is the same every time.
      random: seeded(7),
      services: {
        api: {
          endpoints: [backends[0]!.url],
          retry: false,
          // The algorithm starts at 14, above the cap of 12, and may grow to 20.
          // vegas: no probe of its no-load latency within the test (it would take the slow answers as
          // the new normal and stop coming down, at a random moment).
          limits: {
            maxRequests: 12,
            maxPendingRequests: 0,
            adaptive: { algorithm, initialLimit: 14, minLimit: 2, maxLimit: 20, windowMs: 0, ...(algorithm === 'vegas' ? { probeMultiplier: 1_000_000 } : {}) },
          },
        },
      },
    });
    const m = mesh;
    const inForce = () => m.stats().services.api!.concurrencyLimit;
    const events: { limit: number; previous: number; inForce: number }[] = [];
    m.on('concurrency-limit', (e) => events.push({ limit: e.limit, previous: e.previous, inForce: inForce() }));
    /** As many requests as the limit in force allows, answered `latencyMs` after they arrived. */
    async function round(latencyMs: number): Promise<void> {
      const k = inForce();
      const results = Array.from({ length: k }, (_, i) => request(`http://api/${i}`, { dispatcher: m.dispatcher }).then(async (r) => (await r.body.dump(), r.statusCode)));
      const arrived = await Promise.all(Array.from({ length: k }, () => held.next()));
      t += latencyMs;
      for (const h of arrived) h.answer();
      expect(await Promise.all(results)).toEqual(Array(k).fill(200));
    }

    expect(inForce()).toBe(12);
    // Fast answers with the limit in use: the algorithm grows towards 20, the cap holds 12.
    for (let i = 0; i < 10; i++) await round(10);
    expect(inForce()).toBe(12);
    expect(events).toEqual([]);
    // Slow answers: the limit comes down below the cap, and the events say from what it was in force.
    for (let i = 0; i < 40 && inForce() > 9; i++) await round(400);
    expect(inForce()).toBeLessThanOrEqual(9);
    expect(events.length).toBeGreaterThan(0);
    expect(events[0]!.previous).toBe(12);
    for (const [i, e] of events.entries()) {
      expect(e.limit).toBe(e.inForce);
      expect(e.limit).toBeLessThanOrEqual(12);
      if (i > 0) expect(e.previous).toBe(events[i - 1]!.limit);
      // Each moved by at least 10 % (and 1) of the last one announced.
      expect(Math.abs(e.limit - e.previous)).toBeGreaterThanOrEqual(Math.max(1, e.previous * 0.1));
    }
  });
}
