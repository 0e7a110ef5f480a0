// Values fromIstio used to pass on that createMesh then refused at a `services.<name>.…` path,
// naming no Istio document: each is now refused (what Istio's validation refuses) or applied at
// meshlet's cap and reported (what Istio takes), by document and field; a value at the bound
// passes fromIstio and createMesh.
import { expect, test } from 'vitest';
import { createMesh, fromIstio } from '../../src/index.js';

const withStatic = { discovery: () => ({ type: 'static' as const, endpoints: ['http://127.0.0.1:9'] }) };
const quiet = { debug: () => {}, warn: () => {} };

/** A VirtualService `r` with one http route. */
const vs = (route: string, hosts = '[r]'): string => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r }
spec:
  hosts: ${hosts}
  http:
  - ${route}
`;
/** A DestinationRule `r` with this trafficPolicy. */
const dr = (trafficPolicy: string): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: r }
spec:
  host: r
  trafficPolicy: ${trafficPolicy}
`;
const TO_R = 'route: [{ destination: { host: r } }]\n    ';

/** fromIstio's result, which createMesh builds. */
async function builds(yaml: string): Promise<ReturnType<typeof fromIstio>> {
  const result = fromIstio(yaml, withStatic);
  await createMesh({ services: result.services, logger: quiet }).close();
  return result;
}

test('a host with a port is refused at the document and field (Istio refuses it), not as a service name createMesh refuses', async () => {
  expect(() => fromIstio(vs(`${TO_R}timeout: 1s`, '["reviews:9080"]'), withStatic)).toThrow('VirtualService r: spec.hosts[0]: a host has no port: Istio refuses "reviews:9080"');
  expect(() => fromIstio(vs('route: [{ destination: { host: "ratings:9080" } }]'), withStatic)).toThrow('VirtualService r: spec.http[0].route[0].destination.host: a host has no port');
  expect(() => fromIstio('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: { name: r }\nspec: { host: "r:80" }\n', withStatic)).toThrow('DestinationRule r: spec.host: a host has no port');
  expect(() => fromIstio(vs(TO_R, '[under_score]'), withStatic)).toThrow('VirtualService r: spec.hosts[0]: expected a host name (letters, digits, "-" and "."), got a string ("under_score")');
  // The port goes in the destination; hosts in any case and with a final dot are host names.
  const { services } = await builds(vs('route: [{ destination: { host: ratings, port: { number: 9080 } } }]', '[Reviews.prod.svc.cluster.local.]'));
  expect(Object.keys(services).sort()).toEqual(['9080.ratings', 'ratings', 'reviews']);
});
