/**
 * The timers of one request (request/call.ts extends this): its deadline, and the wait it may be
 * in (a back-off, a rate-limit wait, a fault delay). Kept in the call's own object — a class in
 * its chain, not a field — so that a request is still one allocation.
 *  - The deadline is armed by the layers that set one (deadline, route timeouts); the earliest
 *    holds. When it fires, the call is aborted with the layer's error, and `timedOut` says so to
 *    the outcome rules: an attempt on a connection awaiting headers times out ('timeout', as
 *    Envoy reports it), one still queued for a connection is abandoned (blameless). It never keeps the process
 *    alive by itself: the request's socket or wait does.
 *  - A wait keeps the process alive while the request waits on it, and is cleared when the call
 *    ends (`clearTimers`, from the call's settle).
 * Either may be longer than a Node timer can run (MAX_TIMER_MS): it is then timed in steps.
 */
import { PickState } from './pick-state.js';

/**
 * The longest delay Node's timers take (2^31 − 1 ms, about 24.8 days): past it setTimeout warns
 * (TimeoutOverflowWarning) and fires after 1 ms. A longer deadline or wait — a caller's
 * `grpc-timeout: 600H` — is timed in steps of at most this.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export abstract class CallTimers extends PickState {
  /** When the call started, on `now()`'s clock. */
  abstract readonly startMs: number;
  /** True once the call has ended or was aborted. */
  abstract get done(): boolean;
  abstract abort(reason: Error): void;
  protected abstract now(): number;
  /** `now()`, or the call's start while it is still in its dispatch (nothing has waited yet). */
  protected abstract attemptStartMs(): number;

  /** True when the deadline fired (the call was aborted for it). */
  timedOut = false;
  #deadlineMs = Infinity;
  #deadline: NodeJS.Timeout | null = null;
  #wait: NodeJS.Timeout | null = null;

  /**
   * Arm the deadline: `ms` from now — from the call's start when it is armed in its dispatch; after
   * a route's fault delay, from the end of the delay, as Envoy's router times a request only once
   * the fault filter lets it through — and abort with `error()`; the earliest armed one holds.
   * `remainingMs()` (the time sent on in the deadline headers) counts down to the same instant.
   */
  setDeadline(ms: number, error: () => Error): void {
    const at = this.attemptStartMs() + ms;
    if (at >= this.#deadlineMs) return;
    if (this.#deadline !== null) clearTimeout(this.#deadline);
    this.#deadlineMs = at;
    this.#armDeadline(ms, error);
  }

  /** The deadline's timer, `ms` on: in steps of at most MAX_TIMER_MS (a longer delay would fire at once). */
  #armDeadline(ms: number, error: () => Error): void {
    const step = Math.min(ms, MAX_TIMER_MS);
    this.#deadline = setTimeout(() => {
      this.#deadline = null;
      if (this.done) return;
      if (ms > step) return this.#armDeadline(ms - step, error);
      this.timedOut = true;
      this.abort(error());
    }, step);
    // The request itself (a socket, a wait below) keeps the process alive, not its deadline.
    this.#deadline.unref?.();
  }

  /** Time left before the deadline, ms (Infinity without one). */
  remainingMs(): number {
    return this.#deadlineMs === Infinity ? Infinity : this.#deadlineMs - this.now();
  }

  /**
   * Go on with `fn` after `ms` (a back-off, a rate-limit wait, a fault delay). The timer keeps the
   * process alive while the request waits on it, and is cleared if the request ends first.
   */
  wait(ms: number, fn: () => void): void {
    if (this.#wait !== null) clearTimeout(this.#wait);
    const step = Math.min(Math.max(0, ms), MAX_TIMER_MS);
    this.#wait = setTimeout(() => {
      this.#wait = null;
      if (this.done) return;
      if (ms > step) this.wait(ms - step, fn);
      else fn();
    }, step);
  }

  /** The call ended: neither timer may fire. */
  protected clearTimers(): void {
    if (this.#deadline !== null) clearTimeout(this.#deadline);
    if (this.#wait !== null) clearTimeout(this.#wait);
    this.#deadline = this.#wait = null;
  }
}
