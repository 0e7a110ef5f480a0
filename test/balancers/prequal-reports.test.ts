/**
 * prequal with load reports: a replica's own requests-in-flight count (ORCA named metric `rif`,
 * as mesh.inbound() sends) makes it hot for every client, not only the ones that sent its queue.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { prequal } from '../../src/balancers/prequal.js';
import { createMesh, type Mesh } from '../../src/index.js';
import { readLoadReport } from '../../src/load/orca.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import { build, counts, deps, endpoints } from '../support/endpoints.js';
import { seeded } from '../support/seeded.js';
import { tallyBy } from '../support/tally.js';

function report(e: Endpoint, rif: number, atMs: number, sentRif: number): void {
  const r = readLoadReport({ 'endpoint-load-metrics': `TEXT named_metrics.rif:${rif}` });
  if (r?.type !== 'report') throw new Error('test report did not parse');
  e.load.report(r.report, atMs, sentRif);
}

describe('prequal reads the RIF a replica reports', () => {
  test('a replica busy with other clients\' requests is hot while its report is at most 1 s old', () => {
    let now = 5000;
    const eps = endpoints([1, 1, 1, 1, 1]);
    for (const e of eps) e.load.observeLatency(1, now, 0); // all equally fast, none of ours in flight
    report(eps[0]!, 12, now, 0);
    const p = build(prequal, eps, deps(seeded(4), () => now), { reportedRif: true });
    expect(counts(p, eps, 1000)[0]).toBe(0);
    // Without the report it is as cold as the rest: the picker shares ties evenly.
    now += 1001;
    for (const e of eps) e.load.observeLatency(1, now, 0);
    expect(counts(p, eps, 1000)[0]).toBe(200);
  });

  test('our own requests in the report are not counted twice', () => {
    const now = 5000;
    const eps = endpoints([1, 1, 1, 1, 1]);
    for (const e of eps) e.load.observeLatency(1, now, 0);
    report(eps[0]!, 3, now, 3); // the replica's 3 in flight were all ours when the request was sent
    expect(eps[0]!.load.othersInFlight).toBe(0);
    report(eps[1]!, 5, now, 2);
    expect(eps[1]!.load.othersInFlight).toBe(3);
    report(eps[2]!, 1, now, 4); // fewer than we had in flight (some ended first): nobody else's
    expect(eps[2]!.load.othersInFlight).toBe(0);
    // A report without rif leaves the estimate as it was.
    const r = readLoadReport({ 'endpoint-load-metrics': 'TEXT cpu_utilization:0.5' });
    if (r?.type !== 'report') throw new Error('test report did not parse');
    eps[1]!.load.report(r.report, now + 10, 0);
    expect(eps[1]!.load.othersInFlight).toBe(3);
    expect(eps[1]!.load.othersAtMs).toBe(now);
  });
});

describe('through the mesh, with real replicas', () => {
  const servers: http.Server[] = [];
  let mesh: Mesh | undefined;

  afterEach(async () => {
    await mesh?.close({ graceMs: 0 });
    mesh = undefined;
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  async function replica(name: string, rif: number): Promise<string> {
    const s = http.createServer((_req, res) => {
      res.setHeader('x-backend', name);
      res.setHeader('endpoint-load-metrics', `TEXT named_metrics.rif:${rif}`);
      res.end('ok');
    });
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }

  const send = (m: Mesh, n: number): Promise<Record<string, number>> => tallyBy(m.dispatcher, 'http://api/', n);

  test('with reportedRif, a replica reporting 40 requests in flight gets only its first request', async () => {
    const urls = [await replica('busy', 40), await replica('a', 0), await replica('b', 0), await replica('c', 0)];
    // A frozen clock: every report stays current, and the result cannot depend on the machine's speed.
    mesh = createMesh({ services: { api: { endpoints: urls, balancer: { type: 'prequal', reportedRif: true } } }, now: () => 1000, random: seeded(5) });
    const by = await send(mesh, 100);
    expect(by.busy).toBe(1); // never sampled: probed once, then hot
    expect(by.a! + by.b! + by.c!).toBe(99);
    expect(mesh.stats().services.api!.endpoints[0]).toMatchObject({ reportedLoad: { rif: 40 } });
  });

  test('by default prequal goes by what this client sees, and the service never reads the reports', async () => {
    const urls = [await replica('busy', 40), await replica('a', 0), await replica('b', 0), await replica('c', 0)];
    mesh = createMesh({ services: { api: { endpoints: urls } }, now: () => 1000, random: seeded(5) });
    const by = await send(mesh, 100);
    // Equal latencies (the frozen clock), nothing in flight between sequential requests: ties rotate.
    expect(by).toEqual({ busy: 25, a: 25, b: 25, c: 25 });
    for (const e of mesh.stats().services.api!.endpoints) expect(e.reportedLoad).toBeUndefined();
  });

  test('reportedRif must be true or false', () => {
    expect(() => createMesh({ services: { api: { endpoints: ['http://127.0.0.1:1'], balancer: { type: 'prequal', reportedRif: 'yes' as never } } } })).toThrowError(
      /invalid config at services\.api\.balancer\.reportedRif: expected true or false, got a string \("yes"\)/,
    );
  });
});
