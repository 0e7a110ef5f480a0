// A header the request carries more than once is matched as Envoy matches it
// (HeaderUtility::matchHeaders → getAllOfHeaderAsString): its values joined with ',' in order —
// for every kind of condition, whatever shape the caller's headers take. Through createMesh: a
// route that answers by itself when it matches, a real loopback backend when it does not.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { request } from 'undici';
import { createMesh, type Mesh, type StringMatch } from '../../src/index.js';
import { closeAll, startBackend, type Backend } from '../support/backend.js';

let backend: Backend;
let mesh: Mesh | null = null;

beforeEach(async () => {
  backend = await startBackend('api');
});

afterEach(async () => {
  await mesh?.close();
  mesh = null;
  await closeAll([backend]);
});

type Headers = NonNullable<Parameters<typeof request>[1]>['headers'];

/** True when a route matching `x-rep` by `cond` takes a request with `headers`. */
async function matches(cond: StringMatch, headers: Headers): Promise<boolean> {
  await mesh?.close();
  mesh = createMesh({
    services: { api: { endpoints: [backend.url], routes: [{ match: [{ headers: { 'x-rep': cond } }], directResponse: { status: 200, body: 'matched' } }] } },
  });
  const res = await request('http://api/', { dispatcher: mesh.dispatcher, headers });
  return (await res.body.text()) === 'matched';
}

/** `x-rep: a` then `x-rep: b`, in each shape a caller may give headers in. */
const shapes: [string, (values: string[]) => Headers][] = [
  ['a flat array', (vs) => vs.flatMap((v) => ['x-rep', v])],
  ['an object with an array', (vs) => ({ 'x-rep': vs })],
  ['an array of pairs', (vs) => vs.map((v) => ['x-rep', v]) as unknown as Headers],
  ['two spellings of the name', (vs) => vs.flatMap((v, i) => [i === 0 ? 'X-Rep' : 'x-rep', v])],
];

describe.each(shapes)('a repeated header given as %s', (_shape, make) => {
  test('is matched as its values joined with "," in order, never value by value', async () => {
    expect(await matches({ exact: 'b' }, make(['a', 'b']))).toBe(false);
    expect(await matches({ exact: 'b' }, make(['b', 'a']))).toBe(false);
    expect(await matches({ exact: 'a,b' }, make(['a', 'b']))).toBe(true);
    expect(await matches({ exact: 'b,a' }, make(['a', 'b']))).toBe(false);
  });

  test('prefix, regex and present see the joined value too', async () => {
    expect(await matches({ prefix: 'b' }, make(['a', 'b']))).toBe(false);
    expect(await matches({ prefix: 'a,' }, make(['a', 'b']))).toBe(true);
    expect(await matches({ regex: 'b' }, make(['a', 'b']))).toBe(false);
    expect(await matches({ regex: 'a,b' }, make(['a', 'b']))).toBe(true);
    expect(await matches({ present: true }, make(['a', 'b']))).toBe(true);
  });
});

test('a header given once is matched on its value', async () => {
  expect(await matches({ exact: 'b' }, { 'x-rep': 'b' })).toBe(true);
  expect(await matches({ exact: 'b' }, ['x-rep', 'b'])).toBe(true);
  expect(await matches({ exact: 'b' }, { 'x-rep': ['b'] })).toBe(true);
});
