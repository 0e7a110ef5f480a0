/**
 * The controller a caller's handler holds for one request (request/call.ts extends this): undici's
 * DispatchController, kept across attempts the way undici's RetryHandler keeps its proxy — abort
 * reaches whichever attempt is current, pause and resume every attempt in flight for the caller
 * (the current one and the hedges racing it), so back-pressure survives a retry and a race. While hedged
 * copies race (`others`), the hedge layer decides which one becomes current and cancels the rest.
 * A class in the call's chain, not a field, so that a request is still one allocation.
 */
import type { Dispatcher } from 'undici';
import type { Attempt } from './attempt.js';
import { CallTimers } from './call-timers.js';

type Controller = Dispatcher.DispatchController;

export abstract class CallController extends CallTimers implements Controller {
  /** The attempt whose callbacks count; older ones are ignored. */
  current: Attempt | null = null;
  /**
   * Hedged attempts still racing `current` (their callbacks count too), or null: set by the hedge
   * layer, which keeps every one of them in flight and picks the winner.
   */
  others: Attempt[] | null = null;

  #aborted = false;
  #reason: Error | null = null;
  #paused = false;

  /** End the request with `error` (request/call.ts). */
  abstract fail(error: Error): void;
  abstract get rawHeaders(): Controller['rawHeaders'];

  get aborted(): boolean {
    return this.#aborted;
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  get rawTrailers(): Controller['rawTrailers'] {
    return this.current?.controller?.rawTrailers;
  }

  /**
   * The caller (or the deadline) aborts: the current attempt is aborted (its error ends the call);
   * one still queued for a connection is abandoned — blameless, the endpoint never got it; with
   * none in flight the call fails now.
   */
  abort(reason: Error): void {
    if (this.done) return;
    this.#aborted = true;
    this.#reason = reason;
    const cur = this.current;
    if (cur !== null && !cur.ended) {
      if (cur.controller !== null) return cur.controller.abort(reason);
      cur.abandon(reason); // its error normally ends the call through the sinks
    }
    this.fail(reason); // a no-op once the call has settled
  }

  /** Back-pressure reaches every copy in flight: the current attempt, and hedges racing it (any may win). */
  pause(): void {
    this.#paused = true;
    this.current?.controller?.pause();
    if (this.others !== null) for (const a of this.others) a.controller?.pause();
  }

  resume(): void {
    this.#paused = false;
    this.current?.controller?.resume();
    if (this.others !== null) for (const a of this.others) a.controller?.resume();
  }

  /** True when `attempt`'s callbacks count: it is the current one, or a hedge racing it. */
  counts(attempt: Attempt): boolean {
    return attempt === this.current || (this.others !== null && this.others.includes(attempt));
  }
}
