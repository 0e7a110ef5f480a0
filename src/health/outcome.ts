/**
 * How one attempt at an endpoint ended, as the resilience policies see it. Envoy's outlier
 * detection vocabulary: a 5xx from the endpoint, a gateway failure (502, 503, 504), or a
 * local-origin failure (connect refused or timed out, reset, per-try timeout).
 */
import { errorCode } from '../core/errors.js';

export type AttemptOutcomeKind =
  /** Response headers with a status below 500. */
  | 'success'
  /** A 5xx other than 502/503/504. */
  | 'http-5xx'
  /** 502, 503 or 504. */
  | 'gateway-error'
  /** No response: connection refused / connect timeout (the request never reached the endpoint). */
  | 'connect-failure'
  /** No response: the connection was reset or closed after the request may have been sent. */
  | 'reset'
  /** No response within the per-try timeout. */
  | 'timeout'
  /** The caller aborted; says nothing about the endpoint. */
  | 'cancelled'
  /** The request itself is invalid (bad header value…), or this process cannot make it (no TLS certificates yet): never retried, never the endpoint's fault. */
  | 'invalid';

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  // TLS handshakes that fail before any request byte is sent
  'TLS_IDENTITY_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
]);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED']);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/** Classify a status code. */
export function statusKind(status: number): AttemptOutcomeKind {
  // Envoy's is5xx is 500–599: a status past it (HTTP/1.1 allows three digits) is no server error.
  if (status < 500 || status > 599) return 'success';
  return status === 502 || status === 503 || status === 504 ? 'gateway-error' : 'http-5xx';
}

/** Classify an error from undici (by its `code`, or its cause's). */
export function errorKind(err: unknown): AttemptOutcomeKind {
  const e = err as { name?: string; cause?: unknown } | null;
  // String codes only: a DOMException's numeric one (23, 20) must not hide its cause's.
  const code = errorCode(e) ?? errorCode(e?.cause);
  if (code !== undefined) {
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') return 'invalid';
    // This process has no certificates yet (istio-agent writes them): no endpoint is at fault, no retry helps.
    if (code === 'TLS_CERTIFICATES_UNAVAILABLE') return 'invalid';
    if (CONNECT_CODES.has(code)) return 'connect-failure';
    if (RESET_CODES.has(code)) return 'reset';
    if (TIMEOUT_CODES.has(code)) return 'timeout';
  }
  if (e?.name === 'AbortError' || code === 'UND_ERR_ABORTED') return 'cancelled';
  return 'reset';
}

/** True for outcomes that count as the endpoint failing. */
export function isFailure(kind: AttemptOutcomeKind): boolean {
  return kind !== 'success' && kind !== 'cancelled' && kind !== 'invalid';
}
