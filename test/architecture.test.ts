// The architecture of src/, checked: no import cycle, and each folder imports only from itself and
// from folders before it in ORDER. dependency-cruiser reads the imports (type-only ones included:
// a type import still ties a folder to another) and checks the rules generated from ORDER.
//
// To move a folder, add one or reorder: edit ORDER, nothing else.
import { cruise, type ICruiseResult, type IForbiddenRuleType } from 'dependency-cruiser';
import { expect, test } from 'vitest';

/**
 * The order of src/, lowest first: an entry may import from itself and from entries before it.
 * A name ending in `.ts` is a file directly in src/, any other a folder of src/.
 */
export const ORDER = [
  'node-check.ts', // imports nothing: fails on an unsupported Node before anything else loads
  'load',
  'core',
  'config',
  'balancers',
  'health',
  'discovery',
  'security',
  'routing',
  'request',
  'layers',
  'service',
  'istio', // Istio YAML → config: it knows the config types of service/
  'agent', // the mesh's http.Agent: node:http requests, parsed in process, dispatched through the mesh
  'inbound', // the service's own server: deadlines and context in, load reports, limits, drain, probes
  'mesh.ts',
  'observability', // the live view and metrics may import mesh.ts
  'index.ts', // the public entry: it re-exports everything, liveView and enableMetrics included
] as const;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const pattern = (unit: string) => (unit.endsWith('.ts') ? `^src/${escape(unit)}$` : `^src/${escape(unit)}/`);

/** The ORDER entry a path under src/ belongs to, or undefined. */
function unitOf(path: string): string | undefined {
  return ORDER.find((u) => new RegExp(pattern(u)).test(path));
}

const rules: IForbiddenRuleType[] = [
  { name: 'no-cycle', severity: 'error', from: { path: '^src/' }, to: { circular: true } },
  { name: 'resolved', severity: 'error', from: { path: '^src/' }, to: { couldNotResolve: true } },
  ...ORDER.slice(0, -1).map(
    (unit, i): IForbiddenRuleType => ({
      name: `order:${unit}`,
      severity: 'error',
      from: { path: pattern(unit) },
      to: { path: ORDER.slice(i + 1).map(pattern) },
    }),
  ),
];

let result: Promise<ICruiseResult> | undefined;
function graph(): Promise<ICruiseResult> {
  result ??= cruise(
    ['src'],
    { ruleSet: { forbidden: rules }, validate: true, tsPreCompilationDeps: true, doNotFollow: { path: 'node_modules' } },
    {},
    { tsConfig: { fileName: 'tsconfig.json' } },
  ).then((r) => r.output as ICruiseResult);
  return result;
}

test('dependency-cruiser reads the whole of src/ (the check below is not vacuous)', async () => {
  const g = await graph();
  const src = g.modules.filter((m) => m.source.startsWith('src/'));
  expect(src.length).toBeGreaterThan(20);
  const index = src.find((m) => m.source === 'src/index.ts');
  expect(index?.dependencies.filter((d) => d.resolved.startsWith('src/')).length).toBeGreaterThan(5);
});

test('every file of src/ sits in a folder of ORDER', async () => {
  const g = await graph();
  const outside = g.modules.map((m) => m.source).filter((s) => s.startsWith('src/') && unitOf(s) === undefined);
  const folders = [...new Set(outside.map((s) => s.split('/').slice(0, -1).join('/') || s))].sort();
  expect(folders, `not in the folder order (test/architecture.test.ts ORDER): ${folders.join(', ')}`).toEqual([]);
}, 60_000);

test('no import cycle in src/, and no import up the folder order', async () => {
  const g = await graph();
  const cycles = new Set<string>();
  const upward = new Set<string>();
  const other = new Set<string>();
  for (const v of g.summary.violations) {
    const types = (v.dependencyTypes ?? []).includes('type-only') ? ' (type-only)' : '';
    if (v.rule.name === 'no-cycle') {
      // dependency-cruiser reports a cycle once per edge; name it once, from its smallest file.
      const ring = [v.from, ...(v.cycle ?? []).map((c) => (typeof c === 'string' ? c : c.name))];
      ring.pop(); // the last element is `from` again
      const start = ring.indexOf([...ring].sort()[0]!);
      const rotated = [...ring.slice(start), ...ring.slice(0, start)];
      cycles.add(`cycle: ${[...rotated, rotated[0]].join(' → ')}`);
    } else if (v.rule.name.startsWith('order:')) {
      const from = unitOf(v.from)!;
      const to = unitOf(v.to)!;
      upward.add(`${v.from} → ${v.to}${types}: ${from} may not import ${to}, which comes after it`);
    } else {
      other.add(`${v.rule.name}: ${v.from} → ${v.to}`);
    }
  }
  const all = [...[...cycles].sort(), ...[...upward].sort(), ...[...other].sort()];
  expect(all, `architecture violations in src/ (order, lowest first: ${ORDER.join(' < ')}):\n${all.join('\n')}`).toEqual([]);
}, 60_000);
