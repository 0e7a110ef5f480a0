// Writes dist/meshlet.schema.json: the JSON Schema of a JSON/YAML meshlet config, generated from
// the MeshConfig types (src/service/config-types.ts) — one declaration, so the schema cannot drift
// from what TypeScript checks. Fields that only code can give (logger, random, now,
// interceptors, registered balancers and discoveries, a hashOn function, a Redis client) are
// left out. Runs after tsup (npm run build, pretest).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createGenerator } from 'ts-json-schema-generator';

const root = join(import.meta.dirname, '..');
const schema = createGenerator({
  path: join(root, 'src', 'service', 'config-types.ts'),
  tsconfig: join(root, 'tsconfig.json'),
  type: 'MeshConfigJSON',
  functions: 'hide',
  skipTypeCheck: true,
  additionalProperties: false,
  expose: 'export',
  topRef: true,
}).createSchema('MeshConfigJSON');
const defs = schema.definitions;

// A duration is ms, or a string with units ('250ms', '2s', '1m30s'): the template literal type
// has no JSON Schema form, so its pattern is written here (src/config/duration.ts parses it).
defs.Duration = {
  description: defs.Duration.description,
  anyOf: [{ type: 'number', minimum: 0 }, { type: 'string', pattern: '^(\\d+(\\.\\d+)?(ms|h|m|s))+$' }],
};

// Balancers and discovery types registered in code (declared in TypeScript by module
// augmentation, empty here) may be configured in JSON by any name that is not a built-in's.
const builtinBalancers = defs.BalancerName.enum;
const customName = (builtins) => ({ type: 'string', not: { enum: builtins } });
defs.BalancerConfig.anyOf.push(customName(builtinBalancers), { type: 'object', properties: { type: customName(builtinBalancers) }, required: ['type'] });
const builtinSources = defs.BuiltinDiscoveryConfig.anyOf.map((d) => defs[d.$ref.split('/').pop()].properties.type.const);
defs.CustomDiscoveryConfig = {
  description: 'A discovery type registered in code (registerDiscovery): any type that is not a built-in one, with its own options.',
  type: 'object',
  properties: { type: customName(builtinSources) },
  required: ['type'],
};

// "@default" tags that name a rule rather than a value ('requestsPerSecond', 'Node's bundled
// roots') are documentation, not defaults: keep them in the description only.
const walk = (node) => {
  if (node === null || typeof node !== 'object') return;
  if ('default' in node && node.type !== undefined) {
    const types = [node.type].flat();
    const t = Array.isArray(node.default) ? 'array' : typeof node.default;
    if (!types.includes(t) && !(t === 'number' && types.includes('integer'))) delete node.default;
  }
  for (const v of Object.values(node)) walk(v);
};
walk(schema);

schema.$id = 'https://unpkg.com/meshletjs/dist/meshlet.schema.json';
schema.title = 'meshlet config';
writeFileSync(join(root, 'dist', 'meshlet.schema.json'), `${JSON.stringify(schema, null, 2)}\n`);
