/**
 * `tls` of a service, parsed (tls.ts uses it): your own certificates, or Istio's
 * (`mode: 'istio-mutual'`, istio-mutual.ts). Also the helpers that read and check the material and
 * the errors a TLS connection fails with.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls, { type PeerCertificate } from 'node:tls';
import { InvalidConfigError, MeshError } from '../core/errors.js';
import { describe } from '../core/endpoint-spec.js';
import { expectList, expectObject, join, optBoolean, optEnum, optNumber, optString, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { parseIstioMutual, type IstioMutualTlsConfig, type ParsedIstioMutual } from './istio-mutual.js';

export type { IstioMutualTlsConfig } from './istio-mutual.js';

/** TLS settings of a service: your own certificates, or Istio's (`mode: 'istio-mutual'`). */
export type TlsConfig = StandardTlsConfig | IstioMutualTlsConfig;

/** TLS with your own certificates. Strings that start with `-----BEGIN` are PEM; others are file paths. */
export interface StandardTlsConfig {
  mode?: undefined;
  /** CA bundle that signs the endpoints' certificates. @default Node's bundled roots */
  ca?: string;
  /** Client certificate chain, for mutual TLS (with `key`). */
  cert?: string;
  /** Client private key, for mutual TLS (with `cert`). */
  key?: string;
  /** SNI and the name verified. @default the endpoint's host name, or for an IP endpoint the service's first `hosts` entry (its name without `hosts`) */
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
  /** Istio's ISTIO_MUTUAL settings, or null for standard TLS. */
  readonly istio: ParsedIstioMutual | null;
}

const STANDARD_KEYS = ['ca', 'cert', 'key', 'servername', 'subjectAltNames', 'minVersion', 'insecureSkipVerify', 'reloadIntervalMs'];
const ISTIO_KEYS = ['mode', 'certDir', 'cert', 'key', 'ca', 'trustDomain', 'serviceAccounts', 'subjectAltNames', 'servername', 'port', 'minVersion', 'reloadIntervalMs'];

export function parseTlsConfig(raw: unknown, path: string): ParsedTls | null {
  if (raw === undefined || raw === false) return null;
  const o = expectObject(raw, path);
  const istioMode = o.mode !== undefined;
  if (istioMode && o.mode !== 'istio-mutual') {
    throw new InvalidConfigError(join(path, 'mode'), `expected "istio-mutual" (or no mode, for your own certificates), got ${describe(o.mode)}`);
  }
  rejectUnknown(o, istioMode ? ISTIO_KEYS : STANDARD_KEYS, path);
  const istio = istioMode ? parseIstioMutual(o, path) : null;
  const cert = istio?.cert ?? optString(o, 'cert', path);
  const key = istio?.key ?? optString(o, 'key', path);
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
    ca: istio?.ca ?? optString(o, 'ca', path),
    cert,
    key,
    servername: optString(o, 'servername', path),
    subjectAltNames: sans,
    minVersion: optEnum(o, 'minVersion', path, ['TLSv1.2', 'TLSv1.3'], 'TLSv1.2'),
    insecureSkipVerify: optBoolean(o, 'insecureSkipVerify', path, false),
    reloadIntervalMs: optDurationMs(o, 'reloadIntervalMs', path, 5_000, { min: 50, max: 86_400_000 }),
    istio: istio?.istio ?? null,
  });
  // istio-agent may not have written its files yet: TlsMaterial logs and retries.
  if (parsed.istio !== null) return parsed;
  // Fail at createMesh, not mid-request: the files must exist and the material must load.
  let material: Material;
  try {
    material = readMaterial(parsed);
  } catch (err) {
    throw new InvalidConfigError(path, `TLS material does not load: ${safeMessage(err)}`);
  }
  if (material.ca !== undefined) {
    try {
      checkCa(material.ca);
    } catch (err) {
      throw new InvalidConfigError(join(path, 'ca'), safeMessage(err));
    }
  }
  try {
    checkLoads(material);
  } catch (err) {
    throw new InvalidConfigError(path, `TLS material does not load: ${safeMessage(err)}`);
  }
  return parsed;
}

/** The peer's certificate carries none of the configured subject alternative names. */
export class TlsIdentityMismatchError extends MeshError {
  /** @param kind what `actual` lists: every SAN, or (istio-mutual) the URI SANs only */
  constructor(expected: readonly string[], actual: readonly string[], kind = 'subject alternative name') {
    super(
      'TLS_IDENTITY_MISMATCH',
      `tls: the endpoint's certificate names ${actual.length ? actual.join(', ') : `no ${kind}`}; expected one of ${expected.join(', ')}`,
    );
  }
}

/** The certificates of istio-mutual TLS are not there (yet), or do not load. */
export class TlsCertificatesUnavailableError extends MeshError {
  constructor(detail: string) {
    super('TLS_CERTIFICATES_UNAVAILABLE', `tls: this process's certificates are not available yet (istio-agent writes them): ${detail}`);
  }
}

export interface Material {
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
}

export const isPem = (s: string): boolean => s.trimStart().startsWith('-----BEGIN');
const load = (s: string | undefined): string | undefined => (s === undefined ? undefined : isPem(s) ? s : readFileSync(s, 'utf8'));

export function readMaterial(config: ParsedTls): Material {
  return { ca: load(config.ca), cert: load(config.cert), key: load(config.key) };
}

const PEM_BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----\s*$/;
const PEM_END = /^-----END ([A-Z0-9 ]+)-----\s*$/;

/**
 * Throws unless `pem` is a CA bundle that loads whole: at least one certificate, every
 * certificate block parses, and no block is left open. `tls.createSecureContext` checks none of
 * this — it takes garbage, an empty file or one cut short in the middle of a certificate, and every
 * connection then fails verification — so a CA is checked here, at createMesh and before a
 * reload takes it. Text between blocks is ignored (as OpenSSL does: bundles carry comments), and
 * so are complete blocks of other kinds (OpenSSL skips them too); a PEM line not at the start of
 * its line, which OpenSSL does not read, is refused. The messages never quote the content.
 */
export function checkCa(pem: string): void {
  const lines = pem.split('\n');
  let open: { label: string; line: number } | null = null;
  let body: string[] = [];
  let certificates = 0;
  for (const [i, raw] of lines.entries()) {
    const line = raw.replace(/\r$/, '');
    const begin = PEM_BEGIN.exec(line);
    const end = begin === null ? PEM_END.exec(line) : null;
    if (begin !== null) {
      if (open !== null) throw new Error(`the CA bundle's PEM block at line ${open.line} has no END line before the next BEGIN (line ${i + 1})`);
      open = { label: begin[1]!, line: i + 1 };
      body = [line];
    } else if (end !== null) {
      if (open === null || end[1] !== open.label) throw new Error(`the CA bundle has an END line that matches no BEGIN (line ${i + 1})`);
      body.push(line);
      if (open.label === 'CERTIFICATE' || open.label === 'TRUSTED CERTIFICATE') {
        certificates++;
        try {
          new X509Certificate(body.join('\n'));
        } catch (err) {
          throw new Error(`the CA bundle's certificate ${certificates} (line ${open.line}) does not parse: ${safeMessage(err)}`);
        }
      }
      open = null;
    } else if (line.includes('-----BEGIN') || line.includes('-----END')) {
      throw new Error(`the CA bundle has a malformed PEM line (line ${i + 1}), which OpenSSL would not read`);
    } else if (open !== null) {
      body.push(line);
    }
  }
  if (open !== null) throw new Error(`the CA bundle ends inside a PEM block (begun at line ${open.line}): cut short, or still being written`);
  if (certificates === 0) throw new Error(pem.trim() === '' ? 'the CA bundle is empty' : 'the CA bundle holds no PEM certificate');
}

/**
 * Throws unless the material makes a secure context. `tls.createSecureContext` takes an empty
 * certificate or key as none — a client that silently stops presenting its certificate — so an
 * empty one is refused first. The CA is `checkCa`'s.
 */
export function checkLoads(m: Material): void {
  if (m.cert !== undefined && m.cert.trim() === '') throw new Error('the certificate chain is empty');
  if (m.key !== undefined && m.key.trim() === '') throw new Error('the private key is empty');
  tls.createSecureContext(secureOptions(m));
}

export function secureOptions(m: Material): tls.SecureContextOptions {
  const o: tls.SecureContextOptions = {};
  if (m.ca !== undefined) o.ca = m.ca;
  if (m.cert !== undefined) o.cert = m.cert;
  if (m.key !== undefined) o.key = m.key;
  return o;
}

/** An error message with anything that looks like PEM content removed. */
export function safeMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/-----BEGIN[\s\S]*?-----END[^-]*-----/g, '[pem]');
}

/** SANs of a peer certificate as `DNS:x` / `URI:y` entries, split. */
export function sansOf(cert: PeerCertificate, only?: 'URI'): string[] {
  const raw = cert.subjectaltname ?? '';
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '' && (only === undefined || s.startsWith(`${only}:`)))
    .map((s) => s.replace(/^(DNS|URI|IP Address):/, ''));
}

/**
 * istio-mutual checks the server against the destination's service accounts: configured, or
 * carried by the endpoints (a discovery that knows them). With neither, no server could pass.
 */
export function checkIstioIdentities(tls: ParsedTls | null, discoveryKnows: boolean, path: string): ParsedTls | null {
  if (tls?.istio == null || discoveryKnows || tls.subjectAltNames !== null || tls.istio.serviceAccounts !== null) return tls;
  throw new InvalidConfigError(
    path,
    "istio-mutual needs the destination's identities: give serviceAccounts or subjectAltNames, or use a discovery whose endpoints carry their service account (kubernetes with podLabels, or static endpoints with serviceAccount)",
  );
}
