/**
 * A small cluster on the Kubernetes API test server (kube-apiserver.ts): Services with their
 * Pods (labelled `app` and `version`) and EndpointSlices (one per pod, on the pod's real backend
 * on 127.0.0.1), and Istio resources applied from YAML as the API server stores them.
 */
import { parseAllDocuments } from 'yaml';
import { startBackend, type Backend } from './backend.js';
import { slice, type KubeApiServer } from './kube-apiserver.js';

const COLLECTION: Record<string, 'destinationrules' | 'virtualservices'> = { DestinationRule: 'destinationrules', VirtualService: 'virtualservices' };

/**
 * Deploy `service` in `ns` with one pod per version (`${service}-${version}`), each a real backend
 * named so; `where` gives a pod's node and the zone its EndpointSlice says, by version.
 */
export async function deploy(
  api: KubeApiServer,
  ns: string,
  service: string,
  versions: readonly string[],
  where: Record<string, { zone?: string; node?: string }> = {},
): Promise<Backend[]> {
  api.apply('services', ns, { metadata: { name: service }, spec: { selector: { app: service }, ports: [{ name: 'http', port: 9080, targetPort: 9080 }] } });
  const out: Backend[] = [];
  for (const v of versions) {
    const b = await startBackend(`${service}-${v}`);
    out.push(b);
    const pod = `${service}-${v}`;
    api.apply('pods', ns, { metadata: { name: pod, labels: { app: service, version: v } }, spec: {}, status: { phase: 'Running' } });
    const { zone, node } = where[v] ?? {};
    api.apply('endpointslices', ns, slice(pod, service, [{ ip: '127.0.0.1', pod, ...(zone ? { zone } : {}), ...(node ? { node } : {}) }], Number(new URL(b.url).port)));
  }
  return out;
}

/** Apply every DestinationRule and VirtualService of `yaml` in `ns` (their own namespace ignored, as `kubectl apply -n`). */
export function applyYaml(api: KubeApiServer, ns: string, yaml: string): void {
  for (const doc of parseAllDocuments(yaml)) {
    const o = doc.toJS() as { kind: string; metadata: { name: string } } & Record<string, unknown>;
    const { apiVersion: _v, kind, ...rest } = o;
    const collection = COLLECTION[kind];
    if (collection === undefined) throw new Error(`applyYaml: ${kind} is not an Istio resource the test server stores`);
    api.apply(collection, ns, rest as typeof o);
  }
}

/** A Node with its `topology.kubernetes.io/region` and `…/zone` labels (nodes are cluster-scoped). */
export function node(api: KubeApiServer, name: string, region: string, zone: string): void {
  api.apply('nodes', '', { metadata: { name, labels: { 'topology.kubernetes.io/region': region, 'topology.kubernetes.io/zone': zone } }, spec: {}, status: {} });
}
