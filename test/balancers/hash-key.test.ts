// A request's hash, as Envoy's hash policies compute it (source/common/http/hash_policy.cc and
// its test/common/http/hash_policy_test.cc): XXH64 of a header, cookie or query value, several
// policies combined by rotate-and-XOR, `terminal` ending the list.
import { describe, expect, test } from 'vitest';
import type { Dispatcher } from 'undici';
import { cookieValue, evaluate, fieldHash, queryValue, requestCookie, type FieldPolicy } from '../../src/balancers/hash-key.js';
import type { HashOn, HashPolicy } from '../../src/balancers/config.js';
import { xxh64Latin1 } from '../../src/balancers/xxhash64.js';

const M = (1n << 64n) - 1n;
const FOO = 3728699739546630719n; // XXH64("foo"), from Envoy's hash_test.cc
const BAR = 5234164152756840025n; // XXH64("bar")
const rotl1 = (h: bigint): bigint => ((h << 1n) | (h >> 63n)) & M;

const out = new Uint32Array(2);
const value = (o: Uint32Array = out): bigint => (BigInt(o[0]!) << 32n) | BigInt(o[1]!);

/** Envoy's `HashUtil::xxHash64` over a span: each value seeded with the previous result (checked in xxhash64.test.ts). */
function span(...values: string[]): bigint {
  const o = new Uint32Array(2);
  for (const v of values) xxh64Latin1(v, o[0]!, o[1]!, o);
  return value(o);
}

function opts(headers: Dispatcher.DispatchOptions['headers'], path = '/'): Dispatcher.DispatchOptions {
  return { method: 'GET', path, headers };
}

function field(o: Dispatcher.DispatchOptions, policy: FieldPolicy): bigint | undefined {
  return fieldHash(o, policy, out) ? value() : undefined;
}

/** Evaluate `hashOn` over field policies of `o`, recording which policies were asked. */
function run(o: Dispatcher.DispatchOptions, hashOn: HashOn): { hash: bigint | undefined; asked: number } {
  const acc = new Uint32Array(2);
  const part = new Uint32Array(2);
  let asked = 0;
  const found = evaluate(hashOn, acc, part, (p: HashPolicy) => {
    asked++;
    return fieldHash(o, p as FieldPolicy, part);
  });
  return { hash: found ? value(acc) : undefined, asked };
}

describe('one policy', () => {
  test("a header's value hashes to XXH64(value, 0), in every header shape undici takes and under any spelling", () => {
    expect(field(opts({ 'x-user': 'foo' }), { header: 'x-user' })).toBe(FOO);
    expect(field(opts({ 'X-User': 'foo' }), { header: 'x-user' })).toBe(FOO);
    expect(field(opts(['X-User', 'foo']), { header: 'x-user' })).toBe(FOO);
    expect(field(opts([['x-user', 'foo']] as unknown as string[]), { header: 'x-user' })).toBe(FOO);
    expect(field(opts(new Map([['x-user', 'foo']]) as unknown as Dispatcher.DispatchOptions['headers']), { header: 'x-user' })).toBe(FOO);
    expect(field(opts({ other: 'foo' }), { header: 'x-user' })).toBeUndefined();
    expect(field(opts(undefined), { header: 'x-user' })).toBeUndefined();
  });

  test("a repeated header's values are sorted and chained, so their order does not matter (MultipleHeaderValues)", () => {
    const sorted = span('bar', 'foo');
    expect(sorted).not.toBe(span('foo', 'bar'));
    expect(field(opts({ 'x-user': ['foo', 'bar'] }), { header: 'x-user' })).toBe(sorted);
    expect(field(opts({ 'x-user': ['bar', 'foo'] }), { header: 'x-user' })).toBe(sorted);
    expect(field(opts(['x-user', 'foo', 'X-USER', 'bar']), { header: 'x-user' })).toBe(sorted);
  });

  test('a cookie hashes to XXH64 of its value, quotes stripped; an empty value is no value', () => {
    expect(field(opts({ cookie: 'a=1; sid=foo; b=2' }), { cookie: 'sid' })).toBe(FOO);
    expect(field(opts({ cookie: 'sid="foo"' }), { cookie: 'sid' })).toBe(FOO);
    expect(field(opts({ cookie: 'sid=' }), { cookie: 'sid' })).toBeUndefined();
    expect(field(opts({ cookie: 'sidx=foo' }), { cookie: 'sid' })).toBeUndefined();
    // HTTP/2 style: several Cookie headers; the first with the name wins.
    expect(field(opts({ cookie: ['a=1', 'sid=foo', 'sid=bar'] }), { cookie: 'sid' })).toBe(FOO);
  });

  test("cookies are read as Envoy reads them: spaces before a name skipped, the value as it stands", () => {
    expect(cookieValue('  sid=x y ;z=1', 'sid')).toBe('x y ');
    expect(cookieValue('a=1;sid=v=w', 'sid')).toBe('v=w');
    expect(cookieValue('sid ="q"', 'sid')).toBeUndefined(); // the name is "sid ", not "sid"
    expect(cookieValue('nocookie;sid', 'sid')).toBeUndefined();
    expect(requestCookie({ cookie: ['sid=', 'sid=later'] }, 'sid')).toBeUndefined();
  });

  test('a query parameter hashes to XXH64 of its first value as written in the path, undecoded', () => {
    expect(field(opts({}, '/p?u=foo&u=bar'), { query: 'u' })).toBe(FOO);
    expect(field(opts({}, '/p?x=1&u=foo'), { query: 'u' })).toBe(FOO);
    expect(field(opts({}, '/p?uu=foo'), { query: 'u' })).toBeUndefined();
    expect(field(opts({}, '/p'), { query: 'u' })).toBeUndefined();
    expect(queryValue('/p?u=a%20b+c', 'u')).toBe('a%20b+c');
    expect(queryValue('/p?a=1&u&b=2', 'u')).toBe('');
  });
});

describe('several policies', () => {
  const both: HashOn = [{ header: 'x-a' }, { header: 'x-b' }];

  test('each result is XORed into the previous one rotated left by one bit', () => {
    expect(run(opts({ 'x-a': 'foo', 'x-b': 'bar' }), both).hash).toBe(rotl1(FOO) ^ BAR);
    // The rotation keeps two equal values from cancelling out.
    expect(run(opts({ 'x-a': 'foo', 'x-b': 'foo' }), both).hash).toBe(rotl1(FOO) ^ FOO);
    expect(run(opts({ 'x-a': 'foo', 'x-b': 'foo' }), both).hash).not.toBe(0n);
  });

  test('a policy without a value is passed over; with none at all there is no hash', () => {
    expect(run(opts({ 'x-b': 'bar' }), both).hash).toBe(BAR);
    expect(run(opts({ 'x-a': 'foo' }), both).hash).toBe(FOO);
    expect(run(opts({}), both)).toEqual({ hash: undefined, asked: 2 });
  });

  test('terminal: once a terminal policy is reached with a hash, the rest are not evaluated', () => {
    const list: HashOn = [{ header: 'x-a', terminal: true }, { header: 'x-b' }];
    expect(run(opts({ 'x-a': 'foo', 'x-b': 'bar' }), list)).toEqual({ hash: FOO, asked: 1 });
    // No value from the terminal policy: evaluation goes on.
    expect(run(opts({ 'x-b': 'bar' }), list)).toEqual({ hash: BAR, asked: 2 });
    // A terminal policy with no value of its own still ends the list when an earlier one gave a hash.
    const later: HashOn = [{ header: 'x-a' }, { header: 'x-b', terminal: true }, { header: 'x-c' }];
    expect(run(opts({ 'x-a': 'foo', 'x-c': 'bar' }), later)).toEqual({ hash: FOO, asked: 2 });
  });
});
