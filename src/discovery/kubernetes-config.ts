/**
 * The `kubernetes` discovery options: as written in the config ({@link KubernetesDiscoveryConfig},
 * typed, with defaults) and parsed ({@link KubernetesOptions}). Parsing also finds the API
 * server (kubernetes-client.ts), so a mesh set up outside a cluster with nothing configured
 * fails at createMesh with InvalidConfigError, not later.
 */
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectObject, join, optBoolean, optEnum, optString, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { locateApiServer, type KubeAccessOptions, type KubernetesAccessConfig } from './kubernetes-client.js';

/** `{ type: 'kubernetes', service, port, … }` as written in the config. */
export interface KubernetesDiscoveryConfig extends KubernetesAccessConfig {
  type: 'kubernetes';
  /** The Kubernetes Service whose EndpointSlices are watched. */
  service: string;
  /** The Service port, by name (`'http'`) or target port number. */
  port: string | number;
  /** @default the kubeconfig context's namespace, the service account's (in-cluster, without `apiServer`), or 'default' */
  namespace?: string;
  /** Scheme of the endpoints. @default 'http' */
  protocol?: 'http' | 'https';
  /** Watch the Service's pods too and put their labels on the endpoints (for subsets). @default true */
  podLabels?: boolean;
  /**
   * Watch the cluster's nodes too and give each endpoint its node's region (`topology.kubernetes.io/region`;
   * and zone, when the slice has none), for locality balancing by region. Needs get/list/watch on `nodes`. @default false
   */
  nodeLabels?: boolean;
  /** Server-side timeout of each watch, 1 s – 1 h. @default a random 300–600 s per watch (client-go's) */
  watchTimeoutMs?: Duration;
  /** @deprecated use `watchTimeoutMs` (seconds here, ms there) */
  watchTimeoutSeconds?: number;
}

/** `kubernetes` options, parsed (durations in ms). */
export interface KubernetesOptions extends KubeAccessOptions {
  service: string;
  port: string | number;
  protocol: 'http' | 'https';
  podLabels: boolean;
  nodeLabels: boolean;
  /** undefined: a random 300–600 s per watch. */
  watchTimeoutMs: number | undefined;
}

/**
 * Validate the options (the config minus `type`); errors name a field under `path`.
 * @throws InvalidConfigError also when no API server can be found (field `apiServer`)
 */
export function parseKubernetesOptions(raw: Record<string, unknown>, path: string): KubernetesOptions {
  const o = expectObject(raw, path);
  rejectUnknown(
    o,
    ['service', 'namespace', 'port', 'protocol', 'podLabels', 'nodeLabels', 'watchTimeoutMs', 'apiServer', 'kubeconfig', 'context', 'token', 'tokenFile', 'serviceAccountDir'],
    path,
    ['watchTimeoutSeconds'],
  );
  const service = optString(o, 'service', path);
  if (!service) throw new InvalidConfigError(join(path, 'service'), 'required: the Kubernetes Service name');
  const port = o.port;
  if (!(typeof port === 'string' && port !== '') && !(typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new InvalidConfigError(join(path, 'port'), `expected a port name or number, got ${describe(port)}`);
  }
  const apiServer = optString(o, 'apiServer', path);
  if (apiServer !== undefined && !/^https?:\/\/[^/?#\s]+\/?$/.test(apiServer)) {
    throw new InvalidConfigError(join(path, 'apiServer'), `expected an http(s) URL such as "https://10.0.0.1:6443", got ${describe(apiServer)}`);
  }
  const parsed: KubernetesOptions = {
    service,
    port,
    protocol: optEnum(o, 'protocol', path, ['http', 'https'], 'http'),
    podLabels: optBoolean(o, 'podLabels', path, true),
    nodeLabels: optBoolean(o, 'nodeLabels', path, false),
    watchTimeoutMs: optDurationMs(o, 'watchTimeoutMs', path, undefined, { integer: true, min: 1_000, max: 3_600_000 }, { key: 'watchTimeoutSeconds', unitMs: 1_000 }),
    namespace: optString(o, 'namespace', path),
    apiServer,
    kubeconfig: optString(o, 'kubeconfig', path),
    context: optString(o, 'context', path),
    token: optString(o, 'token', path),
    tokenFile: optString(o, 'tokenFile', path),
    serviceAccountDir: optString(o, 'serviceAccountDir', path),
  };
  locateApiServer(parsed, path); // outside a cluster with nothing configured: InvalidConfigError now, not at start
  return parsed;
}
