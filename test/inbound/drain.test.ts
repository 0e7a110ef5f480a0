// Graceful drain (issue 14 §6): readiness fails, responses get Connection: close, the servers
// stop listening, requests in flight finish within the grace, then the outbound pools close —
// and a rolling restart of one of two replicas under load loses no request.
import http from 'node:http';
import { afterEach, beforeEach, expect, test, vi } from 'vitest';
import { request } from 'undici';
import { createMesh, InvalidConfigError, type Mesh, type MeshEventMap } from '../../src/index.js';
import { startBackend, type Backend } from '../support/backend.js';
import { httpError, httpRequest } from '../support/http-client.js';
import { Gate, serve, type Served } from '../support/inbound.js';

let leaf: Backend;
let mesh: Mesh;
let gate: Gate;
let front: Served;
let probes: Served;
const phases: MeshEventMap['drain'][] = [];
const warnings: string[] = [];
/** Not pooled: each request on its own connection unless a test keeps one. */
const fresh = new http.Agent({ keepAlive: false });

beforeEach(async () => {
  gate = new Gate();
  phases.length = 0;
  warnings.length = 0;
  leaf = await startBackend('leaf');
  mesh = createMesh({ services: { leaf: { endpoints: [leaf.url] } }, logger: { warn: (m: string) => warnings.push(m), debug: () => {} } });
  mesh.on('drain', (e) => phases.push(e));
  front = await serve(
    mesh.inbound(async (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === '/hold') await gate.pass();
      const r = await request('http://leaf/x', { dispatcher: mesh.dispatcher }).catch((err: Error) => err);
      if (r instanceof Error) return void res.writeHead(502).end((r as { code?: string }).code);
      await r.body.dump();
      res.end('served');
    }),
  );
  probes = await serve(mesh.probes());
});

afterEach(async () => {
  vi.useRealTimers();
  gate.open();
  await front.close();
  await probes.close();
  await mesh.close();
  await leaf.close();
});

const ready = async () => (await httpRequest(`${probes.url}/readyz`, { agent: fresh })).status;

test('drain: readiness fails at once, the request in flight finishes with Connection: close, the server stops, then the mesh closes', async () => {
  const keptAlive = new http.Agent({ keepAlive: true });
  const held = httpRequest(`${front.url}/hold`, { agent: keptAlive });
  await gate.arrived(1);
  expect(await ready()).toBe(200);
  const drained = mesh.drain({ servers: [front.server], graceMs: 10_000 });
  expect(phases).toEqual([{ phase: 'started', inFlight: 1 }]);
  expect(await ready()).toBe(503);
  expect((await httpRequest(`${probes.url}/healthz`, { agent: fresh })).status).toBe(200);
  expect(mesh.stats().inbound!.draining).toBe(true);
  expect((await httpError(`${front.url}/x`, { agent: fresh })).code).toBe('ECONNREFUSED'); // no longer listening
  gate.open();
  const r = await held;
  expect([r.status, r.body, r.headers.connection]).toEqual([200, 'served', 'close']);
  await drained;
  expect(phases.map((p) => p.phase)).toEqual(['started', 'idle', 'closed']);
  expect(phases[1]!.inFlight).toBe(0);
  const after = await request('http://leaf/x', { dispatcher: mesh.dispatcher }).catch((e: unknown) => e);
  expect(after).toMatchObject({ code: 'MESH_CLOSED' });
  keptAlive.destroy();
});

test('during delayMs new requests are still served, with Connection: close; then the server stops listening', async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const drained = mesh.drain({ servers: [front.server], graceMs: 10_000, delayMs: 5_000 });
  const r = await httpRequest(`${front.url}/x`, { agent: fresh });
  expect([r.status, r.headers.connection]).toEqual([200, 'close']);
  expect(front.server.listening).toBe(true);
  await vi.advanceTimersByTimeAsync(5_000);
  expect(front.server.listening).toBe(false);
  await drained;
  expect(phases.map((p) => p.phase)).toEqual(['started', 'idle', 'closed']);
});

test("when the grace ends with a request still in flight, its connection is cut, it is logged, and the mesh closes", async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const held = httpRequest(`${front.url}/hold`, { agent: fresh }).then(
    () => 'answered',
    (err: Error & { code?: string }) => err.code,
  );
  await gate.arrived(1);
  const drained = mesh.drain({ servers: [front.server], graceMs: 1_000 });
  await vi.advanceTimersByTimeAsync(999);
  expect(phases.map((p) => p.phase)).toEqual(['started']);
  await vi.advanceTimersByTimeAsync(1);
  await drained;
  expect(await held).toBe('ECONNRESET');
  expect(phases).toEqual([
    { phase: 'started', inFlight: 1 },
    { phase: 'idle', inFlight: 1 },
    { phase: 'closed', inFlight: expect.any(Number) },
  ]);
  expect(warnings.some((w) => /grace of 1000 ms ended with 1 requests in flight/.test(w))).toBe(true);
});

test('drain is idempotent, and checks its options before anything starts', async () => {
  expect(() => mesh.drain({ graceMs: -1 })).toThrow(expect.objectContaining({ path: 'drain.graceMs' }));
  expect(() => mesh.drain({ graceMs: 100, delayMs: 200 })).toThrow(expect.objectContaining({ path: 'drain.delayMs' }));
  // Durations as in the config: '1s' is 1000 ms (and a delay past it is refused), 'soon' none.
  expect(() => mesh.drain({ graceMs: '1s', delayMs: '1001ms' })).toThrow(expect.objectContaining({ path: 'drain.delayMs', message: expect.stringContaining('at most graceMs (1000)') }));
  expect(() => mesh.drain({ graceMs: 'soon' as never })).toThrow(expect.objectContaining({ path: 'drain.graceMs' }));
  expect(() => mesh.drain({ servers: [{} as never] })).toThrow(expect.objectContaining({ path: 'drain.servers[0]' }));
  expect(() => mesh.drain({ grace: 5 } as never)).toThrow(InvalidConfigError);
  expect(mesh.stats().inbound!.draining).toBe(false);
  const first = mesh.drain();
  expect(mesh.drain({ graceMs: 1 })).toBe(first);
  await first;
  expect(() => mesh.handleSignals({ signals: ['TERM' as never] })).toThrow(expect.objectContaining({ path: 'handleSignals.signals[0]' }));
});

test('a rolling restart of one of two replicas under load loses no request', async () => {
  const replicas = await Promise.all(
    ['a', 'b'].map(async (name) => {
      const m = createMesh({ services: {} });
      const served = await serve(
        m.inbound((_req: http.IncomingMessage, res: http.ServerResponse) => {
          setImmediate(() => res.end(name)); // some requests overlap
        }),
      );
      return { name, mesh: m, served, probes: await serve(m.probes()) };
    }),
  );
  const [a, b] = replicas as [(typeof replicas)[number], (typeof replicas)[number]];
  const client = createMesh({ services: { api: { endpoints: [a.served.url, b.served.url], balancer: 'round-robin' } } });
  const total = 300;
  const bodies: string[] = [];
  let sent = 0;
  let drain: Promise<void> | null = null;
  let removed: Promise<void> | null = null;
  const worker = async () => {
    while (sent < total) {
      sent++;
      const r = await request('http://api/x', { dispatcher: client.dispatcher });
      expect(r.statusCode).toBe(200);
      bodies.push(await r.body.text());
      if (bodies.length === 100 && drain === null) {
        // Replica a gets SIGTERM. Kubernetes sees its readiness fail and takes it out of the
        // Service's endpoints; meanwhile requests keep arriving at it.
        drain = a.mesh.drain({ servers: [a.served.server], graceMs: 10_000 });
        removed = (async () => {
          const probe = await httpRequest(`${a.probes.url}/readyz`, { agent: fresh });
          expect(probe.status).toBe(503);
          client.setEndpoints('api', [b.served.url]);
        })();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: 8 }, worker));
    await drain;
    await removed;
    expect(bodies).toHaveLength(total);
    expect(bodies.filter((x) => x === 'a').length).toBeGreaterThan(0);
    expect(bodies.filter((x) => x === 'b').length).toBeGreaterThan(0);
    expect(a.mesh.stats().inbound).toMatchObject({ draining: true, inFlight: 0 });
    expect(b.mesh.stats().inbound!.draining).toBe(false);
  } finally {
    await client.close();
    for (const r of replicas) {
      await r.served.close();
      await r.probes.close();
      await r.mesh.close();
    }
  }
});
