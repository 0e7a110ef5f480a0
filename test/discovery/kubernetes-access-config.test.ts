// KubernetesAccessConfig (discovery/kubernetes-client.ts, the access module), exported from the package: the API-server
// access fields that the `kubernetes` discovery's config and `istio`'s both take — one declaration,
// so the two cannot drift. Checked by the type checker (test/typecheck.test.ts runs tsc over the tests).
import { expectTypeOf, test } from 'vitest';
import type { IstioLiveConfig, KubernetesAccessConfig, KubernetesDiscoveryConfig } from '../../src/index.js';

test('the kubernetes discovery and istio take the same access fields', () => {
  expectTypeOf<KubernetesDiscoveryConfig>().toMatchTypeOf<KubernetesAccessConfig>();
  expectTypeOf<IstioLiveConfig>().toMatchTypeOf<KubernetesAccessConfig>();
  expectTypeOf<Pick<KubernetesDiscoveryConfig, keyof KubernetesAccessConfig>>().toEqualTypeOf<KubernetesAccessConfig>();
  expectTypeOf<Pick<IstioLiveConfig, keyof KubernetesAccessConfig>>().toEqualTypeOf<KubernetesAccessConfig>();
  expectTypeOf<keyof KubernetesAccessConfig>().toEqualTypeOf<'apiServer' | 'kubeconfig' | 'context' | 'token' | 'tokenFile' | 'serviceAccountDir'>();
});
