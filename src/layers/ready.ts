/**
 * The ready layer: requests that arrive before discovery's first answer wait for it, up to the
 * service's `readyTimeoutMs` counted from when the service's pipeline was built (createMesh, a
 * reconfigure, a live config change). If discovery has not answered by then they fail with
 * NO_HEALTHY_ENDPOINT naming discovery's last error, if it reported one. The timer keeps the
 * process alive only while a request waits on it (one that ended — aborted, its deadline — lets
 * go). Once ready, one comparison.
 */
import { NoHealthyEndpointError } from '../core/errors.js';
import type { Call } from '../request/call.js';
import type { Layer, Next } from '../request/layer.js';

export class ReadyLayer implements Layer {
  readonly name = 'ready';
  readonly #service: string;
  readonly #lastError: () => string | undefined;
  #state: 'waiting' | 'ready' | 'timed-out' = 'waiting';
  #waiters: { call: Call; next: Next }[] = [];
  #timer: NodeJS.Timeout | null = null;

  /** @param lastError discovery's last error message, for the failure a waiting request gets */
  constructor(service: string, readyTimeoutMs: number, lastError: () => string | undefined) {
    this.#service = service;
    this.#lastError = lastError;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#state !== 'waiting') return;
      this.#state = 'timed-out';
      this.#flush((w) => w.call.fail(this.#notReady()));
    }, readyTimeoutMs);
    this.#timer.unref();
  }

  handle(call: Call, next: Next): void {
    if (this.#state === 'ready') return next(call);
    if (this.#state === 'timed-out') return call.fail(this.#notReady());
    this.#waiters.push({ call, next });
    this.#timer?.ref();
    call.onEnd(this.#ended);
  }

  /** A waiting request ended (aborted, its deadline): with none left, the timer no longer keeps the process alive. */
  readonly #ended = (): void => {
    if (this.#state !== 'waiting') return;
    this.#waiters = this.#waiters.filter((w) => !w.call.done);
    if (this.#waiters.length === 0) this.#timer?.unref();
  };

  /** Discovery answered: let the waiting requests go on. */
  ready(): void {
    if (this.#state === 'ready') return;
    this.#state = 'ready';
    this.#stopTimer();
    this.#flush((w) => w.next(w.call));
  }

  #notReady(): NoHealthyEndpointError {
    const why = this.#lastError();
    return new NoHealthyEndpointError(this.#service, why === undefined ? 'discovery has not answered yet' : `discovery has not answered yet; its last error: ${why}`);
  }

  #flush(each: (w: { call: Call; next: Next }) => void): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) if (!w.call.done) each(w);
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  close(error: () => Error): void {
    this.#stopTimer();
    this.#flush((w) => w.call.fail(error()));
  }
}
