// Protobuf integer bounds in Istio documents (istio/doc.ts count): an int32 field past 2147483647
// is refused by path, as the API server refuses it; uint32 fields take their own bound.
import { expect, test } from 'vitest';
import { fromIstio } from '../../src/index.js';

const split = (a: string, b: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: ${a} }
    - { destination: { host: reviews, subset: v2 }, weight: ${b} }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;

test('a route weight past int32 is refused naming the field; 1e308 no longer splits as NaN', () => {
  for (const w of ['1e308', '2147483648']) {
    expect(() => fromIstio(split(w, '1'))).toThrowError(
      /VirtualService reviews: spec\.http\[0\]\.route\[0\]\.weight: expected a whole number from 0 to 2147483647/,
    );
  }
  const { services } = fromIstio(split('2147483647', '2147483647'));
  expect(services.reviews!.routes![0]!.split).toEqual({ v1: 50, v2: 50 });
});

test('a uint32 field (outlierDetection.consecutive5xxErrors) takes values past int32, not past uint32', () => {
  const rule = (n: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: r }
spec:
  host: r
  trafficPolicy: { outlierDetection: { consecutive5xxErrors: ${n} } }
`;
  expect(() => fromIstio(rule('3000000000'))).not.toThrow();
  expect(() => fromIstio(rule('4294967296'))).toThrowError(/consecutive5xxErrors: expected a whole number from 0 to 4294967295/);
});
