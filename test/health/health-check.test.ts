/**
 * Active health checks, through the public API on real loopback servers: what a check's path may
 * be, that a check is the whole answer (headers and body) within `timeoutMs`, and that checks run
 * over a connection of their own, never the traffic's.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { createMesh, isMeshError, type Mesh, type MeshEventMap, type ServiceConfig } from '../../src/index.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

let backends: Backend[] = [];
let mesh: Mesh | null = null;
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  await mesh?.close({ graceMs: 0 });
  mesh = null;
  for (const c of cleanups.splice(0).reverse()) await c();
  await closeAll(backends);
  backends = [];
});

function meshFor(endpoints: string[], service: Partial<ServiceConfig>): Mesh {
  return (mesh = createMesh({
    services: { api: { endpoints, retry: false, circuitBreaker: false, outlierDetection: false, ...service } },
    random: () => 0,
    logger: { warn: () => {}, debug: () => {} },
  }));
}

/** Resolves with the first `health-check` event. */
const nextCheckEvent = (m: Mesh) => new Promise<MeshEventMap['health-check']>((resolve) => m.once('health-check', resolve));

describe('healthCheck.path: a request target, refused at createMesh when it is not one', () => {
  test.each([['/h\r\nX-Injected: 1'], ['/h\nx'], ['/h ealth'], ['/h\tx'], ['/h\u0000'], ['/h\u007f'], ['/héalth'], ['/h#frag'], ['/h%zz'], ['/h%2']])(
    'refuses %j at services.api.healthCheck.path',
    (path) => {
      let caught: unknown;
      try {
        createMesh({ services: { api: { endpoints: ['http://127.0.0.1:1'], healthCheck: { path } } } }).destroy();
      } catch (err) {
        caught = err;
      }
      expect(isMeshError(caught) && caught.code).toBe('INVALID_CONFIG');
      expect((caught as { path?: string }).path).toBe('services.api.healthCheck.path');
    },
  );

  test('takes path and query characters (RFC 3986 pchar, "/", "?", %XX) and sends the path as written', async () => {
    backends = await startBackends(1);
    const path = "/v1/health;v=1/a:b@c/!$&'()*+,~-._?probe=1&next=%2Fx/y?z";
    const seen = new Promise<string>((resolve) => {
      backends[0]!.handler = (req, res) => {
        res.end('ok');
        resolve(req.url!);
      };
    });
    meshFor([backends[0]!.url], { healthCheck: { path, intervalMs: 10 } });
    expect(await seen).toBe(path);
  });
});
