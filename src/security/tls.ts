/**
 * TLS to endpoints: CA bundle, client certificate and key (mutual TLS), SNI, minimum version,
 * and identity checks by subject alternative name (Istio's ClientTLSSettings `subjectAltNames`).
 *
 * Certificates and keys given as file paths are re-read every `reloadIntervalMs` (cert-manager and
 * SPIFFE agents rotate them in place, often by swapping a symlink, which file watchers miss). New
 * material is checked before it is used: the CA bundle by `checkCa` (whole certificates that parse;
 * `tls.createSecureContext` takes an empty or cut-short CA without a word), and all of it by
 * `checkLoads` (`tls.createSecureContext`, after refusing an empty certificate or key). A
 * half-written rotation is skipped, warned once, until a read finds it whole. New connections use
 * the new material (a fresh undici connector, so no TLS session from the old identity is resumed);
 * open connections carry on.
 *
 * With `subjectAltNames`, the peer's certificate must carry one of them — DNS names or URIs such as
 * `spiffe://cluster.local/ns/shop/sa/orders` — and that check replaces host-name verification (as
 * Envoy's SAN matcher does). A mismatch fails the connection with TLS_IDENTITY_MISMATCH; it counts
 * against the endpoint like any connect failure. Nothing here ever logs key or certificate content.
 *
 * `mode: 'istio-mutual'` is Istio's ISTIO_MUTUAL (istio-mutual.ts): istio-agent's files, the SNI
 * Envoy sends, and the server's SPIFFE ID checked against the destination's service accounts after
 * the handshake. istio-agent may write its files after this process starts: missing or unloadable
 * files are then logged and re-read (every `reloadIntervalMs`, and on each new connection), and a
 * connection attempted meanwhile fails with TLS_CERTIFICATES_UNAVAILABLE, blamed on no endpoint.
 */
import { isIP, type Socket } from 'node:net';
import tls from 'node:tls';
import { buildConnector } from 'undici';
import type { EndpointSpec } from '../core/endpoint-spec.js';
import { StateWarning, type Logger } from '../core/log.js';
import { istioSni, PeerIdentities, spiffeId } from './istio-mutual.js';
import {
  checkCa,
  checkLoads,
  isPem,
  readMaterial,
  safeMessage,
  sansOf,
  secureOptions,
  TlsCertificatesUnavailableError,
  TlsIdentityMismatchError,
  type Material,
  type ParsedTls,
} from './tls-config.js';

export { checkIstioIdentities, parseTlsConfig, TlsCertificatesUnavailableError, TlsIdentityMismatchError, type ParsedTls, type StandardTlsConfig, type TlsConfig } from './tls-config.js';
export type { IstioMutualTlsConfig } from './istio-mutual.js';

type Connector = ReturnType<typeof buildConnector>;
type ConnectOptions = Parameters<Connector>[0];
type ConnectCallback = Parameters<Connector>[1];

const RELOADS_AGAIN = 'tls: the certificate files load again; the failed reloads are over';

/**
 * The TLS material of one service and the undici connector built from it; rebuilt when files change.
 */
export class TlsMaterial {
  readonly #config: ParsedTls;
  readonly #log: Logger;
  readonly #connectTimeoutMs: number;
  readonly #defaultServername: string;
  readonly #meshHost: string;
  /** istio-mutual: who the server may be. */
  readonly #peers: PeerIdentities | null;
  /** null while istio-agent's files are missing or do not load. */
  #material: Material | null = null;
  #connector: Connector | null = null;
  #unavailable = '';
  /** Reloads that fail while current certificates are in use: warned of once per reason, until one loads. */
  readonly #keeping: StateWarning;
  #timer: NodeJS.Timeout | null = null;
  /** Times new material was taken into use. */
  reloads = 0;

  /**
   * @param options.meshHost the service's FQDN, for istio-mutual's SNI
   */
  constructor(config: ParsedTls, options: { log: Logger; connectTimeoutMs: number; defaultServername: string; meshHost?: string }) {
    this.#config = config;
    this.#log = options.log;
    this.#keeping = new StateWarning(options.log);
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#defaultServername = options.defaultServername;
    this.#meshHost = options.meshHost ?? options.defaultServername;
    const istio = config.istio;
    if (istio === null) {
      this.#peers = null;
      this.#material = readMaterial(config);
      this.#connector = this.#build();
    } else {
      const fixed = [...(config.subjectAltNames ?? []), ...(istio.serviceAccounts ?? []).map((a) => spiffeId(istio.trustDomain, a))];
      this.#peers = new PeerIdentities(fixed.length > 0 ? fixed : null);
      this.reload();
    }
    const fromFiles = [config.ca, config.cert, config.key].some((s) => s !== undefined && !isPem(s));
    if (fromFiles) {
      this.#timer = setInterval(() => this.reload(), config.reloadIntervalMs);
      this.#timer.unref?.();
    }
  }

  /** The connector undici pools call for every new connection: always the current material's. */
  readonly connect = (opts: ConnectOptions, callback: ConnectCallback): void => {
    if (this.#material === null) this.reload();
    const connector = this.#connector;
    if (connector === null) return callback(new TlsCertificatesUnavailableError(this.#unavailable), null);
    const c = this.#config;
    if (c.istio === null || this.#peers === null) {
      const servername = c.servername ?? (isIP(opts.hostname) ? this.#defaultServername : opts.hostname);
      return connector({ ...opts, servername }, callback);
    }
    const peers = this.#peers;
    const servername = c.servername ?? istioSni(c.istio.port ?? (Number(opts.port) || 443), this.#meshHost);
    // The socket goes back to undici, which destroys it to cancel an attempt no request waits for.
    return connector({ ...opts, servername }, (err, socket) => {
      if (err !== null || socket === null) return callback(err, null);
      // The chain was verified against the mesh's root; the identity is checked here, once known.
      peers.whenKnown(this.#connectTimeoutMs, (ids) => {
        const actual = sansOf((socket as tls.TLSSocket).getPeerCertificate(), 'URI'); // a SPIFFE ID is a URI SAN
        if (actual.some((id) => ids.has(id))) return callback(null, socket);
        socket.destroy();
        callback(new TlsIdentityMismatchError(ids.size > 0 ? [...ids] : ["a service account of the destination's endpoints (none is known yet)"], actual, 'URI SAN (SPIFFE ID)'), null);
      });
    });
  };

  /** A discovery snapshot of the service: istio-mutual accepts its endpoints' service accounts. */
  endpoints(specs: Iterable<EndpointSpec>): void {
    const istio = this.#config.istio;
    if (istio === null || this.#peers === null) return;
    const accounts: (string | undefined)[] = [];
    for (const s of specs) accounts.push(s.serviceAccount);
    this.#peers.setAccounts(istio.trustDomain, accounts);
  }

  /** Re-read file-based material; swap it in when it changed and loads. */
  reload(): void {
    let next: Material;
    try {
      next = readMaterial(this.#config);
    } catch (err) {
      return this.#keep('reading new ones failed', safeMessage(err));
    }
    const m = this.#material;
    if (m !== null && next.ca === m.ca && next.cert === m.cert && next.key === m.key) return this.#keeping.clear(RELOADS_AGAIN);
    try {
      if (next.ca !== undefined) checkCa(next.ca); // createSecureContext takes a CA cut short, or none
      checkLoads(next);
    } catch (err) {
      return this.#keep('the new ones do not load yet', safeMessage(err));
    }
    this.#keeping.clear(RELOADS_AGAIN);
    if (m === null && this.#unavailable !== '') this.#log.warn('tls: certificates available; connections can be made');
    this.#unavailable = '';
    this.#material = next;
    this.#connector = this.#build();
    this.reloads++;
    this.#log.debug('tls: new certificates in use for new connections');
  }

  /** New material is not usable: keep the current one, or (none yet) say so once per reason. */
  #keep(what: string, detail: string): void {
    if (this.#material !== null) return this.#keeping.warn(`${what}: ${detail}`, `tls: keeping the current certificates, ${what}: ${detail} (warned once until a reload succeeds)`);
    const reason = `${[this.#config.cert, this.#config.key, this.#config.ca].join(', ')}: ${detail}`;
    if (reason === this.#unavailable) return;
    this.#unavailable = reason;
    this.#log.warn(`tls: no certificates yet (${reason}); re-read every ${this.#config.reloadIntervalMs} ms and on each new connection`);
  }

  #build(): Connector {
    const c = this.#config;
    const sans = c.subjectAltNames;
    const check =
      c.istio !== null
        ? // istio-mutual: no host-name check; the SPIFFE ID is checked in `connect`, on the peer's
          // certificate, which a resumed session does not show: every connection is a full handshake.
          { checkServerIdentity: (): undefined => undefined, maxCachedSessions: 0 }
        : sans !== null
          ? {
              checkServerIdentity: (_host: string, cert: tls.PeerCertificate): Error | undefined => {
                const actual = sansOf(cert);
                return actual.some((s) => sans.includes(s)) ? undefined : new TlsIdentityMismatchError(sans, actual);
              },
            }
          : {};
    return buildConnector({
      ...secureOptions(this.#material!),
      minVersion: c.minVersion,
      rejectUnauthorized: !c.insecureSkipVerify,
      timeout: this.#connectTimeoutMs,
      ...check,
    } as buildConnector.BuildOptions);
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#peers?.close();
  }
}
