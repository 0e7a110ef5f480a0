/**
 * What the Kubernetes sources' requests share (kubernetes-watch.ts, kubernetes.ts): a deadline for
 * a request that is not a watch (`withDeadline`), a transport failure that says which request
 * failed (`requestFailed`), and a watch stream split into lines in linear time, each line capped
 * (`LineSplitter`, MAX_WATCH_LINE_BYTES).
 */

/**
 * A request that got no answer (connection refused or reset, TLS failure) or whose answer broke
 * off: says which request, the transport's message in parentheses, the transport error as its
 * cause. Never an aborted one: the deadline's or stop()'s reason says that.
 */
export class RequestFailed extends Error {}

/** `<what> failed (<the transport's message>)`, with `err` as its cause. */
export function requestFailed(what: string, err: unknown): RequestFailed {
  const said = err instanceof Error ? err.message || err.name : String(err);
  return new RequestFailed(`${what} failed (${said})`, { cause: err });
}

/**
 * The longest watch line (one event) read: 8 MiB. etcd stores no object over 1.5 MiB (its default
 * request limit; an EndpointSlice of the most, 1,000, endpoints with its managedFields is well under
 * that), and JSON is seldom twice the size of the stored protobuf: 8 MiB is over 5 times the largest
 * real object. Past it the line is no event meshlet could use and would only grow the heap: the
 * watch fails (backs off, relists). The list answer has no such bound (a list is legitimately big).
 */
export const MAX_WATCH_LINE_BYTES = 8 * 1024 * 1024;

/** A watch line past {@link MAX_WATCH_LINE_BYTES}: the watch fails, the resourceVersion is forgotten (relist). */
export class LineTooLong extends Error {}

/**
 * The lines of a watch stream, split on '\n' in linear time: each chunk is searched once, from
 * where the last line ended, and the pieces of a line not yet ended are kept as they came and
 * joined once, when its newline arrives (no rescan of a growing buffer per chunk). Bytes, not
 * strings: a UTF-8 character split across two chunks is decoded whole ('\n' is never part of one).
 */
export class LineSplitter {
  #pending: Buffer[] = [];
  /** Bytes of the line not ended yet. */
  pendingBytes = 0;

  constructor(readonly maxBytes: number) {}

  /** The lines this chunk ends (without '\n'); throws {@link LineTooLong} past the cap. */
  push(chunk: Buffer, tooLong: () => LineTooLong): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      if (this.pendingBytes + nl - start > this.maxBytes) throw tooLong();
      const piece = chunk.subarray(start, nl);
      lines.push((this.#pending.length > 0 ? Buffer.concat([...this.#pending, piece]) : piece).toString('utf8'));
      this.#pending = [];
      this.pendingBytes = 0;
      start = nl + 1;
    }
    if (start < chunk.length) {
      this.pendingBytes += chunk.length - start;
      if (this.pendingBytes > this.maxBytes) throw tooLong();
      this.#pending.push(chunk.subarray(start));
    }
    return lines;
  }
}

/**
 * Run `fn` with a signal that aborts when `signal` does or after `ms` (an unref'd timer, so fake
 * timers drive it); when the deadline fired, `fn`'s failure is replaced by `timedOut` — undici's
 * own error would say only "This operation was aborted".
 */
export async function withDeadline<T>(signal: AbortSignal, ms: number, timedOut: () => Error, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const abort = (): void => ac.abort(signal.reason);
  signal.addEventListener('abort', abort, { once: true });
  let fired = false;
  const t = setTimeout(() => {
    fired = true;
    ac.abort(timedOut());
  }, ms);
  t.unref();
  try {
    return await fn(ac.signal);
  } catch (err) {
    throw fired && !signal.aborted ? (ac.signal.reason as Error) : err;
  } finally {
    clearTimeout(t);
    signal.removeEventListener('abort', abort);
  }
}
