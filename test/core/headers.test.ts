// Request headers in undici's three shapes; names like Object.prototype members are names.
import { expect, test } from 'vitest';
import { getHeader } from '../../src/core/headers.js';

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
