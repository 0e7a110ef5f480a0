// The JSON Schema shipped in the package (dist/meshlet.schema.json, `meshletjs/schema.json`),
// generated from the config types at build time: real configs pass it, typos fail it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, expect, test } from 'vitest';
import { createMesh, type Mesh, type MeshConfig } from '../../src/index.js';

const schema = JSON.parse(readFileSync(join(__dirname, '../../dist/meshlet.schema.json'), 'utf8'));
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
const errors = (config: unknown): string[] => (validate(config) ? [] : validate.errors!.map((e) => `${e.instancePath} ${e.message}`));

const meshes: Mesh[] = [];
afterAll(async () => {
  await Promise.all(meshes.map((m) => m.close({ graceMs: 0 })));
});

test('what createMesh accepts from JSON passes the schema, toJSON output included', () => {
  const services: MeshConfig['services'] = {
      orders: {
        endpoints: ['http://127.0.0.1:3001', { url: 'http://127.0.0.1:3002', weight: 2, labels: { version: 'v2' } }],
        balancer: { type: 'ring-hash', hashOn: { header: 'x-user' } },
        timeoutMs: '2s',
        retry: { attempts: 3, perTryTimeoutMs: '250ms', retryOn: ['5xx'] },
        hedge: { delayPercentile: 90, maxDelayMs: '1s', budget: { percent: 3 } },
        perRequestBufferLimitBytes: 131_072,
        outlierDetection: { baseEjectionTimeMs: '1m' },
        subsets: { v2: { labels: { version: 'v2' } } },
        routes: [
          { match: [{ headers: { 'x-canary': { exact: 'true' } } }], subset: 'v2', hedge: { hedgeOnPerTryTimeout: true } },
          { match: [{ uri: { prefix: '/search' } }], hedge: { delayMs: '20ms', allowNonIdempotent: true } },
        ],
      },
      inventory: { discovery: { type: 'dns', host: 'inventory.shop.svc.cluster.local', port: 8080, keepForMs: '30s' } },
      reports: {
        endpoints: ['http://127.0.0.1:3003'],
        balancer: { type: 'weighted-round-robin', blackoutPeriodMs: '5s' },
        limits: { maxPendingRequests: 0, adaptive: { algorithm: 'vegas', alpha: 2, beta: 4 } },
      },
      gradient: { endpoints: ['http://127.0.0.1:3004'], limits: { adaptive: { minLimit: 5, windowMs: '200ms' } } },
      carts: {
        endpoints: [{ url: 'http://127.0.0.1:3005', hashKey: 'carts-1' }],
        balancer: { type: 'maglev', hashOn: [{ header: 'x-user', terminal: true }, { cookie: 'sid', ttlMs: '1h' }] },
      },
  };
  const legacy = { discovery: { type: 'consul', service: 'legacy' } }; // a type registered in code
  expect(errors({ unknownHosts: 'reject', services: { ...services, legacy } })).toEqual([]);
  const hosts = { unknownHosts: { passthrough: ['api.stripe.com', '.example.org'] }, namespace: 'shop', clusterDomain: 'cluster.local' };
  expect(errors({ ...hosts, services: { a: { endpoints: [], namespaces: ['shop', 'prod'] } } })).toEqual([]);
  const mesh = createMesh({ ...hosts, services });
  meshes.push(mesh);
  expect(errors(JSON.parse(JSON.stringify(mesh)))).toEqual([]);
});

test('typos and wrong values fail the schema, as they fail createMesh', () => {
  expect(errors({ services: { a: { endpoints: [], timeuotMs: 5 } } })).not.toEqual([]);
  expect(errors({ services: { a: { endpoints: [], timeoutMs: '2 seconds' } } })).not.toEqual([]);
  expect(errors({ services: { a: { endpoints: [], hedge: { delay: 5 } } } })).not.toEqual([]);
  expect(errors({ services: { a: { endpoints: [], balancer: { type: 'ring-hash', tableSize: 7 } } } })).not.toEqual([]);
  expect(errors({ services: { a: { discovery: { type: 'dns', host: 'x', port: 80, keepFor: 'x' } } } })).not.toEqual([]);
  expect(errors({ services: { a: { endpoints: [], pool: { conections: 1 } } } })).not.toEqual([]);
  expect(errors({ unknownHosts: 'drop', services: {} })).not.toEqual([]);
  expect(errors({ unknownHosts: { passthrough: 'api.stripe.com' }, services: {} })).not.toEqual([]);
  expect(errors({ unknownHosts: { allow: ['api.stripe.com'] }, services: {} })).not.toEqual([]);
  expect(errors({ services: { a: { endpoints: [], namespaces: 'shop' } } })).not.toEqual([]);
  expect(errors({ services: { a: { endpoints: [], limits: { adaptive: { algorithm: 'vegas', queueSize: 4 } } } } })).not.toEqual([]);
  expect(errors({ services: { a: { endpoints: [], balancer: { type: 'weighted-round-robin', blackoutPeriod: 1 } } } })).not.toEqual([]);
  expect(errors({ services: { a: { endpoints: [], balancer: { type: 'maglev', hashOn: [{ header: 'x', terminal: 1 }] } } } })).not.toEqual([]);
});

test('a config file that names the schema in $schema (as the README says) passes the schema and createMesh, which ignores it', () => {
  const config = { $schema: './node_modules/meshletjs/schema.json', services: { orders: { endpoints: ['http://127.0.0.1:3001'] } } };
  expect(errors(config)).toEqual([]);
  const m = createMesh(config);
  meshes.push(m);
  expect(m.toJSON()).not.toHaveProperty('$schema');
  expect(() => createMesh({ ...config, $schema: 42 } as never)).toThrowError(/invalid config at \$schema: expected the schema's URL or path, got a number \(42\)/);
});
