/**
 * A service's side of its discovery source: it starts and stops the source, knows whether the
 * source has answered yet (requests wait for that: the ready layer), counts answers and errors
 * for stats, and says when discovery fails or answers again — warned once per change of state,
 * every error still counted and announced (`discovery-error`). The endpoints an answer brings are
 * the service's to apply (service.ts).
 */
import type { MeshEvents } from '../core/events.js';
import { StateWarning, type Logger } from '../core/log.js';
import { startDiscovery, type DiscoveryContext, type DiscoverySource } from '../discovery/discovery.js';
import { redact } from '../discovery/redact.js';
import type { EndpointSpec } from '../core/endpoint-spec.js';
import type { ParsedService } from './config.js';

export class ServiceDiscovery {
  readonly #service: string;
  readonly #log: Logger;
  readonly #events: MeshEvents;
  readonly #stop = new AbortController();
  #source: DiscoverySource | null = null;
  /** True once the source has answered. */
  ready = false;
  #whenReady: { promise: Promise<void>; resolve: () => void } | null = null;
  updates = 0;
  errors = 0;
  lastError: string | undefined = undefined;
  /** A failing spell: warned of when it starts, and when an answer ends it. */
  readonly #failing: StateWarning;

  constructor(service: string, deps: { log: Logger; events: MeshEvents }) {
    this.#service = service;
    this.#log = deps.log;
    this.#failing = new StateWarning(deps.log);
    this.#events = deps.events;
  }

  /** Start the config's source; throws as startDiscovery. `known()` is the endpoints the service has now. */
  start(config: ParsedService, deps: { update: (specs: readonly EndpointSpec[]) => void; known: () => number; now: () => number; random: () => number }): void {
    const ctx: DiscoveryContext = {
      service: this.#service,
      update: deps.update,
      error: (err) => this.#error(err, deps.known()),
      signal: this.#stop.signal,
      log: this.#log,
      now: deps.now,
      random: deps.random,
    };
    this.#source = startDiscovery(config.discovery, config.discoveryType, config.discoveryOptions, ctx, `services.${this.#service}.discovery`);
  }

  /** The running source (e.g. a StaticSource whose list can be replaced). */
  get source(): DiscoverySource | null {
    return this.#source;
  }

  /** Settles once the source has answered, or discovery stopped. */
  whenReady(): Promise<void> {
    if (this.ready || this.#stop.signal.aborted) return Promise.resolve();
    if (this.#whenReady === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#whenReady = { promise, resolve };
    }
    return this.#whenReady.promise;
  }

  /** An answer of `count` endpoints arrived (counted; said when it ends a failing spell). */
  answered(count: number): void {
    if (this.#failing.active) this.#failing.clear(`service ${this.#service}: discovery answers again (${count} endpoints)`);
    this.updates++;
  }

  /** The answer was applied: requests waiting for the first one may go. */
  markReady(): void {
    this.ready = true;
    this.#whenReady?.resolve();
  }

  /**
   * Discovery failed: counted and announced always; warned about once per change of state. The
   * message is redacted here, whatever the source (a custom one too): what looks like a credential
   * never reaches the events, the logger or the stats. A source that was stopped (the service
   * closed) may still report what it was doing: that is dropped, at debug.
   */
  #error(err: Error, known: number): void {
    const message = redact(err instanceof Error ? err.message : String(err));
    if (this.#stop.signal.aborted) return this.#log.debug(`service ${this.#service}: discovery stopped; a late error dropped: ${message}`);
    this.errors++;
    this.lastError = message;
    this.#events.emit('discovery-error', { service: this.#service, message });
    const line = `service ${this.#service}: discovery failed, keeping ${known} known endpoints: ${message}`;
    this.#failing.warn('failing', line);
  }

  /** Stop the source (its signal aborts at once; waiters for the first answer are released). */
  async stop(): Promise<void> {
    this.#stop.abort();
    this.#whenReady?.resolve();
    try {
      await this.#source?.stop();
    } catch (err) {
      this.#log.warn(`service ${this.#service}: stopping discovery failed: ${(err as Error).message}`);
    }
  }
}
