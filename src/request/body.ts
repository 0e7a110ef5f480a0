/**
 * A guard around a streamed request body (a Readable, any async iterable — and what `fetch`
 * makes of every body, even a Buffer — and a one-shot sync iterable such as a generator, which
 * undici takes too and which a retry would otherwise send again exhausted: empty). It tells apart what the caller's body did from what the
 * endpoint did, and keeps the bytes as they are sent so the body can be sent again:
 *  - the bytes read are kept, up to `limitBytes` (Envoy's `per_request_buffer_limit_bytes`);
 *    once the body was read to its end within the limit it is replayable — a retry or a hedge
 *    sends the kept bytes, whole and unchanged. A body past the limit, or not read to its end,
 *    is not replayable, and a retry then is refused as for any stream: only when not a byte was
 *    read (a connect failure);
 *  - a body that throws, yields something that is not bytes, or is still being waited for when
 *    the attempt fails (it stalled) is the caller's error — it counts against no endpoint;
 *  - a Readable's 'error' is listened for from the start, as undici does for a stream it is given
 *    (it is given the guard instead): an error while the request waits for a slot or a connection
 *    is the body's failure when it is read, not an unhandled 'error' event that ends the process;
 *  - `release()` (the request ended) drops the kept bytes, and that listener.
 * Replayable bodies (none, a string, bytes, an ArrayBuffer, an array of chunks, a Blob or a
 * FormData, which undici reads anew each time) need no guard: `guardBody` returns null for them.
 */

export interface BodyGuard {
  /** What an attempt sends: the caller's chunks the first time, the kept bytes once replayable. */
  readonly body: AsyncIterable<unknown> | Buffer;
  /** True once the body was asked for its first chunk. */
  readonly started: boolean;
  /** True once the body was read to its end within the limit, until released. */
  readonly replayable: boolean;
  /** The caller's body's own failure, when it failed. */
  readonly error: Error | undefined;
  /**
   * True when an attempt's failure is the body's fault: it threw or yielded a non-chunk, or the
   * attempt timed out (`timedOut`) while the body was still being waited for (it stalled).
   */
  failed(timedOut: boolean): boolean;
  /** Drop the kept bytes. */
  release(): void;
}

/** Bytes undici can write; anything else from a body iterator is the caller's mistake. */
function isChunk(value: unknown): value is string | Uint8Array {
  return typeof value === 'string' || value instanceof Uint8Array;
}

class Guard implements BodyGuard {
  readonly #stream: AsyncIterable<unknown>;
  readonly #limit: number;
  started = false;
  error: Error | undefined = undefined;
  #waiting = false;
  /** Copies of the chunks read so far, or null once past the limit or released. */
  #kept: Buffer[] | null;
  #keptBytes = 0;
  #ended = false;

  /** The caller's stream while its 'error' is listened for, else null. */
  #emitter: { off(event: 'error', f: (err: Error) => void): unknown } | null = null;
  readonly #onError = (err: Error): void => {
    this.error ??= err instanceof Error ? err : new Error(String(err));
  };

  constructor(source: AsyncIterable<unknown>, limitBytes: number) {
    this.#stream = { [Symbol.asyncIterator]: () => this.#iterate(source) };
    this.#limit = limitBytes;
    this.#kept = limitBytes > 0 ? [] : null;
    const s = source as Partial<NodeJS.EventEmitter>;
    if (typeof s.on === 'function' && typeof s.off === 'function') {
      s.on('error', this.#onError);
      this.#emitter = s as NodeJS.EventEmitter;
    }
  }

  get replayable(): boolean {
    return this.#ended && this.#kept !== null;
  }

  get body(): AsyncIterable<unknown> | Buffer {
    if (!this.replayable) return this.#stream;
    const kept = this.#kept!;
    if (kept.length !== 1) this.#kept = [Buffer.concat(kept, this.#keptBytes)];
    return this.#kept![0]!;
  }

  failed(timedOut: boolean): boolean {
    return this.error !== undefined || (timedOut && this.#waiting);
  }

  release(): void {
    this.#kept = null;
    this.#keptBytes = 0;
    this.#emitter?.off('error', this.#onError);
    this.#emitter = null;
  }

  #keep(chunk: string | Uint8Array): void {
    if (this.#kept === null) return;
    // A copy: the caller may reuse its buffer once the chunk was written.
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk); // UTF-8, as undici writes a string
    if (this.#keptBytes + bytes.length > this.#limit) {
      this.release(); // past the limit: not replayable
      return;
    }
    this.#kept.push(bytes);
    this.#keptBytes += bytes.length;
  }

  #iterate(source: AsyncIterable<unknown>): AsyncIterator<unknown> {
    this.started = true;
    const it = source[Symbol.asyncIterator]();
    return {
      next: async () => {
        this.#waiting = true;
        try {
          const r = await it.next();
          if (r.done) this.#ended = true;
          else if (!isChunk(r.value)) throw (this.error = new TypeError(`request body yielded ${typeof r.value}, expected a string or bytes`));
          else this.#keep(r.value);
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

/**
 * A guard for a streamed body that keeps up to `limitBytes` of it for replay (0: none), or null
 * when the body is replayable as it is.
 */
export function guardBody(body: unknown, limitBytes: number): BodyGuard | null {
  if (body == null || typeof body !== 'object') return null; // a string (or what undici refuses)
  if (ArrayBuffer.isView(body) || body instanceof ArrayBuffer || Array.isArray(body)) return null;
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return new Guard(body as AsyncIterable<unknown>, limitBytes);
  const tag = (body as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  if (tag === 'FormData' || tag === 'Blob' || tag === 'File') return null;
  if (typeof (body as Iterable<unknown>)[Symbol.iterator] === 'function') return new Guard(fromSync(body as Iterable<unknown>), limitBytes);
  return null;
}

/** A sync iterable as an async one, read once, as undici reads it. */
function fromSync(source: Iterable<unknown>): AsyncIterable<unknown> {
  return {
    async *[Symbol.asyncIterator]() {
      yield* source;
    },
  };
}
