/**
 * `tls: { mode: 'istio-mutual' }`: Istio's ISTIO_MUTUAL for a proxyless workload, the way the
 * sidecar does it (pilot's `conditionallyConvertToIstioMtls`).
 *
 * - Certificates: the files istio-agent writes for proxyless workloads (`OUTPUT_CERTS`, which the
 *   `grpc-agent` injection template sets to `/var/lib/istio/data`): `cert-chain.pem`, `key.pem`
 *   and `root-cert.pem`, re-read like any file-based TLS material (tls.ts).
 * - SNI: `outbound_.<port>_._.<host>` (pilot's `BuildDNSSrvSubsetKey`), `<host>` the service's
 *   FQDN and `<port>` its Service port. The subset part stays empty: meshlet's connections belong
 *   to the endpoint and are shared by every subset (Envoy has a cluster per subset).
 * - The server's identity: its certificate's URI SAN must be the SPIFFE ID
 *   `spiffe://<trustDomain>/ns/<namespace>/sa/<account>` of one of the service accounts of the
 *   destination's endpoints (their `serviceAccount`, which the `kubernetes` discovery takes from
 *   the pods), or, when configured, one of `subjectAltNames` / `serviceAccounts` (as Istio, these
 *   replace the pods' accounts).
 */
import { join as joinPath } from 'node:path';
import { InvalidConfigError } from '../core/errors.js';
import { describe, SERVICE_ACCOUNT } from '../core/endpoint-spec.js';
import { expectList, join, optNumber, optString, type Raw } from '../config/check.js';

/** Where istio-agent writes a proxyless workload's certificates. */
export const ISTIO_CERT_DIR = '/var/lib/istio/data';
export const ISTIO_FILES = { cert: 'cert-chain.pem', key: 'key.pem', ca: 'root-cert.pem' } as const;

/** `tls` with `mode: 'istio-mutual'`. */
export interface IstioMutualTlsConfig {
  mode: 'istio-mutual';
  /** The directory istio-agent writes the certificates to (its `OUTPUT_CERTS`). @default '/var/lib/istio/data' */
  certDir?: string;
  /** Path of the certificate chain. @default `<certDir>/cert-chain.pem` */
  cert?: string;
  /** Path of the private key. @default `<certDir>/key.pem` */
  key?: string;
  /** Path of the mesh's root certificate. @default `<certDir>/root-cert.pem` */
  ca?: string;
  /** The mesh's trust domain, in SPIFFE IDs. @default 'cluster.local' */
  trustDomain?: string;
  /** Accept these service accounts (`<namespace>/<name>`) instead of those of the endpoints' pods. */
  serviceAccounts?: string[];
  /** Accept these URI SANs (full SPIFFE IDs) instead of the endpoints' service accounts. */
  subjectAltNames?: string[];
  /** SNI sent. @default `outbound_.<port>_._.<service FQDN>` */
  servername?: string;
  /** The Service port in the SNI. @default the endpoint's port */
  port?: number;
  /** Lowest TLS version. @default 'TLSv1.2' */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** How often the files are re-read, ms. @default 5000 */
  reloadIntervalMs?: number | string;
}

export interface ParsedIstioMutual {
  readonly certDir: string;
  readonly trustDomain: string;
  /** `<namespace>/<name>` accounts configured, or null. */
  readonly serviceAccounts: readonly string[] | null;
  readonly port: number | undefined;
}

/** A trust domain: a lower-case DNS-like name. */
const TRUST_DOMAIN = /^[a-z0-9]([-a-z0-9._]{0,253}[a-z0-9])?$/;

/** The istio-mutual part of `tls`, and the three file paths it reads. */
export function parseIstioMutual(o: Raw, path: string): { istio: ParsedIstioMutual; cert: string; key: string; ca: string } {
  const certDir = optString(o, 'certDir', path) ?? ISTIO_CERT_DIR;
  const file = (k: 'cert' | 'key' | 'ca'): string => {
    const v = optString(o, k, path);
    if (v !== undefined && v.trimStart().startsWith('-----BEGIN')) {
      throw new InvalidConfigError(join(path, k), 'istio-mutual reads the files istio-agent writes and rotates: give a path, not PEM');
    }
    return v ?? joinPath(certDir, ISTIO_FILES[k]);
  };
  const trustDomain = optString(o, 'trustDomain', path) ?? 'cluster.local';
  if (!TRUST_DOMAIN.test(trustDomain)) throw new InvalidConfigError(join(path, 'trustDomain'), `expected a trust domain such as "cluster.local", got ${describe(trustDomain)}`);
  let serviceAccounts: string[] | null = null;
  if (o.serviceAccounts !== undefined) {
    const p = join(path, 'serviceAccounts');
    const list = expectList(o.serviceAccounts, p, 'a non-empty list of "<namespace>/<name>"');
    if (list.length === 0) throw new InvalidConfigError(p, 'expected a non-empty list of "<namespace>/<name>", got an empty one');
    serviceAccounts = list.map((v, i) => {
      if (typeof v !== 'string' || !SERVICE_ACCOUNT.test(v)) throw new InvalidConfigError(join(p, i), `expected "<namespace>/<service account>", got ${describe(v)}`);
      return v;
    });
  }
  const port = o.port === undefined ? undefined : optNumber(o, 'port', path, 0, { integer: true, min: 1, max: 65_535 });
  return { istio: Object.freeze({ certDir, trustDomain, serviceAccounts, port }), cert: file('cert'), key: file('key'), ca: file('ca') };
}

/** The SPIFFE ID of a service account `<namespace>/<name>`. */
export function spiffeId(trustDomain: string, account: string): string {
  const [ns, sa] = account.split('/');
  return `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`;
}

/** The SNI Envoy sends to a mesh destination with ISTIO_MUTUAL (pilot's `BuildDNSSrvSubsetKey`). */
export function istioSni(port: number, host: string, subset = ''): string {
  return `outbound_.${port}_.${subset}_.${host}`;
}

/**
 * The identities a server may present: fixed (configured), or the SPIFFE IDs of the destination's
 * endpoints, updated with every discovery snapshot. Until the first account is known, a check
 * waits (up to its time-out) instead of refusing, so the first requests after start-up do not
 * fail while the pod watch catches up with the endpoints.
 */
export class PeerIdentities {
  readonly #fixed: boolean;
  #ids: ReadonlySet<string>;
  readonly #waiters = new Set<() => void>();

  constructor(fixed: readonly string[] | null) {
    this.#fixed = fixed !== null;
    this.#ids = new Set(fixed ?? []);
  }

  /** The accounts of the current endpoints (ignored when the identities are configured). */
  setAccounts(trustDomain: string, accounts: Iterable<string | undefined>): void {
    if (this.#fixed) return;
    const ids = new Set<string>();
    for (const a of accounts) if (a !== undefined) ids.add(spiffeId(trustDomain, a));
    this.#ids = ids;
    if (ids.size > 0) for (const w of [...this.#waiters]) w();
  }

  get current(): ReadonlySet<string> {
    return this.#ids;
  }

  /** The identities, once at least one is known; an empty set after `timeoutMs` without any. */
  whenKnown(timeoutMs: number, callback: (ids: ReadonlySet<string>) => void): void {
    if (this.#ids.size > 0) return callback(this.#ids);
    const done = (): void => {
      clearTimeout(timer);
      this.#waiters.delete(done);
      callback(this.#ids);
    };
    const timer = setTimeout(done, timeoutMs);
    timer.unref?.();
    this.#waiters.add(done);
  }

  close(): void {
    for (const w of [...this.#waiters]) w();
  }
}
