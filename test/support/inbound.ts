/**
 * Helpers for tests of the inbound side: serve a request listener on 127.0.0.1 port 0 (closed in
 * teardown, open connections included), and a gate a handler waits at until the test opens it —
 * so "a request in flight" is a state the test holds, not a race with the clock.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Served {
  readonly server: http.Server;
  readonly url: string;
  readonly port: number;
  /** Stop listening and destroy every connection still open. */
  close(): Promise<void>;
}

/** Serve `listener` (or an existing server) on 127.0.0.1, port 0. */
export async function serve(listener: http.RequestListener | http.Server): Promise<Served> {
  const server = listener instanceof http.Server ? listener : http.createServer(listener);
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        if (!server.listening) return resolve();
        server.close(() => resolve());
      }),
  };
}

/** Requests a handler holds until the test lets them go, one by one or all at once. */
export class Gate {
  #waiting: (() => void)[] = [];
  #arrivals: (() => void)[] = [];
  #open = false;

  /** How many handlers wait at the gate now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** In a handler: resolves when the test lets this request go. */
  pass(): Promise<void> {
    if (this.#open) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.#waiting.push(resolve));
    for (const a of this.#arrivals.splice(0)) a();
    return p;
  }

  /** In the test: resolves once `n` handlers wait at the gate. */
  async arrived(n: number): Promise<void> {
    for (let i = 0; i < 10_000 && this.#waiting.length < n; i++) await new Promise<void>((resolve) => this.#arrivals.push(resolve));
    if (this.#waiting.length < n) throw new Error(`only ${this.#waiting.length} of ${n} requests reached the gate`);
  }

  /** Let the oldest waiting request go. */
  releaseOne(): void {
    this.#waiting.shift()?.();
  }

  /** Let every waiting request go, and every later one pass at once. */
  open(): void {
    this.#open = true;
    for (const w of this.#waiting.splice(0)) w();
  }
}
