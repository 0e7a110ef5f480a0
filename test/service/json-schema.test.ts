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
  };
  const legacy = { discovery: { type: 'consul', service: 'legacy' } }; // a type registered in code
  expect(errors({ unknownHosts: 'reject', services: { ...services, legacy } })).toEqual([]);
  const mesh = createMesh({ unknownHosts: 'reject', services });
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
});
