/**
 * Every failure meshlet reports to a caller is a `MeshError` with a stable string `code`; what
 * undici raised underneath is kept as `cause`.
 *
 * When both the ESM and the CJS build are loaded in one process there are two copies of each
 * class. A brand registered with `Symbol.for` (shared by both copies) makes `instanceof` work
 * across them for the base and for every subclass: an error carries the names of the classes it
 * was built from, and `X[Symbol.hasInstance]` looks for X's name there — as undici brands its own
 * errors.
 */

const kBrand = Symbol.for('meshlet.error');

/** The stable codes a {@link MeshError} can carry. */
export type MeshErrorCode =
  | 'UNKNOWN_SERVICE'
  | 'NO_HEALTHY_ENDPOINT'
  | 'INVALID_CONFIG'
  | 'TIMEOUT'
  | 'DEADLINE_EXCEEDED'
  | 'MESH_CLOSED'
  | 'CIRCUIT_OPEN'
  | 'RATE_LIMITED'
  | 'OVERLOADED'
  | 'RETRY_BUDGET_EXHAUSTED'
  | 'TLS_IDENTITY_MISMATCH'
  | 'TLS_CERTIFICATES_UNAVAILABLE'
  | 'UPSTREAM_FAILED'
  | 'REQUEST_BODY_FAILED'
  | 'INVALID_REQUEST'
  | 'LAYER_FAILED';

/** Context attached to an error: which service, which endpoint, how many attempts were made. */
export interface MeshErrorDetails {
  service?: string | undefined;
  endpoint?: string | undefined;
  attempts?: number | undefined;
  cause?: unknown;
}

/** Base class of every error meshlet raises or hands to a request's handler. */
export class MeshError extends Error {
  /** Stable machine-readable code; never changes for a given failure kind. */
  readonly code: MeshErrorCode;
  /** Logical service name the request was addressed to, when known. */
  readonly service: string | undefined;
  /** Endpoint (origin URL) involved, when known. */
  readonly endpoint: string | undefined;
  /** Attempts made before giving up (1 = no retry), when known. */
  readonly attempts: number | undefined;

  constructor(code: MeshErrorCode, message: string, details: MeshErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    this.service = details.service;
    this.endpoint = details.endpoint;
    this.attempts = details.attempts;
  }

  /** The class names this error was built from, most derived first (the cross-copy brand). */
  get [kBrand](): readonly string[] {
    const names: string[] = [];
    for (let p = Object.getPrototypeOf(this); p !== null && p !== Error.prototype; p = Object.getPrototypeOf(p)) {
      names.push((p as { constructor: { name: string } }).constructor.name);
    }
    return names;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (!isMeshError(value)) return false;
    if (this === MeshError || Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    // The other build's copy of this class: match by name within meshlet's error classes.
    return (value as unknown as Record<symbol, readonly string[]>)[kBrand]!.includes(this.name);
  }
}

/** The message of anything thrown (an Error's message, else its text), never throwing itself. */
export function messageOf(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'a value that cannot be printed';
  }
}

/** True for any meshlet error, from either the ESM or the CJS copy of the library. */
export function isMeshError(value: unknown): value is MeshError {
  return typeof value === 'object' && value !== null && Array.isArray((value as Record<symbol, unknown>)[kBrand]);
}

/** The host of a request is neither a configured service nor allowed to pass through. */
export class UnknownServiceError extends MeshError {
  constructor(host: string) {
    super('UNKNOWN_SERVICE', `dispatcher: "${host}" is not a configured service, and unknownHosts does not let it pass through`, {
      service: host,
    });
  }
}

/** No endpoint of the service could take the request (none discovered, all ejected or all tried). */
export class NoHealthyEndpointError extends MeshError {
  constructor(service: string, reason: string, details: Omit<MeshErrorDetails, 'service'> = {}) {
    super('NO_HEALTHY_ENDPOINT', `service "${service}": no healthy endpoint (${reason})`, { ...details, service });
  }
}

/**
 * Configuration that does not fit the schema; `path` names the offending field. When code of
 * yours given in the config (a registered parser or factory) threw something else, that is `cause`.
 */
export class InvalidConfigError extends MeshError {
  /** Dotted path of the offending field, e.g. `services.orders.balancer.choiceCount`. */
  readonly path: string;
  constructor(path: string, problem: string, options: { cause?: unknown } = {}) {
    super('INVALID_CONFIG', `invalid config at ${path || '(root)'}: ${problem}`, options);
    this.path = path;
  }
}

/** The request's deadline (service `timeout`, route or per-request) ran out. */
export class TimeoutError extends MeshError {
  /**
   * @param waitedMs when the request timed out waiting for a connection to `details.endpoint`
   *   (every one of its `pool.connections` busy, or being made): how long it waited; the message
   *   says so, as the endpoint never got the request.
   */
  constructor(service: string, timeoutMs: number, details: Omit<MeshErrorDetails, 'service'> = {}, waitedMs?: number) {
    const waited =
      waitedMs === undefined
        ? ''
        : `: waited ${Math.round(waitedMs)} ms for a connection to ${details.endpoint ?? 'the endpoint'} (every one of pool.connections busy, or still connecting), which never got the request`;
    super('TIMEOUT', `service "${service}": request timed out after ${timeoutMs} ms${waited}`, { ...details, service });
  }
}

/**
 * The deadline of the request being served ran out (the caller's `grpc-timeout`,
 * `x-envoy-expected-rq-timeout-ms` or `x-meshlet-deadline-ms`, inbound/): a call made while
 * serving it was not sent (`sent: false`, nothing left when it started), or was cut when the
 * time ran out.
 */
export class DeadlineExceededError extends MeshError {
  /** True when the call was cut while in flight; false when it was never sent. */
  readonly sent: boolean;
  constructor(service: string, sent: boolean, details: Omit<MeshErrorDetails, 'service'> = {}) {
    const what = sent ? 'cut: the deadline of the request being served ran out' : 'not sent: the deadline of the request being served has passed';
    super('DEADLINE_EXCEEDED', `service "${service}": ${what}`, { ...details, service });
    this.sent = sent;
  }
}

/** The mesh was closed; no new requests are accepted. */
export class MeshClosedError extends MeshError {
  constructor() {
    super('MESH_CLOSED', 'dispatcher: the mesh is closed');
  }
}

/** The service's concurrency limits are full (in-flight and queue), or the request waited too long. */
export class OverloadedError extends MeshError {
  constructor(service: string, limit: string) {
    super('OVERLOADED', `service "${service}": overloaded (${limit})`, { service });
  }
}

/** The service's rate limit refused the request. */
export class RateLimitedError extends MeshError {
  constructor(service: string, scope: string) {
    super('RATE_LIMITED', `service "${service}": rate limited (${scope})`, { service });
  }
}

/**
 * A circuit refused the request: every endpoint's (all ejected, none may be probed now), or — with
 * `scope: 'service'` — the service's own circuit (`serviceBreaker`), open after too many of its
 * recent requests failed. Nothing was sent.
 */
export class CircuitOpenError extends MeshError {
  /** Whose circuit is open: every endpoint's, or the service's own (`serviceBreaker`). */
  readonly scope: 'endpoints' | 'service';
  constructor(service: string, details: Omit<MeshErrorDetails, 'service'> = {}, scope: 'endpoints' | 'service' = 'endpoints') {
    const why = scope === 'service' ? "the service's circuit is open (too many of its recent requests failed)" : "every endpoint's circuit is open";
    super('CIRCUIT_OPEN', `service "${service}": ${why}`, { ...details, service });
    this.scope = scope;
  }
}

/**
 * A retriable failure that was not retried because the retry budget was spent; `cause` is the
 * original error.
 */
export class RetryBudgetExhaustedError extends MeshError {
  constructor(service: string, cause: unknown, details: Omit<MeshErrorDetails, 'service' | 'cause'> = {}) {
    super('RETRY_BUDGET_EXHAUSTED', `service "${service}": retry budget exhausted; original error: ${(cause as Error)?.message ?? String(cause)}`, {
      ...details,
      service,
      cause,
    });
  }
}

/** A try got no response headers within the retry policy's `perTryTimeout`. */
export class PerTryTimeoutError extends MeshError {
  constructor(service: string, timeoutMs: number, endpoint: string) {
    super('TIMEOUT', `service "${service}": no response from ${endpoint} within the per-try timeout of ${timeoutMs} ms`, { service, endpoint });
  }
}

/**
 * An attempt failed without a usable response: the connection was refused or reset, the response
 * was malformed, undici's own timeouts fired, the pool was closed. `kind` is the outcome class
 * (`connect-failure`, `reset`, `timeout`), `cause` undici's error.
 */
export class UpstreamError extends MeshError {
  /** How the attempt failed, as outlier detection and retries classify it. */
  readonly kind: string;
  constructor(service: string, kind: string, cause: unknown, details: Omit<MeshErrorDetails, 'service' | 'cause'> = {}) {
    const why = (cause as Error)?.message ?? String(cause);
    const code = errorCode(cause);
    super('UPSTREAM_FAILED', `service "${service}": ${kind} at ${details.endpoint ?? 'an endpoint'}: ${why}${code ? ` (${code})` : ''}`, {
      ...details,
      service,
      cause,
    });
    this.kind = kind;
  }
}

/**
 * The caller's own request body failed (its stream or iterable threw, yielded something that is
 * not bytes, or stalled past a deadline): the caller's error, counted against no endpoint.
 */
export class RequestBodyError extends MeshError {
  constructor(service: string, cause: unknown, details: Omit<MeshErrorDetails, 'service' | 'cause'> = {}) {
    super('REQUEST_BODY_FAILED', `service "${service}": the request body failed: ${(cause as Error)?.message ?? String(cause)}`, {
      ...details,
      service,
      cause,
    });
  }
}

/**
 * The request itself cannot be sent as given (a header value with CR/LF, an option undici
 * refuses): the caller's error, never retried, never counted against an endpoint. `cause` is
 * undici's error.
 */
export class InvalidRequestError extends MeshError {
  constructor(service: string, cause: unknown, details: Omit<MeshErrorDetails, 'service' | 'cause'> = {}) {
    super('INVALID_REQUEST', `service "${service}": the request is invalid: ${(cause as Error)?.message ?? String(cause)}`, { ...details, service, cause });
  }
}

/**
 * A layer of the request path threw, or its `handle` returned a promise that rejected (a user
 * interceptor, most likely): the request ends with this error instead of hanging. Never retried,
 * counted against no endpoint; `cause` is what was thrown. Also a layer's misuse of the call the
 * call itself catches — `call.fail` given something that is not an Error (`cause`), `call.respond`
 * given no status from 200 to 599 — with `layer` naming the method (`call.fail`, `call.respond`)
 * and `problem` the message.
 */
export class LayerFailedError extends MeshError {
  readonly layer: string;
  constructor(service: string, layer: string, cause: unknown, problem?: string) {
    super('LAYER_FAILED', `service "${service}": ${problem ?? `layer "${layer}" threw: ${(cause as Error)?.message ?? String(cause)}`}`, { service, cause });
    this.layer = layer;
  }
}

/**
 * An error's `code` when it is a non-empty string (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT,
 * OVERLOADED), else undefined. A DOMException has a legacy numeric `code` too — 23 for the
 * TimeoutError of `AbortSignal.timeout`, 20 for an AbortError — that names nothing in our events
 * and messages: its `name` does (`errorLabel`).
 */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

/** What an error is called in an event: its string `code`, else its `name` (TimeoutError), else 'error'. */
export function errorLabel(err: unknown): string {
  const name = (err as { name?: unknown } | null | undefined)?.name;
  return errorCode(err) ?? (typeof name === 'string' && name !== '' ? name : 'error');
}
