// What a discovery source reports reaches the events, the logger and the stats redacted, whatever
// the source — a custom one too: a registry's error that quotes a credential does not spread it.
import { afterEach, expect, test } from 'vitest';
import { createMesh, type Mesh, type MeshConfig } from '../../src/index.js';

let mesh: Mesh | null = null;
afterEach(async () => {
  await mesh?.close();
  mesh = null;
});

test("a custom source's error that quotes a credential is redacted in stats, events and the log", () => {
  const warnings: string[] = [];
  const events: string[] = [];
  let report: ((e: Error) => void) | null = null;
  mesh = createMesh({
    logger: { debug: () => {}, warn: (m: string) => void warnings.push(m) },
    discoveries: { registry: (_o: unknown, ctx: { error(e: Error): void }) => ((report = (e) => ctx.error(e)), { stop() {} }) },
    services: { a: { discovery: { type: 'registry' } } },
  } as unknown as MeshConfig);
  mesh.on('discovery-error', (e) => void events.push(e.message));
  report!(new Error('registry refused: Authorization: Bearer sekret-value-123 (token=abcdef99)'));
  const last = mesh.stats().services.a!.lastDiscoveryError ?? '';
  for (const text of [last, ...events, ...warnings]) {
    expect(text).not.toContain('sekret-value-123');
    expect(text).not.toContain('abcdef99');
  }
  expect(last).toMatch(/^registry refused: Authorization: \[redacted\]/);
  expect(events).toHaveLength(1);
  expect(warnings).toHaveLength(1);
});
