/**
 * How meshlet reaches the Kubernetes API: in-cluster (KUBERNETES_SERVICE_HOST/PORT and the
 * service-account token, CA and namespace files), a kubeconfig (token, client certificate and
 * key, CA, insecure-skip-tls-verify, context selection), or an explicit `apiServer`. The bearer
 * token is re-read from its file every 60 s and after a 401, as projected tokens rotate. Nothing
 * here logs a token or a key.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { parse as parseYaml } from 'yaml';

export interface KubeAccess {
  readonly server: string;
  readonly namespace: string;
  readonly dispatcher: Dispatcher;
  /** Current `Authorization` header value, or undefined. */
  authorization(): string | undefined;
  /** The API said 401: re-read the token now. */
  refreshToken(): void;
  close(): Promise<void>;
}

export interface KubeAccessOptions {
  apiServer?: string | undefined;
  kubeconfig?: string | undefined;
  context?: string | undefined;
  token?: string | undefined;
  tokenFile?: string | undefined;
  namespace?: string | undefined;
  /** Directory of the service-account files (for tests). @default /var/run/secrets/kubernetes.io/serviceaccount */
  serviceAccountDir?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

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

/** Read a kubeconfig and pick its context (or the current one). */
export function fromKubeconfig(path: string, context: string | undefined): Resolved {
  const text = read(path);
  if (text === undefined) throw new Error(`kubernetes discovery: cannot read kubeconfig ${path}`);
  const cfg = parseYaml(text) as Record<string, any>;
  const ctxName = context ?? cfg['current-context'];
  const ctx = (cfg.contexts ?? []).find((c: any) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`kubernetes discovery: kubeconfig ${path} has no context ${JSON.stringify(ctxName)}`);
  const cluster = (cfg.clusters ?? []).find((c: any) => c.name === ctx.cluster)?.cluster;
  const user = (cfg.users ?? []).find((u: any) => u.name === ctx.user)?.user ?? {};
  if (!cluster?.server) throw new Error(`kubernetes discovery: kubeconfig cluster ${JSON.stringify(ctx.cluster)} has no server`);
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

export function resolveAccess(o: KubeAccessOptions): KubeAccess {
  const env = o.env ?? process.env;
  const saDir = o.serviceAccountDir ?? SA_DIR;
  let r: Resolved;
  if (o.kubeconfig) r = fromKubeconfig(o.kubeconfig, o.context);
  else if (o.apiServer) r = { server: o.apiServer.replace(/\/$/, ''), namespace: undefined };
  else if (env.KUBERNETES_SERVICE_HOST) {
    const host = env.KUBERNETES_SERVICE_HOST.includes(':') ? `[${env.KUBERNETES_SERVICE_HOST}]` : env.KUBERNETES_SERVICE_HOST;
    r = { server: `https://${host}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`, namespace: read(join(saDir, 'namespace'))?.trim(), tokenFile: join(saDir, 'token'), ca: read(join(saDir, 'ca.crt')) };
  } else if (env.KUBECONFIG || read(join(homedir(), '.kube', 'config')) !== undefined) {
    r = fromKubeconfig(env.KUBECONFIG?.split(':')[0] ?? join(homedir(), '.kube', 'config'), o.context);
  } else {
    throw new Error('kubernetes discovery: no API server: not in a cluster (KUBERNETES_SERVICE_HOST), no kubeconfig, no apiServer');
  }
  if (o.token) r.token = o.token;
  if (o.tokenFile) r.tokenFile = o.tokenFile;
  const tokenFile = r.tokenFile;
  let token = r.token ?? (tokenFile ? read(tokenFile)?.trim() : undefined);
  let readAt = Date.now();
  const dispatcher = new Agent({
    connect: { ca: r.ca, cert: r.cert, key: r.key, rejectUnauthorized: !r.insecure },
    keepAliveTimeout: 30_000,
  });
  return {
    server: r.server,
    namespace: o.namespace ?? r.namespace ?? 'default',
    dispatcher,
    authorization() {
      if (tokenFile && Date.now() - readAt > TOKEN_REREAD_MS) this.refreshToken();
      return token ? `Bearer ${token}` : undefined;
    },
    refreshToken() {
      if (!tokenFile) return;
      token = read(tokenFile)?.trim() ?? token;
      readAt = Date.now();
    },
    close: () => dispatcher.close(),
  };
}
