// Whatever the YAML library reports becomes an InvalidConfigError naming the document and, where
// the library knows it, the line and column (issue #11 §4). Data JSON cannot carry is refused by path.
import { expect, test } from 'vitest';
import { fromIstio, InvalidConfigError } from '../../src/index.js';
import { readYaml } from '../../src/istio/yaml.js';

const bomb = ['- &a [1, 2]', '- &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]', '- &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]', '- [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]'].join('\n');

test.each([
  ['an alias without an anchor', 'a: *nope', 'document 1: not valid YAML: Unresolved alias (the anchor must be set before the alias): nope at line 1, column 4'],
  ['an alias to an anchor of an earlier document', 'a: &x 1\n---\nb: *x', 'document 2: not valid YAML: Unresolved alias (the anchor must be set before the alias): x at line 3, column 4'],
  ['too many aliases (a "billion laughs")', bomb, 'document 1: not valid YAML: Excessive alias count indicates a resource exhaustion attack'],
  ['a duplicate key', 'a: 1\nb: 2\na: 3', 'document 1: not valid YAML: Map keys must be unique at line 3, column 1'],
  ['bad indentation', 'a:\n  b: 1\n c: 2', 'document 1: not valid YAML: All mapping items must start at the same column at line 3, column 1'],
  ['a tab as indentation', 'a:\n\tb: 1', 'document 1: not valid YAML: Tabs are not allowed as indentation at line 2, column 1'],
  ['an unterminated string', 'a: 1\n---\nb: "open', 'document 2: not valid YAML: Missing closing "quote at line 3, column 9'],
  // The parser reports its own stack overflow; with a larger stack the depth bound below says so.
  ['nesting deep enough to exhaust the parser', '['.repeat(20_000) + ']'.repeat(20_000), 'document 1: '],
  ['nesting deeper than any Istio object', '['.repeat(70) + ']'.repeat(70), 'document 1: ' + '[0]'.repeat(64) + ': nested deeper than 64 levels'],
  ['an alias inside its own anchor (a cycle)', 'spec: &s\n  host: r\n  trafficPolicy: *s', 'document 1: spec.trafficPolicy: a YAML alias refers to a node that contains it'],
  ['a list as a key', '? [a]\n: 1', 'document 1: expected a string key, got a list as a key'],
  ['a map as a key', 'spec:\n  ? { a: 1 }\n  : 1', 'document 1: spec: expected a string key, got a map as a key'],
  ['a null key', '? ~\n: 1', 'document 1: expected a string key, got null as a key'],
  ['one key twice once read as text', '1: a\n"1": b', 'document 1: 1: the key appears twice'],
  ['binary data', 'a: !!binary aGVsbG8=', 'document 1: a: expected JSON data (a string, number, boolean, null, list or map), got a YAML value of type Buffer'],
  ['a set', 'a: !!set { x, y }', 'document 1: a: expected JSON data (a string, number, boolean, null, list or map), got a YAML value of type Set'],
  ['a YAML 1.1 timestamp', '%YAML 1.1\n---\nspec:\n  at: 2001-12-14', 'document 1: spec.at: expected JSON data (a string, number, boolean, null, list or map), got a YAML value of type Date'],
])('%s', (_name, yaml, message) => {
  let thrown: unknown;
  try {
    fromIstio(yaml);
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(InvalidConfigError);
  expect((thrown as Error).message).toContain(`invalid config at ${message}`);
});

test('input that is not text, and options that are not options, are refused', () => {
  expect(() => fromIstio(42 as unknown as string)).toThrowError(new InvalidConfigError('fromIstio', 'expected YAML text, got a number (42)'));
  expect(() => fromIstio('', null as never)).toThrowError(new InvalidConfigError('fromIstio options', 'expected an object, got null'));
  expect(() => fromIstio('', { strict: 'yes' } as never)).toThrowError(/fromIstio options.strict: expected true or false/);
  expect(() => fromIstio('', { discovery: {} } as never)).toThrowError(/fromIstio options.discovery: expected a function/);
  expect(() => fromIstio('', { strcit: true } as never)).toThrowError(/fromIstio options.strcit: unknown option/);
});

test('a document that is not an object is refused by its number', () => {
  expect(() => fromIstio('---\n- a\n')).toThrowError(new InvalidConfigError('document 1', 'expected a Kubernetes object, got an array'));
  expect(() => fromIstio('a: 1\n---\njust text\n')).toThrowError(/document 2: expected a Kubernetes object, got a string/);
});

test('maps become objects without a prototype whose keys are all own, __proto__ included', () => {
  const [doc] = readYaml('spec:\n  __proto__: { polluted: 1 }\n  constructor: 2\n  hasOwnProperty: 3\n') as [Record<string, Record<string, unknown>>];
  const spec = doc.spec!;
  expect(Object.getPrototypeOf(spec)).toBeNull();
  expect(Object.keys(spec)).toEqual(['__proto__', 'constructor', 'hasOwnProperty']);
  expect(Object.getPrototypeOf(spec.__proto__)).toBeNull();
  expect(spec.toString).toBeUndefined();
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

test('aliases that do not loop are read (shared, not a cycle), and merge keys of YAML 1.1 apply', () => {
  const [doc] = readYaml('base: &b { version: v1 }\na: *b\nb: *b\n') as [Record<string, unknown>];
  expect(JSON.parse(JSON.stringify(doc))).toEqual({ base: { version: 'v1' }, a: { version: 'v1' }, b: { version: 'v1' } });
  const [merged] = readYaml('%YAML 1.1\n---\nbase: &b { version: v1 }\nlabels:\n  <<: *b\n  app: x\n') as [Record<string, unknown>];
  expect(JSON.parse(JSON.stringify(merged))).toEqual({ base: { version: 'v1' }, labels: { version: 'v1', app: 'x' } });
});
