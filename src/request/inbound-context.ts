/**
 * The context of the request a process is serving, kept in an `AsyncLocalStorage` while it is
 * served (inbound/ fills it), and read by the calls made through the mesh meanwhile (the
 * inbound-context layer, layers/inbound-context.ts): what deadline the caller gave, and which
 * headers travel on.
 *
 * One storage per process, shared by the ESM and the CJS copy of meshlet through a
 * `Symbol.for` key on `globalThis` (as the registrations in service/registrations.ts are): a
 * request served through one copy is seen by calls made through the other. It is made by the
 * first inbound entry point; until then reading it costs a property look-up, not a `getStore()`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** Header meshlet sends the time left with, and reads it from: whole milliseconds. */
export const DEADLINE_HEADER = 'x-meshlet-deadline-ms';
/** Envoy's header for the same (the route's or the try's timeout), sent and read too. */
export const ENVOY_TIMEOUT_HEADER = 'x-envoy-expected-rq-timeout-ms';

/** What a request being served tells the mesh calls made while serving it. */
export interface InboundContext {
  /** When the caller's deadline runs out, ms on {@link now}'s clock; Infinity when it gave none. */
  readonly deadlineAtMs: number;
  /** The clock of {@link deadlineAtMs}. */
  readonly now: () => number;
  /**
   * Headers for one outgoing call, to add where the call does not carry them already: a flat
   * `[name, value, …]` list with lower-case names. Called once per call, in the call's async
   * context (OpenTelemetry's active context is read there).
   */
  outgoingHeaders(): readonly string[];
}

interface Holder {
  storage: AsyncLocalStorage<InboundContext> | undefined;
}

const kHolder = Symbol.for('meshlet.inbound-context');
const holder: Holder = ((globalThis as Record<symbol, Holder | undefined>)[kHolder] ??= { storage: undefined });

/** The process's storage (made on first use). */
export function inboundStorage(): AsyncLocalStorage<InboundContext> {
  return (holder.storage ??= new AsyncLocalStorage<InboundContext>());
}

/** The context of the request being served here, if any. */
export function currentInbound(): InboundContext | undefined {
  const storage = holder.storage;
  return storage === undefined ? undefined : storage.getStore();
}
