/**
 * Graceful drain, as a Kubernetes pod should end (and as Envoy drains a listener):
 *  1. Readiness starts failing (probes.ts) and every response — the ones in flight that have
 *     not started, and every later one — carries `Connection: close`, so keep-alive clients
 *     reconnect elsewhere instead of reusing a socket that is about to close.
 *  2. For `delayMs` requests are still served: the time load balancers and Kubernetes' endpoint
 *     controller take to see the readiness failing (default 0).
 *  3. The given `servers` stop listening and their idle connections close.
 *  4. Requests in flight finish, within `graceMs` counted from the start; when the grace ends
 *     the servers' remaining connections are cut.
 *  5. The mesh closes (outbound pools), with what is left of the grace for its own calls.
 * `mesh.handleSignals()` runs it on SIGTERM, then lets the signal end the process.
 */
import { expectList, expectObject, join, rejectUnknown } from '../config/check.js';
import { optDurationMs, type Duration } from '../config/duration.js';
import { describe } from '../core/endpoint-spec.js';
import { InvalidConfigError } from '../core/errors.js';
import type { Disposable, MeshEvents } from '../core/events.js';
import type { Logger } from '../core/log.js';

/** What the drain needs of the inbound side (inbound.ts). */
interface DrainHub {
  readonly now: () => number;
  readonly log: Logger;
  readonly events: MeshEvents;
  readonly inFlight: number;
  startDraining(): void;
  whenIdle(): Promise<void>;
}

/** The little of a `net.Server` (an `http.Server`, `https.Server`, Fastify's `app.server`) the drain uses. */
export interface DrainableServer {
  close(callback?: (err?: Error) => void): unknown;
  closeIdleConnections?(): void;
  closeAllConnections?(): void;
}

export interface DrainOptions {
  /** Longest wait for requests in flight (and then the mesh's own calls), ms or a duration (`'25s'`), from the drain's start; at most 1 h. @default 30000 */
  graceMs?: Duration;
  /** How long requests are still taken after readiness starts failing, before `servers` stop listening, ms or a duration (`'5s'`). @default 0 */
  delayMs?: Duration;
  /** Servers to stop listening after `delayMs`; connections still open when the grace ends are cut. */
  servers?: readonly DrainableServer[];
}

/** `mesh.handleSignals()`'s options: the drain's, and which signals start it. */
export interface SignalOptions extends DrainOptions {
  /** @default ['SIGTERM'] */
  signals?: readonly NodeJS.Signals[];
}

interface ParsedDrain {
  readonly graceMs: number;
  readonly delayMs: number;
  readonly servers: readonly DrainableServer[];
}

function parseDrain(o: Record<string, unknown>, path: string): ParsedDrain {
  const servers = o.servers === undefined ? [] : expectList(o.servers, join(path, 'servers'), 'a list of servers');
  servers.forEach((s, i) => {
    if (typeof (s as DrainableServer | null)?.close !== 'function') throw new InvalidConfigError(join(join(path, 'servers'), i), `expected a server (with close()), got ${describe(s)}`);
  });
  const graceMs = optDurationMs(o, 'graceMs', path, 30_000, { min: 0, max: 3_600_000 });
  const delayMs = optDurationMs(o, 'delayMs', path, 0, { min: 0, max: 3_600_000 });
  if (delayMs > graceMs) throw new InvalidConfigError(join(path, 'delayMs'), `expected at most graceMs (${graceMs}), got ${delayMs}`);
  return { graceMs, delayMs, servers: servers as DrainableServer[] };
}

const sleep = (ms: number): { done: Promise<void>; cancel(): void } => {
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  return { done, cancel: () => clearTimeout(timer) };
};

/**
 * Drain `hub` with `raw` options (checked as `path`), then `closeMesh` with the grace left.
 * @throws InvalidConfigError for bad options, before anything starts
 */
export function drain(hub: DrainHub, raw: unknown, path: string, closeMesh: (graceMs: number) => Promise<void>): Promise<void> {
  const o = raw === undefined ? {} : expectObject(raw, path);
  rejectUnknown(o, ['graceMs', 'delayMs', 'servers'], path);
  return run(hub, parseDrain(o, path), closeMesh);
}

async function run(hub: DrainHub, o: ParsedDrain, closeMesh: (graceMs: number) => Promise<void>): Promise<void> {
  const startMs = hub.now();
  hub.startDraining();
  hub.log.debug(`drain: started with ${hub.inFlight} requests in flight (grace ${o.graceMs} ms, delay ${o.delayMs} ms)`);
  hub.events.emit('drain', { phase: 'started', inFlight: hub.inFlight });
  const grace = sleep(o.graceMs);
  if (o.delayMs > 0) {
    const delay = sleep(o.delayMs);
    await delay.done;
  }
  for (const server of o.servers) {
    server.close(() => {}); // its callback's error (not listening) says nothing the drain needs
    server.closeIdleConnections?.();
  }
  await Promise.race([hub.whenIdle(), grace.done]);
  grace.cancel();
  const left = hub.inFlight;
  if (left > 0) {
    hub.log.warn(`drain: the grace of ${o.graceMs} ms ended with ${left} requests in flight; their connections are cut`);
    for (const server of o.servers) server.closeAllConnections?.();
  }
  hub.events.emit('drain', { phase: 'idle', inFlight: left });
  await closeMesh(Math.max(0, o.graceMs - (hub.now() - startMs)));
  hub.events.emit('drain', { phase: 'closed', inFlight: hub.inFlight });
}

/**
 * On the first of `signals`, `start` the drain; once it is done, if nothing else listens for that
 * signal, raise it again so that it ends the process as it would have without meshlet.
 * @throws InvalidConfigError for bad options
 */
export function handleSignals(raw: unknown, path: string, start: (options: DrainOptions) => Promise<void>): Disposable {
  const o = raw === undefined ? {} : expectObject(raw, path);
  rejectUnknown(o, ['graceMs', 'delayMs', 'servers', 'signals'], path);
  const signals = o.signals === undefined ? ['SIGTERM'] : expectList(o.signals, join(path, 'signals'), 'a list of signal names');
  signals.forEach((s, i) => {
    if (typeof s !== 'string' || !/^SIG[A-Z0-9]+$/.test(s)) throw new InvalidConfigError(join(join(path, 'signals'), i), `expected a signal name such as "SIGTERM", got ${describe(s)}`);
  });
  const drainOptions: Record<string, unknown> = {};
  for (const k of ['graceMs', 'delayMs', 'servers']) if (o[k] !== undefined) drainOptions[k] = o[k];
  parseDrain(drainOptions, path); // checked now, not when the signal comes
  const dispose = (): void => {
    for (const s of signals as NodeJS.Signals[]) process.removeListener(s, onSignal);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    dispose();
    const raise = (): void => {
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    start(drainOptions as DrainOptions).then(raise, raise);
  };
  for (const s of signals as NodeJS.Signals[]) process.on(s, onSignal);
  return { dispose };
}
