// The Host of a mirrored request is Envoy's: `-shadow` after the host name, before the port.
// (Mirroring through a mesh: test/layers/route.test.ts and test/istio/tasks.test.ts.)
import { expect, test } from 'vitest';
import { shadowHost } from '../../src/layers/mirror.js';

test.each([
  ['catalog', 'catalog-shadow'],
  ['httpbin:8000', 'httpbin-shadow:8000'],
  ['reviews.shop.svc.cluster.local:9080', 'reviews.shop.svc.cluster.local-shadow:9080'],
  ['[fd00::1]:8080', '[fd00::1]-shadow:8080'],
  ['[fd00::1]', '[fd00::1]-shadow'],
])('%s → %s', (host, shadow) => {
  expect(shadowHost(host)).toBe(shadow);
});
