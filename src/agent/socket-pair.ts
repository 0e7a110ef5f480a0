/**
 * Two connected in-process sockets: what one writes, the other reads, with no network and no
 * file descriptor. The mesh agent hands one end to `node:http`'s client (a ClientRequest) and
 * feeds the other to an unbound `http.Server`, so the client's requests are parsed in process.
 *
 * `stream.duplexPair()` does the byte plumbing but is not socket enough for `node:http`: the
 * client and its Agent call `setTimeout` (a request timeout, the free-socket timeout),
 * `setKeepAlive`, `setNoDelay`, `ref` and `unref`. This pair adds those, with a socket's meaning:
 *  - back-pressure: a write is acknowledged once the peer's read buffer takes it, so a reader that
 *    stops reading stops the writer (`write()` returns false, then 'drain');
 *  - `end()` is a FIN: the peer reads end-of-stream, and as neither side allows half-open
 *    connections (as `net.Socket` by default), both then close;
 *  - `destroy()` is a reset: the peer is destroyed too (without an error, as a peer sees a
 *    connection drop); `destroy(err)` gives `err` to this side's 'error' listeners only;
 *  - `setTimeout(ms)` emits 'timeout' after `ms` without reads or writes; its timer never keeps
 *    the process alive (the work a socket waits on does, as for a real socket).
 */
import { Duplex } from 'node:stream';

/** One end of an in-process connection. */
export class InProcessSocket extends Duplex {
  /** Always false: the connection exists as soon as the pair does. */
  readonly connecting = false;
  /** Socket fields some clients read; an in-process connection has no address. */
  readonly remoteAddress: string | undefined = undefined;
  readonly remotePort: number | undefined = undefined;
  #peer: InProcessSocket | null = null;
  /** The callback of a write the peer's read buffer could not take yet. */
  #blocked: ((err?: Error | null) => void) | null = null;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor() {
    super({ allowHalfOpen: false, decodeStrings: true });
  }

  /** Connect `a` and `b`. */
  static link(a: InProcessSocket, b: InProcessSocket): void {
    a.#peer = b;
    b.#peer = a;
  }

  /** The other end, while connected. */
  get peer(): InProcessSocket | null {
    return this.#peer;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#deliver([chunk], callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void): void {
    this.#deliver(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  #deliver(chunks: Buffer[], callback: (err?: Error | null) => void): void {
    const peer = this.#peer;
    if (peer === null || peer.destroyed) {
      callback(Object.assign(new Error('in-process socket: the other end is closed'), { code: 'EPIPE' }));
      return;
    }
    this.#touch();
    peer.#touch();
    let room = true;
    for (const c of chunks) room = peer.push(c);
    // Acknowledge now if the peer's buffer has room, else when the peer reads (its _read).
    if (room) callback();
    else peer.#blocked = callback;
  }

  override _read(): void {
    const cb = this.#blocked;
    if (cb !== null) {
      this.#blocked = null;
      cb();
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    const peer = this.#peer;
    if (peer !== null && !peer.destroyed) peer.push(null);
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#clearTimer();
    const peer = this.#peer;
    this.#peer = null;
    if (peer !== null) {
      peer.#peer = null;
      // Writes either way that will never be read now fail, as on a reset connection.
      const reset = (): Error => Object.assign(new Error('in-process socket: the other end is closed'), { code: 'ECONNRESET' });
      const theirs = this.#blocked;
      const ours = peer.#blocked;
      this.#blocked = peer.#blocked = null;
      peer.destroy();
      theirs?.(reset());
      ours?.(reset());
    }
    callback(err);
  }

  /** Emit 'timeout' after `ms` of inactivity (0 turns it off), as `net.Socket#setTimeout`. */
  setTimeout(ms: number, callback?: () => void): this {
    if (callback) this.once('timeout', callback);
    if (ms === this.#timeoutMs && this.#timer !== null) {
      this.#timer.refresh(); // node:http sets the same timeout around every request: reuse the timer
      return this;
    }
    this.#timeoutMs = ms;
    this.#clearTimer();
    if (ms > 0 && !this.destroyed) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.emit('timeout');
      }, ms);
      this.#timer.unref();
    }
    return this;
  }

  #touch(): void {
    if (this.#timer !== null) this.#timer.refresh();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** The inactivity timeout set by {@link setTimeout}, ms (0 = none). */
  get timeout(): number {
    return this.#timeoutMs;
  }

  /** No-op: there is no TCP connection to keep alive. */
  setKeepAlive(): this {
    return this;
  }

  /** No-op: there is no Nagle's algorithm in process. */
  setNoDelay(): this {
    return this;
  }

  /** No-op: an in-process socket never keeps the process alive by itself. */
  ref(): this {
    return this;
  }

  /** No-op, see {@link ref}. */
  unref(): this {
    return this;
  }

  /** An in-process connection has no address. */
  address(): Record<string, never> {
    return {};
  }
}

/** A connected pair: `[client, server]`. */
export function socketPair(): [InProcessSocket, InProcessSocket] {
  const a = new InProcessSocket();
  const b = new InProcessSocket();
  InProcessSocket.link(a, b);
  return [a, b];
}
