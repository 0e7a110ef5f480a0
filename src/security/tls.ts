/**
 * TLS to endpoints: CA bundle, client certificate and key (mutual TLS), SNI, minimum version,
 * and identity checks by subject alternative name (Istio's ClientTLSSettings `subjectAltNames`).
 *
 * Certificates and keys given as file paths are re-read every `reloadIntervalMs` (cert-manager and
 * SPIFFE agents rotate them in place, often by swapping a symlink, which file watchers miss). New
 * material is checked with `tls.createSecureContext` before it is used; a half-written rotation is
 * skipped until the next read. New connections use the new material (a fresh undici connector, so
 * no TLS session from the old identity is resumed); open connections carry on.
 *
 * With `subjectAltNames`, the peer's certificate must carry one of them — DNS names or URIs such as
 * `spiffe://cluster.local/ns/shop/sa/orders` — and that check replaces host-name verification (as
 * Envoy's SAN matcher does). A mismatch fails the connection with TLS_IDENTITY_MISMATCH; it counts
 * against the endpoint like any connect failure. Nothing here ever logs key or certificate content.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import tls, { type PeerCertificate } from 'node:tls';
import { buildConnector } from 'undici';
import { InvalidConfigError, MeshError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectList, expectObject, join, optBoolean, optEnum, optNumber, optString, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import type { Logger } from '../core/log.js';

/** TLS settings of a service. Strings that start with `-----BEGIN` are PEM; others are file paths. */
export interface TlsConfig {
  /** CA bundle that signs the endpoints' certificates. @default Node's bundled roots */
  ca?: string;
  /** Client certificate chain, for mutual TLS (with `key`). */
  cert?: string;
  /** Client private key, for mutual TLS (with `cert`). */
  key?: string;
  /** SNI and the name verified. @default the endpoint's host name, or the service name for IP endpoints */
  servername?: string;
  /** Accept only these identities (DNS or URI SANs) from endpoints; replaces host-name verification. */
  subjectAltNames?: string[];
  /** Lowest TLS version. @default 'TLSv1.2' */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Skip certificate verification entirely. Never in production. @default false */
  insecureSkipVerify?: boolean;
  /** How often file-based material is re-read, ms. @default 5000 */
  reloadIntervalMs?: Duration;
}

export interface ParsedTls {
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly servername: string | undefined;
  readonly subjectAltNames: readonly string[] | null;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly insecureSkipVerify: boolean;
  readonly reloadIntervalMs: number;
}

export function parseTlsConfig(raw: unknown, path: string): ParsedTls | null {
  if (raw === undefined || raw === false) return null;
  const o = expectObject(raw, path);
  rejectUnknown(o, ['ca', 'cert', 'key', 'servername', 'subjectAltNames', 'minVersion', 'insecureSkipVerify', 'reloadIntervalMs'], path);
  const cert = optString(o, 'cert', path);
  const key = optString(o, 'key', path);
  if ((cert === undefined) !== (key === undefined)) {
    throw new InvalidConfigError(join(path, cert === undefined ? 'cert' : 'key'), 'mutual TLS needs both "cert" and "key"');
  }
  let sans: string[] | null = null;
  if (o.subjectAltNames !== undefined) {
    const list = expectList(o.subjectAltNames, join(path, 'subjectAltNames'), 'a non-empty list of names');
    if (list.length === 0) throw new InvalidConfigError(join(path, 'subjectAltNames'), 'expected a non-empty list of names, got an empty one');
    sans = list.map((v, i) => {
      if (typeof v !== 'string' || v === '') throw new InvalidConfigError(join(join(path, 'subjectAltNames'), i), `expected a name, got ${describe(v)}`);
      return v;
    });
  }
  const parsed: ParsedTls = Object.freeze({
    ca: optString(o, 'ca', path),
    cert,
    key,
    servername: optString(o, 'servername', path),
    subjectAltNames: sans,
    minVersion: optEnum(o, 'minVersion', path, ['TLSv1.2', 'TLSv1.3'], 'TLSv1.2'),
    insecureSkipVerify: optBoolean(o, 'insecureSkipVerify', path, false),
    reloadIntervalMs: optDurationMs(o, 'reloadIntervalMs', path, 5_000, { min: 50, max: 86_400_000 }),
  });
  // Fail at createMesh, not mid-request: the files must exist and the material must load.
  try {
    tls.createSecureContext(secureOptions(readMaterial(parsed)));
  } catch (err) {
    throw new InvalidConfigError(path, `TLS material does not load: ${safeMessage(err)}`);
  }
  return parsed;
}

/** The peer's certificate carries none of the configured subject alternative names. */
export class TlsIdentityMismatchError extends MeshError {
  constructor(expected: readonly string[], actual: readonly string[]) {
    super(
      'TLS_IDENTITY_MISMATCH',
      `tls: the endpoint's certificate names ${actual.length ? actual.join(', ') : 'no subject alternative name'}; expected one of ${expected.join(', ')}`,
    );
  }
}

interface Material {
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
}

const isPem = (s: string): boolean => s.trimStart().startsWith('-----BEGIN');
const load = (s: string | undefined): string | undefined => (s === undefined ? undefined : isPem(s) ? s : readFileSync(s, 'utf8'));

function readMaterial(config: ParsedTls): Material {
  return { ca: load(config.ca), cert: load(config.cert), key: load(config.key) };
}

function secureOptions(m: Material): tls.SecureContextOptions {
  const o: tls.SecureContextOptions = {};
  if (m.ca !== undefined) o.ca = m.ca;
  if (m.cert !== undefined) o.cert = m.cert;
  if (m.key !== undefined) o.key = m.key;
  return o;
}

/** An error message with anything that looks like PEM content removed. */
function safeMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/-----BEGIN[\s\S]*?-----END[^-]*-----/g, '[pem]');
}

/** SANs of a peer certificate as `DNS:x` / `URI:y` entries, split. */
function sansOf(cert: PeerCertificate): string[] {
  const raw = cert.subjectaltname ?? '';
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => s.replace(/^(DNS|URI|IP Address):/, ''));
}

type Connector = ReturnType<typeof buildConnector>;

/**
 * The TLS material of one service and the undici connector built from it; rebuilt when files change.
 */
export class TlsMaterial {
  readonly #config: ParsedTls;
  readonly #log: Logger;
  readonly #connectTimeoutMs: number;
  readonly #defaultServername: string;
  #material: Material;
  #connector: Connector;
  #timer: NodeJS.Timeout | null = null;
  /** Times new material was taken into use. */
  reloads = 0;

  constructor(config: ParsedTls, options: { log: Logger; connectTimeoutMs: number; defaultServername: string }) {
    this.#config = config;
    this.#log = options.log;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#defaultServername = options.defaultServername;
    this.#material = readMaterial(config);
    this.#connector = this.#build();
    const fromFiles = [config.ca, config.cert, config.key].some((s) => s !== undefined && !isPem(s));
    if (fromFiles) {
      this.#timer = setInterval(() => this.reload(), config.reloadIntervalMs);
      this.#timer.unref?.();
    }
  }

  /** The connector undici pools call for every new connection: always the current material's. */
  readonly connect = (opts: Parameters<Connector>[0], callback: Parameters<Connector>[1]): void => {
    const servername = this.#config.servername ?? (isIP(opts.hostname) ? this.#defaultServername : opts.hostname);
    this.#connector({ ...opts, servername }, callback);
  };

  /** Re-read file-based material; swap it in when it changed and loads. */
  reload(): void {
    let next: Material;
    try {
      next = readMaterial(this.#config);
    } catch (err) {
      this.#log.warn(`tls: keeping the current certificates, reading new ones failed: ${safeMessage(err)}`);
      return;
    }
    if (next.ca === this.#material.ca && next.cert === this.#material.cert && next.key === this.#material.key) return;
    try {
      tls.createSecureContext(secureOptions(next));
    } catch (err) {
      this.#log.warn(`tls: keeping the current certificates, the new ones do not load yet: ${safeMessage(err)}`);
      return;
    }
    this.#material = next;
    this.#connector = this.#build();
    this.reloads++;
    this.#log.debug('tls: new certificates in use for new connections');
  }

  #build(): Connector {
    const c = this.#config;
    const sans = c.subjectAltNames;
    return buildConnector({
      ...secureOptions(this.#material),
      minVersion: c.minVersion,
      rejectUnauthorized: !c.insecureSkipVerify,
      timeout: this.#connectTimeoutMs,
      ...(sans !== null
        ? {
            checkServerIdentity: (_host: string, cert: PeerCertificate): Error | undefined => {
              const actual = sansOf(cert);
              return actual.some((s) => sans.includes(s)) ? undefined : new TlsIdentityMismatchError(sans, actual);
            },
          }
        : {}),
    } as buildConnector.BuildOptions);
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
