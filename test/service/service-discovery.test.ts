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

test("a URL's userinfo in a source's error is redacted, whatever the scheme; so is an endpoint URL's in createMesh's refusal", () => {
  const warnings: string[] = [];
  let report: ((e: Error) => void) | null = null;
  mesh = createMesh({
    logger: { debug: () => {}, warn: (m: string) => void warnings.push(m) },
    discoveries: { registry: (_o: unknown, ctx: { error(e: Error): void }) => ((report = (e) => ctx.error(e)), { stop() {} }) },
    services: { a: { discovery: { type: 'registry' } } },
  } as unknown as MeshConfig);
  report!(new Error('GET https://admin:hunter2@registry.internal/v1/list: ECONNREFUSED; redis://:r3disPass@10.0.0.5:6379 down; also https://tok3nvalue@h/x'));
  const last = mesh.stats().services.a!.lastDiscoveryError ?? '';
  for (const text of [last, ...warnings]) {
    for (const secret of ['hunter2', 'admin', 'r3disPass', 'tok3nvalue']) expect(text).not.toContain(secret);
  }
  expect(last).toBe('GET https://[redacted]@registry.internal/v1/list: ECONNREFUSED; redis://[redacted]@10.0.0.5:6379 down; also https://[redacted]@h/x');
  let refusal = '';
  try {
    createMesh({ services: { b: { endpoints: ['http://svc:t0psecret@10.0.0.9:8080'] } } });
  } catch (err) {
    refusal = (err as Error).message;
  }
  expect(refusal).toBe('invalid config at services.b.endpoints[0].url: expected an origin only (scheme, host, port): credentials in the URL are not allowed, got "http://…@10.0.0.9:8080"');
});

test("once the service closed, its source's late reports are dropped: no warning, no event, not counted", async () => {
  const warnings: string[] = [];
  const debug: string[] = [];
  const events: string[] = [];
  let ctx: { error(e: Error): void; update(specs: unknown[]): void; signal: AbortSignal } | null = null;
  mesh = createMesh({
    logger: { debug: (m: string) => void debug.push(m), warn: (m: string) => void warnings.push(m) },
    discoveries: { registry: (_o: unknown, c: typeof ctx) => ((ctx = c), { stop() {} }) },
    services: { a: { discovery: { type: 'registry' } } },
  } as unknown as MeshConfig);
  mesh.on('discovery-error', (e) => void events.push(e.message));
  await mesh.close({ graceMs: 0 });
  expect(ctx!.signal.aborted).toBe(true);
  ctx!.error(new Error('late: the watch ended'));
  expect(warnings).toEqual([]);
  expect(events).toEqual([]);
  expect(mesh.stats().services.a).toMatchObject({ discoveryErrors: 0, lastDiscoveryError: undefined });
  expect(debug.some((m) => m.includes('late: the watch ended'))).toBe(true);
});
