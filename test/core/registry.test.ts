import { afterEach, beforeEach, expect, test } from 'vitest';
import { request } from 'undici';
import {
  createMesh,
  registerBalancer,
  registerDiscovery,
  InvalidConfigError,
  type BalancerDefinition,
  type DiscoveryContext,
  type Mesh,
} from '../../src/index.js';
import { parseEndpointSpec } from '../../src/core/endpoint-spec.js';
import { closeAll, startBackends, type Backend } from '../support/backend.js';

// Custom balancers and discovery types these tests register, declared as users declare theirs.
declare module '../../src/balancers/config.js' {
  interface CustomBalancers { 'primary-first': { label?: string }; 'always-last': Record<string, never> }
}
declare module '../../src/discovery/discovery.js' {
  interface CustomDiscoveries { 'manual': Record<string, unknown>; 'silent': Record<string, unknown>; 'silent-2': Record<string, unknown>; }
}

let backends: Backend[];
const meshes: Mesh[] = [];

beforeEach(async () => {
  backends = await startBackends(3);
});

afterEach(async () => {
  await Promise.all(meshes.splice(0).map((m) => m.close()));
  await closeAll(backends);
});

async function backendOf(mesh: Mesh, url: string): Promise<string> {
  const res = await request(url, { dispatcher: mesh.dispatcher });
  return ((await res.body.json()) as { backend: string }).backend;
}

test('a custom balancer registered per mesh picks, with validated options', async () => {
  // "Prefer the endpoint labelled primary; otherwise the first one not skipped."
  const primaryFirst: BalancerDefinition<{ label: string }> = {
    parseOptions(raw, path) {
      if (typeof raw.label !== 'string') throw new InvalidConfigError(`${path}.label`, 'expected a string');
      return { label: raw.label };
    },
    create(endpoints, options, deps) {
      const ordered = [...endpoints].sort((a, b) => Number(b.labels[options.label] === 'true') - Number(a.labels[options.label] === 'true'));
      return {
        pick(ctx) {
          for (const e of ordered) if (!ctx.skip(e)) return e.picked;
          return deps.noEndpoint;
        },
      };
    },
  };
  const mesh = createMesh({
    balancers: { 'primary-first': primaryFirst },
    services: {
      a: {
        endpoints: [backends[0]!.url, { url: backends[1]!.url, labels: { primary: 'true' } }],
        balancer: { type: 'primary-first', label: 'primary' },
      },
    },
  });
  meshes.push(mesh);
  expect(await backendOf(mesh, 'http://a/')).toBe('b1');
  expect(await backendOf(mesh, 'http://a/')).toBe('b1');
  expect(() => createMesh({ balancers: { 'primary-first': primaryFirst }, services: { a: { endpoints: [backends[0]!.url], balancer: { type: 'primary-first' } } } })).toThrowError(
    /services\.a\.balancer\.label/,
  );
});

test('registerBalancer at module level: a plain factory function, taken names refused', async () => {
  registerBalancer('always-last', (endpoints, _o, deps) => ({
    pick: (ctx) => {
      for (let i = endpoints.length - 1; i >= 0; i--) if (!ctx.skip(endpoints[i]!)) return endpoints[i]!.picked;
      return deps.noEndpoint;
    },
  }));
  expect(() => registerBalancer('always-last', () => ({ pick: () => { throw new Error('unused'); } }))).toThrowError(/already registered/);
  expect(() => registerBalancer('round-robin', () => ({ pick: () => { throw new Error('unused'); } }))).toThrowError(/already registered/);
  expect(() => registerBalancer('Bad Name', () => ({ pick: () => { throw new Error('unused'); } }))).toThrowError(/kebab-case/);
  const mesh = createMesh({ services: { a: { endpoints: backends.map((b) => b.url), balancer: 'always-last' } } });
  meshes.push(mesh);
  expect(await backendOf(mesh, 'http://a/')).toBe('b2');
});

test('a custom discovery source: requests wait for its first answer, then flow; errors keep the last good set', async () => {
  let ctx!: DiscoveryContext;
  let stopped = false;
  registerDiscovery('manual', {
    create(_options, c) {
      ctx = c;
      return { stop: () => { stopped = true; } };
    },
  });
  const mesh = createMesh({ services: { a: { discovery: { type: 'manual' } } } });
  meshes.push(mesh);
  expect(mesh.stats().services.a!.ready).toBe(false);
  const pending = backendOf(mesh, 'http://a/');
  setTimeout(() => ctx.update([parseEndpointSpec(backends[2]!.url, 'test')]), 50);
  expect(await pending).toBe('b2');
  ctx.error(new Error('registry unreachable'));
  expect(await backendOf(mesh, 'http://a/')).toBe('b2');
  expect(mesh.stats().services.a).toMatchObject({ ready: true, discoveryErrors: 1, lastDiscoveryError: 'registry unreachable', discoveryUpdates: 1 });
  await mesh.close();
  expect(stopped).toBe(true);
  expect(ctx.signal.aborted).toBe(true);
});

test('a discovery source that never answers fails waiting requests after readyTimeout', async () => {
  registerDiscovery('silent', () => ({ stop() {} }));
  const mesh = createMesh({ services: { a: { discovery: { type: 'silent' }, readyTimeoutMs: 100 } } });
  meshes.push(mesh);
  const started = performance.now();
  const err = await request('http://a/', { dispatcher: mesh.dispatcher }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'NO_HEALTHY_ENDPOINT', service: 'a' });
  expect(performance.now() - started).toBeGreaterThanOrEqual(90);
});

test('closing the mesh fails requests still waiting for discovery', async () => {
  registerDiscovery('silent-2', () => ({ stop() {} }));
  const mesh = createMesh({ services: { a: { discovery: { type: 'silent-2' } } } });
  const p = request('http://a/', { dispatcher: mesh.dispatcher }).catch((e: unknown) => e);
  await mesh.close();
  expect(await p).toMatchObject({ code: 'MESH_CLOSED' });
});
