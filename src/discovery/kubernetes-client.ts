/**
 * How meshlet reaches the Kubernetes API: in-cluster (KUBERNETES_SERVICE_HOST/PORT and the
 * service-account token, CA and namespace files), a kubeconfig (token, client certificate and
 * key, CA, insecure-skip-tls-verify, context selection), or an explicit `apiServer` — the fields of
 * {@link KubernetesAccessConfig}, which the `kubernetes` discovery and `istio` both take. The bearer
 * token is re-read from its file every 60 s and after a 401, as projected tokens rotate. Nothing
 * here logs a token or a key; `redact` removes the current token from any text.
 *
 * Where the API server is comes from the config and the environment; when none of the above is
 * there, {@link locateApiServer} throws InvalidConfigError at createMesh (kubernetes.ts calls it
 * from parseOptions), not later.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { parse as parseYaml } from 'yaml';
import { urlHost } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import { redact } from './redact.js';

export interface KubeAccess {
  readonly server: string;
  readonly namespace: string;
  readonly dispatcher: Dispatcher;
  /** Current `Authorization` header value, or undefined. */
  authorization(): string | undefined;
  /** The API said 401: re-read the token now. */
  refreshToken(): void;
  /** `text` with the current token and anything credential-like redacted. */
  redact(text: string): string;
  close(): Promise<void>;
}

/**
 * How the mesh reaches the cluster's API server: the `kubernetes` discovery's options and those
 * of `istio` (MeshConfig), which watches the same API. With none of them set: in-cluster (the
 * service account), else the kubeconfig.
 */
export interface KubernetesAccessConfig {
  /** API server URL, e.g. `https://10.0.0.1:6443`. @default in-cluster, else the kubeconfig */
  apiServer?: string;
  /** Path of a kubeconfig file. @default $KUBECONFIG, else ~/.kube/config (outside a cluster) */
  kubeconfig?: string;
  /** The kubeconfig context to use. @default its current-context */
  context?: string;
  /** Bearer token. @default the kubeconfig user's, or in-cluster the service account's (when neither `apiServer` nor `kubeconfig` is given) */
  token?: string;
  /** File holding the bearer token, re-read every 60 s and after a 401. */
  tokenFile?: string;
  /** Directory of the service-account files. @default /var/run/secrets/kubernetes.io/serviceaccount */
  serviceAccountDir?: string;
}

/**
 * What {@link locateApiServer} and {@link resolveAccess} are given: the access fields as parsed
 * (each may be absent), the namespace the config names, and the environment to look in.
 */
export type KubeAccessOptions = { [K in keyof KubernetesAccessConfig]?: KubernetesAccessConfig[K] | undefined } & {
  namespace?: string | undefined;
  env?: NodeJS.ProcessEnv;
};

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
const TOKEN_REREAD_MS = 60_000;

const read = (path: string): string | undefined => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};
const b64 = (s: unknown): string | undefined => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : undefined);

interface Resolved {
  server: string;
  namespace: string | undefined;
  token?: string | undefined;
  tokenFile?: string | undefined;
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  insecure?: boolean;
}

const at = (path: string, key: string): string => (path ? `${path}.${key}` : key);

/**
 * Read a kubeconfig and pick its context (or the current one).
 * @param configPath where the kubeconfig was named in the config, for error paths
 * @throws InvalidConfigError when the file cannot be read or parsed, or lacks the context or its server
 */
export function fromKubeconfig(path: string, context: string | undefined, configPath = ''): Resolved {
  const text = read(path);
  const bad = (key: string, problem: string): InvalidConfigError => new InvalidConfigError(at(configPath, key), `kubernetes discovery: ${problem}`);
  if (text === undefined) throw bad('kubeconfig', `cannot read kubeconfig ${path}`);
  let cfg: Record<string, any>;
  try {
    cfg = (parseYaml(text) ?? {}) as Record<string, any>;
  } catch (err) {
    throw bad('kubeconfig', `kubeconfig ${path} is not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const list = (v: unknown): any[] => (Array.isArray(v) ? v : []);
  const ctxName = context ?? cfg['current-context'];
  const ctx = list(cfg.contexts).find((c: any) => c?.name === ctxName)?.context;
  if (!ctx) throw bad(context === undefined ? 'kubeconfig' : 'context', `kubeconfig ${path} has no context ${JSON.stringify(ctxName)}`);
  const cluster = list(cfg.clusters).find((c: any) => c?.name === ctx.cluster)?.cluster;
  const user = list(cfg.users).find((u: any) => u?.name === ctx.user)?.user ?? {};
  if (!cluster?.server) throw bad('kubeconfig', `kubeconfig cluster ${JSON.stringify(ctx.cluster)} has no server`);
  const base = (p: string): string => (p.startsWith('/') ? p : join(path, '..', p));
  return {
    server: String(cluster.server).replace(/\/$/, ''),
    namespace: ctx.namespace,
    token: user.token,
    tokenFile: user.tokenFile ? base(user.tokenFile) : undefined,
    ca: b64(cluster['certificate-authority-data']) ?? (cluster['certificate-authority'] ? read(base(cluster['certificate-authority'])) : undefined),
    cert: b64(user['client-certificate-data']) ?? (user['client-certificate'] ? read(base(user['client-certificate'])) : undefined),
    key: b64(user['client-key-data']) ?? (user['client-key'] ? read(base(user['client-key'])) : undefined),
    insecure: cluster['insecure-skip-tls-verify'] === true,
  };
}

/**
 * Where the API server is and how to authenticate, from the options and the environment, in this
 * order: `kubeconfig`, `apiServer`, in-cluster (KUBERNETES_SERVICE_HOST), `$KUBECONFIG`,
 * `~/.kube/config`.
 * @param path the discovery config's path, for error paths
 * @throws InvalidConfigError naming `path.apiServer` when none of them is there, or naming the
 *   field whose kubeconfig cannot be used
 */
export function locateApiServer(o: KubeAccessOptions, path = ''): Resolved {
  const env = o.env ?? process.env;
  const saDir = o.serviceAccountDir ?? SA_DIR;
  if (o.kubeconfig) return fromKubeconfig(o.kubeconfig, o.context, path);
  if (o.apiServer) return { server: o.apiServer.replace(/\/$/, ''), namespace: undefined };
  if (env.KUBERNETES_SERVICE_HOST) {
    return { server: `https://${urlHost(env.KUBERNETES_SERVICE_HOST)}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`, namespace: read(join(saDir, 'namespace'))?.trim(), tokenFile: join(saDir, 'token'), ca: read(join(saDir, 'ca.crt')) };
  }
  const home = join(homedir(), '.kube', 'config');
  if (env.KUBECONFIG) return fromKubeconfig(env.KUBECONFIG.split(':')[0]!, o.context, path);
  if (read(home) !== undefined) return fromKubeconfig(home, o.context, path);
  throw new InvalidConfigError(
    at(path, 'apiServer'),
    'kubernetes discovery: no API server to ask — not in a cluster (KUBERNETES_SERVICE_HOST is not set), no kubeconfig ($KUBECONFIG, ~/.kube/config or the "kubeconfig" option); give "apiServer" (with "token" or "tokenFile") or "kubeconfig"',
  );
}

/**
 * The namespace watched: the `namespace` option, else the kubeconfig context's or the service
 * account's, else `default`.
 */
export function namespaceOf(o: KubeAccessOptions, located: { readonly namespace?: string | undefined } = locateApiServer(o)): string {
  return o.namespace ?? located.namespace ?? 'default';
}

/**
 * Connect to the API server {@link locateApiServer} finds; `now` is the mesh's clock (ms), on which
 * the token file's 60 s re-read is timed. @throws InvalidConfigError as locateApiServer does
 */
export function resolveAccess(o: KubeAccessOptions, path = '', now: () => number = Date.now): KubeAccess {
  const r = locateApiServer(o, path);
  if (o.token) r.token = o.token;
  if (o.tokenFile) r.tokenFile = o.tokenFile;
  const tokenFile = r.tokenFile;
  let token = r.token ?? (tokenFile ? read(tokenFile)?.trim() : undefined);
  let readAt = now();
  const dispatcher = new Agent({
    connect: { ca: r.ca, cert: r.cert, key: r.key, rejectUnauthorized: !r.insecure },
    keepAliveTimeout: 30_000,
  });
  return {
    server: r.server,
    namespace: namespaceOf(o, r),
    dispatcher,
    authorization() {
      if (tokenFile && now() - readAt > TOKEN_REREAD_MS) this.refreshToken();
      return token ? `Bearer ${token}` : undefined;
    },
    redact: (text) => redact(text, [token, r.token, o.token]),
    refreshToken() {
      if (!tokenFile) return;
      token = read(tokenFile)?.trim() ?? token;
      readAt = now();
    },
    close: () => dispatcher.close(),
  };
}
