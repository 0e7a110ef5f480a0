/**
 * The mesh's `istio` block ({@link IstioLiveConfig}), parsed. Cluster access is the `kubernetes`
 * discovery's (kubernetes-client.ts): the API server is located here, so a mesh outside a cluster
 * with nothing configured fails at createMesh with InvalidConfigError naming `istio.apiServer`.
 */
import { InvalidConfigError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectList, expectObject, join, optBoolean, optString, rejectUnknown } from '../config/check.js';
import { optDurationMs } from '../config/duration.js';
import { locateApiServer, type KubeAccessOptions } from '../discovery/kubernetes-client.js';

export interface ParsedIstioLive extends KubeAccessOptions {
  readonly namespaces: readonly string[];
  readonly port: string | number;
  readonly readyTimeoutMs: number;
  readonly watchTimeoutMs: number | undefined;
  readonly nodeLabels: boolean;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ACCESS = ['apiServer', 'kubeconfig', 'context', 'token', 'tokenFile', 'serviceAccountDir'] as const;
const KEYS = ['namespaces', 'port', 'readyTimeoutMs', 'watchTimeoutMs', 'nodeLabels', ...ACCESS];

/** @throws InvalidConfigError naming the field under `istio` */
export function parseIstioLive(raw: unknown, path = 'istio'): ParsedIstioLive {
  const o = expectObject(raw, path);
  rejectUnknown(o, KEYS, path);
  const list = expectList(o.namespaces, join(path, 'namespaces'), 'a list of Kubernetes namespaces');
  if (list.length === 0) throw new InvalidConfigError(join(path, 'namespaces'), 'expected at least one namespace to watch');
  const namespaces = list.map((ns, i) => {
    if (typeof ns !== 'string' || !NAMESPACE.test(ns)) throw new InvalidConfigError(join(join(path, 'namespaces'), i), `expected a Kubernetes namespace, got ${describe(ns)}`);
    return ns;
  });
  const port = o.port ?? 'http';
  if (!(typeof port === 'string' && port !== '') && !(typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new InvalidConfigError(join(path, 'port'), `expected a port name or number, got ${describe(port)}`);
  }
  const apiServer = optString(o, 'apiServer', path);
  if (apiServer !== undefined && !/^https?:\/\/[^/?#\s]+\/?$/.test(apiServer)) {
    throw new InvalidConfigError(join(path, 'apiServer'), `expected an http(s) URL such as "https://10.0.0.1:6443", got ${describe(apiServer)}`);
  }
  const access: KubeAccessOptions = { apiServer };
  for (const k of ACCESS) if (k !== 'apiServer') access[k] = optString(o, k, path);
  const parsed: ParsedIstioLive = Object.freeze({
    ...access,
    namespaces: Object.freeze([...new Set(namespaces)]),
    namespace: namespaces[0],
    port,
    readyTimeoutMs: optDurationMs(o, 'readyTimeoutMs', path, 5_000, { min: 0, max: 600_000 }),
    watchTimeoutMs: optDurationMs(o, 'watchTimeoutMs', path, undefined, { integer: true, min: 1_000, max: 3_600_000 }),
    nodeLabels: optBoolean(o, 'nodeLabels', path, false),
  });
  locateApiServer(parsed, path);
  return parsed;
}

/** The block as config again, for `mesh.toJSON()` (a literal token is a secret: left out). */
export function istioLiveToJSON(p: ParsedIstioLive): Record<string, unknown> {
  const out: Record<string, unknown> = { namespaces: [...p.namespaces], port: p.port, readyTimeoutMs: p.readyTimeoutMs };
  if (p.watchTimeoutMs !== undefined) out.watchTimeoutMs = p.watchTimeoutMs;
  if (p.nodeLabels) out.nodeLabels = true;
  for (const k of ACCESS) if (k !== 'token' && p[k] !== undefined) out[k] = p[k];
  return out;
}

/** The cluster access part, for the `kubernetes` discovery of the services that come up. */
export function accessOf(p: ParsedIstioLive): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ACCESS) if (p[k] !== undefined) out[k] = p[k];
  return out;
}
