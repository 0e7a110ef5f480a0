/**
 * A guard around a streamed request body (a Readable or any async iterable). It tells apart what
 * the caller's body did from what the endpoint did, so that:
 *  - retries know whether a single byte was read (a streamed body is never replayed);
 *  - a body that throws, yields something that is not bytes, or is still being waited for when
 *    the attempt fails (it stalled) is the caller's error — it counts against no endpoint.
 * Replayable bodies (none, a string, bytes) need no guard: `guardBody` returns null for them.
 */

export interface BodyGuard {
  /** What undici sends: an async iterable over the caller's chunks. */
  readonly body: AsyncIterable<unknown>;
  /** True once the body was asked for its first chunk. */
  readonly started: boolean;
  /** The caller's body's own failure, when it failed. */
  readonly error: Error | undefined;
  /**
   * True when an attempt's failure is the body's fault: it threw or yielded a non-chunk, or the
   * attempt timed out (`timedOut`) while the body was still being waited for (it stalled).
   */
  failed(timedOut: boolean): boolean;
}

/** Bytes undici can write; anything else from a body iterator is the caller's mistake. */
function isChunk(value: unknown): boolean {
  return typeof value === 'string' || value instanceof Uint8Array;
}

class Guard implements BodyGuard {
  readonly body: AsyncIterable<unknown>;
  started = false;
  error: Error | undefined = undefined;
  #waiting = false;

  constructor(source: AsyncIterable<unknown>) {
    this.body = { [Symbol.asyncIterator]: () => this.#iterate(source) };
  }

  failed(timedOut: boolean): boolean {
    return this.error !== undefined || (timedOut && this.#waiting);
  }

  #iterate(source: AsyncIterable<unknown>): AsyncIterator<unknown> {
    this.started = true;
    const it = source[Symbol.asyncIterator]();
    return {
      next: async () => {
        this.#waiting = true;
        try {
          const r = await it.next();
          if (!r.done && !isChunk(r.value)) {
            throw (this.error = new TypeError(`request body yielded ${typeof r.value}, expected a string or bytes`));
          }
          return r;
        } catch (err) {
          this.error ??= err instanceof Error ? err : new Error(String(err));
          throw err;
        } finally {
          this.#waiting = false;
        }
      },
      return: async (value?: unknown) => {
        await it.return?.(value);
        return { done: true, value };
      },
    };
  }
}

/** A guard for a streamed body, or null when the body is replayable as it is. */
export function guardBody(body: unknown): BodyGuard | null {
  if (body == null || typeof body === 'string' || body instanceof Uint8Array) return null;
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') return null;
  return new Guard(body as AsyncIterable<unknown>);
}
