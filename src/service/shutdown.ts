/**
 * How a service ends, and the requests it must see settle first. `close(graceMs)`: nothing new is
 * admitted (`closed`); the service's own parts stop (`stopParts`: discovery, health, pipelines,
 * TLS) and the grace starts, both at once; the requests in flight — retries included — go on
 * within the grace; whatever still runs when it ends is cut (`cut`: MESH_CLOSED, no retry, nothing
 * counted against an endpoint: the layers read it); a part whose stop has not settled by then (a
 * discovery source's `stop()` that hangs) is left behind, told to `stalled`; then the pools close,
 * and nothing is sent or created after that. It resolves once every request has settled.
 * `destroy()` is a close with no grace, also when a close is already waiting out its grace.
 *
 * An upgraded connection (a WebSocket, a CONNECT tunnel: the endpoint's socket, handed to the
 * caller when its request settled) holds a close as a request does: the grace waits for it to
 * close, and when the grace ends it is destroyed — nothing is sent on it after that.
 */
import type { Duplex } from 'node:stream';
import { MeshClosedError } from '../core/errors.js';
import type { Call } from '../request/call.js';
import { LiveCalls } from '../request/live-calls.js';
import type { EndpointSet } from './endpoint-set.js';

export class Shutdown {
  /** Requests not yet settled: an intrusive list (no allocation per request). */
  readonly live = new LiveCalls();
  /** Upgraded connections still open. */
  readonly #tunnels = new Set<Duplex>();
  /** True once close started: nothing new is admitted. */
  closed = false;
  /** True once the grace ran out: nothing may be sent. */
  cut = false;
  readonly #endpoints: EndpointSet;
  #settled: (() => void) | null = null;
  /** Ends close's grace early (destroy while closing). */
  #endGrace: (() => void) | null = null;
  #closing: Promise<void> | null = null;
  #destroyed = false;
  readonly #stalled: (graceMs: number) => void;

  /** `stalled(graceMs)`: the parts had not stopped when the grace ended; close went on without them. */
  constructor(endpoints: EndpointSet, stalled: (graceMs: number) => void) {
    this.#endpoints = endpoints;
    this.#stalled = stalled;
  }

  /** `call` settled, or left for another service: once none is left, a waiting close goes on. */
  left(call: Call): void {
    this.live.delete(call);
    if (this.live.size === 0 && this.#tunnels.size === 0) this.#settled?.();
  }

  /** `socket`, a request's upgraded connection, is open until it closes; once the grace is over it is destroyed. */
  tunnel(socket: Duplex): void {
    if (this.cut) return void socket.destroy();
    this.#tunnels.add(socket);
    socket.once('close', () => {
      this.#tunnels.delete(socket);
      if (this.live.size === 0 && this.#tunnels.size === 0) this.#settled?.();
    });
  }

  /** Close within `graceMs`; `stopParts` runs at once (its synchronous part before anything else). */
  close(graceMs: number, stopParts: () => Promise<void>): Promise<void> {
    return (this.#closing ??= this.#close(graceMs, stopParts));
  }

  /** Cut every request now. */
  destroy(stopParts: () => Promise<void>): Promise<void> {
    this.#destroyed = true;
    const closing = this.close(0, stopParts);
    this.#endGrace?.();
    return closing;
  }

  async #close(graceMs: number, stopParts: () => Promise<void>): Promise<void> {
    this.closed = true;
    let stopped = false;
    const done = (): void => void (stopped = true);
    // The grace counts from here, not from when the parts have stopped: a source's stop() that is
    // slow or never settles must not stretch it. (What a stop rejects with is logged by the part:
    // ServiceDiscovery.stop.)
    const stopping = stopParts().then(done, done);
    const idle = (): boolean => this.live.size === 0 && this.#tunnels.size === 0;
    // With nothing in flight, a stop that settles at once (most do) leaves nothing to wait for: no timer.
    if (idle()) await Promise.race([stopping, nextTurn()]);
    if (!stopped || !idle()) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (stopped && idle()) resolve();
        };
        this.#settled = check;
        this.#endGrace = resolve;
        void stopping.then(check);
        timer = setTimeout(resolve, this.#destroyed ? 0 : graceMs);
      });
      this.#endGrace = null;
      clearTimeout(timer);
      if (!stopped) {
        // A stop that settles in a few ticks (a destroy right after close) is not one left behind.
        await Promise.race([stopping, nextTurn()]);
        if (!stopped) this.#stalled(this.#destroyed ? 0 : graceMs);
      }
      this.cut = true;
      for (const socket of this.#tunnels) socket.destroy();
      this.#tunnels.clear();
    }
    if (this.live.size > 0) await this.#cutOff();
    this.cut = true;
    await this.#endpoints.close();
  }

  /** The grace ran out: every request still running ends with MESH_CLOSED. */
  async #cutOff(): Promise<void> {
    this.cut = true;
    const settled = new Promise<void>((resolve) => (this.#settled = resolve));
    this.live.forEach((c) => c.abort(new MeshClosedError()));
    if (this.live.size > 0) {
      // Attempts abort asynchronously; destroying the pools settles any that still hold on.
      await this.#endpoints.destroy();
      await settled;
    }
  }
}

/** Settles on the next turn of the event loop, once every promise job queued before it has run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
