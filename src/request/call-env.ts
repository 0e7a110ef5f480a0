/** What a request (request/call.ts) needs from its service: fixed for the service's life. */
import type { Duplex } from 'node:stream';
import type { Endpoint } from '../core/endpoint.js';
import type { AttemptOutcomeKind } from '../health/outcome.js';

/** What a call needs from its service, fixed for the service's life. */
/** `C` is the call type (request/call.ts's Call), a parameter so this file need not import it. */
export interface CallEnv<C = unknown> {
  readonly service: string;
  readonly now: () => number;
  readonly random: () => number;
  /** Host header sent to endpoints: the name the caller used, or the endpoint's address. */
  readonly hostHeader: 'service' | 'endpoint';
  /** Bytes of a streamed request body kept so it can be sent again (0: none). */
  readonly perRequestBufferLimitBytes: number;
  /** Feed one attempt's outcome, observed at `nowMs`, to the observers (endpoint health). */
  observe(endpoint: Endpoint, kind: AttemptOutcomeKind, status: number, latencyMs: number, nowMs: number): void;
  /** True when a balancer of the service reads endpoints' load reports: attempts then pass on response headers. */
  readonly loadReports: boolean;
  /**
   * Response headers from `endpoint` at `nowMs`, for its load report (called only when
   * `loadReports`); `sentRif`: this client's other requests in flight to it when the request was sent.
   */
  loadReport(endpoint: Endpoint, headers: Record<string, string | string[] | undefined>, nowMs: number, sentRif: number): void;
  /** A `call.onEnd` listener threw `err` (it is skipped; the call ends as it would have). */
  endListenerThrew(err: unknown): void;
  /** The call ended (exactly once). */
  ended(call: C): void;
  /**
   * The endpoint switched protocols (an upgrade, a CONNECT): `socket`, handed to the caller now,
   * stays open past the call; called before the call ends, so a close waiting for it sees it.
   */
  upgraded(socket: Duplex): void;
}
