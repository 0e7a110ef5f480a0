// How an endpoint's host is written in URLs and Host headers (core/endpoint-spec.ts urlHost) and
// what overTls and an endpoint's hash key make of IPv6 addresses, bracketed or not.
import { expect, test } from 'vitest';
import { overTls, parseEndpointSpec, urlHost } from '../../src/core/endpoint-spec.js';
import { Endpoint } from '../../src/core/endpoint.js';
import type { Dispatcher } from 'undici';

test('urlHost brackets an IPv6 address once, and leaves names and IPv4 addresses alone', () => {
  expect(urlHost('::1')).toBe('[::1]');
  expect(urlHost('[::1]')).toBe('[::1]');
  expect(urlHost('0:0:0:0:0:0:0:1')).toBe('[0:0:0:0:0:0:0:1]');
  expect(urlHost('127.0.0.1')).toBe('127.0.0.1');
  expect(urlHost('api.default.svc')).toBe('api.default.svc');
});

test('overTls keeps an IPv6 endpoint a valid origin', () => {
  const spec = overTls(parseEndpointSpec('http://[::1]:8080', 'api'));
  expect(spec.origin).toBe('https://[::1]:8080');
  expect(new URL(spec.origin).port).toBe('8080');
  expect(overTls(parseEndpointSpec('http://127.0.0.1:8080', 'api')).origin).toBe('https://127.0.0.1:8080');
});

test("an IPv6 endpoint's hash key is Envoy's [address]:port", () => {
  const e = new Endpoint(parseEndpointSpec('http://[::1]:9000', 'api'), {} as Dispatcher);
  expect(e.hashKey).toBe('[::1]:9000');
});

test('an endpoint URL on port 0 is refused, naming the field; port 1 and the default ports are not', () => {
  expect(() => parseEndpointSpec('http://127.0.0.1:0', 'services.api.endpoints[0]')).toThrow(
    expect.objectContaining({ code: 'INVALID_CONFIG', path: 'services.api.endpoints[0].url' }),
  );
  expect(() => parseEndpointSpec({ url: 'https://[::1]:00' }, 'e')).toThrow(/port from 1 to 65535, got 0/);
  expect(parseEndpointSpec('http://127.0.0.1:1', 'e').port).toBe(1);
  expect(parseEndpointSpec('http://127.0.0.1', 'e').port).toBe(80);
  expect(parseEndpointSpec('https://127.0.0.1', 'e').port).toBe(443);
});
