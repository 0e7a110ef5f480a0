// Request headers in undici's three shapes; names like Object.prototype members are names.
import { expect, test } from 'vitest';
import { getHeader, hostOnly, withHeaders, withMissingHeaders } from '../../src/core/headers.js';

test.each(['constructor', '__proto__', 'hasownproperty', 'tostring'])('a header named %s is read only when the request carries it', (name) => {
  expect(getHeader({ accept: '*/*' }, name)).toBeUndefined();
  expect(getHeader({}, name)).toBeUndefined();
  const own: Record<string, string> = {};
  Object.defineProperty(own, name, { value: 'v', enumerable: true });
  expect(getHeader(own, name)).toBe('v');
  expect(getHeader(['accept', '*/*', name, 'v'], name)).toBe('v');
  expect(getHeader([['accept', '*/*']] as never, name)).toBeUndefined();
});

test('an object header is found whatever its case', () => {
  expect(getHeader({ 'X-User': 'a' }, 'x-user')).toBe('a');
  expect(getHeader({ Constructor: ['b', 'c'] }, 'constructor')).toBe('b');
});

// withHeaders / withMissingHeaders: the inbound side's deadline and context headers, in every shape.
test('withHeaders replaces a header of the same name in any case and shape, and leaves the rest as given', () => {
  const set = ['x-meshlet-deadline-ms', '90'];
  expect(withHeaders(undefined, set)).toEqual({ 'x-meshlet-deadline-ms': '90' });
  const obj = { 'X-Meshlet-Deadline-Ms': '500', accept: '*/*' };
  expect(withHeaders(obj, set)).toEqual({ accept: '*/*', 'x-meshlet-deadline-ms': '90' });
  expect(obj).toEqual({ 'X-Meshlet-Deadline-Ms': '500', accept: '*/*' }); // the caller's object is not touched
  expect(withHeaders(['accept', '*/*', 'X-MESHLET-DEADLINE-MS', '500'], set)).toEqual(['accept', '*/*', 'x-meshlet-deadline-ms', '90']);
  expect(withHeaders([['accept', '*/*']] as never, set)).toEqual(['accept', '*/*', 'x-meshlet-deadline-ms', '90']);
  expect(withHeaders(new Map([['accept', '*/*']]) as never, set)).toEqual(['accept', '*/*', 'x-meshlet-deadline-ms', '90']);
  const odd = ['accept'];
  expect(withHeaders(odd as never, set)).toBe(odd); // undici refuses it as it is
});

test('withMissingHeaders adds only what the request lacks, never replacing the caller\'s own, and returns the same object when nothing is missing', () => {
  const add = ['x-request-id', 'id-1', 'traceparent', 'tp-1'];
  expect(withMissingHeaders(undefined, add)).toEqual({ 'x-request-id': 'id-1', traceparent: 'tp-1' });
  expect(withMissingHeaders({ 'X-Request-Id': 'mine' }, add)).toEqual({ 'X-Request-Id': 'mine', traceparent: 'tp-1' });
  const full = { 'x-request-id': 'a', TraceParent: 'b' };
  expect(withMissingHeaders(full, add)).toBe(full);
  expect(withMissingHeaders(['TRACEPARENT', 'mine'], add)).toEqual(['TRACEPARENT', 'mine', 'x-request-id', 'id-1']);
  expect(withMissingHeaders([['x-request-id', 'mine']] as never, add)).toEqual(['x-request-id', 'mine', 'traceparent', 'tp-1']);
  expect(withMissingHeaders({ a: '1' }, [])).toEqual({ a: '1' });
});

test('withMissingHeaders reads an iterable of pairs once (a generator cannot be read twice)', () => {
  let reads = 0;
  function* pairs(): Generator<[string, string]> {
    reads++;
    yield ['x-request-id', 'mine'];
    yield ['accept', '*/*'];
  }
  expect(withMissingHeaders(pairs() as never, ['x-request-id', 'id-1', 'b3', '1'])).toEqual(['x-request-id', 'mine', 'accept', '*/*', 'b3', '1']);
  expect(reads).toBe(1);
  expect(() => withMissingHeaders([['a', 'b', 'c']] as never, ['b3', '1'])).toThrow(/key-value pair/);
});

test('hostOnly: one frozen { host } per value, reused while the value repeats', () => {
  const a = hostOnly('api');
  expect(a).toEqual({ host: 'api' });
  expect(Object.isFrozen(a)).toBe(true);
  expect(hostOnly('api')).toBe(a);
  const b = hostOnly('api:9080');
  expect(b).toEqual({ host: 'api:9080' });
  expect(hostOnly('api')).toEqual({ host: 'api' });
  expect(hostOnly('api')).not.toBe(b);
});
