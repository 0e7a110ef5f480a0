// The caller's remaining time, as read from a request's headers (src/inbound/deadline.ts).
import { expect, test } from 'vitest';
import { parseGrpcTimeout, requestBudgetMs } from '../../src/inbound/deadline.js';

test.each([
  ['100m', 100],
  ['2S', 2000],
  ['1M', 60_000],
  ['1H', 3_600_000],
  ['1500u', 1.5],
  ['2000000n', 2],
  ['0m', 0],
  ['99999999S', 99_999_999_000],
])('grpc-timeout %s is %d ms', (value, ms) => {
  expect(parseGrpcTimeout(value)).toBe(ms);
});

test.each(['', 'm', '100', '100ms', '123456789m', '-1S', '1.5S', '10s', 'S100'])('grpc-timeout %j is not a timeout', (value) => {
  expect(parseGrpcTimeout(value)).toBeUndefined();
});

test('the shortest of the three headers wins; malformed ones are ignored', () => {
  expect(requestBudgetMs({})).toBe(Infinity);
  expect(requestBudgetMs({ 'grpc-timeout': '2S', 'x-envoy-expected-rq-timeout-ms': '1500', 'x-meshlet-deadline-ms': '1800' })).toBe(1500);
  expect(requestBudgetMs({ 'grpc-timeout': '300m', 'x-meshlet-deadline-ms': '1800' })).toBe(300);
  expect(requestBudgetMs({ 'x-meshlet-deadline-ms': '250' })).toBe(250);
  expect(requestBudgetMs({ 'x-meshlet-deadline-ms': '0' })).toBe(0);
  expect(requestBudgetMs({ 'x-meshlet-deadline-ms': 'soon', 'grpc-timeout': '1 hour', 'x-envoy-expected-rq-timeout-ms': '-5' })).toBe(Infinity);
  expect(requestBudgetMs({ 'x-meshlet-deadline-ms': ['40', '9000'] as never })).toBe(40);
});

test("Envoy's 0 (a route whose timeout is turned off) is no deadline", () => {
  expect(requestBudgetMs({ 'x-envoy-expected-rq-timeout-ms': '0' })).toBe(Infinity);
  expect(requestBudgetMs({ 'x-envoy-expected-rq-timeout-ms': '0', 'x-meshlet-deadline-ms': '70' })).toBe(70);
});
