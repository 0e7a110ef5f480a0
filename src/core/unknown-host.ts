/**
 * A hint for mistyped service names. A host that is not a configured service passes through to
 * an ordinary connection by default — in Kubernetes a bare name may well be a real service
 * outside the mesh — so `http://ordrs/` is looked up in DNS. When such a bare (single-label) name
 * then fails to resolve, the caller's error says why it was looked up and names the closest
 * configured service:
 *
 *     getaddrinfo ENOTFOUND ordrs — "ordrs" is not a configured meshlet service, so it was
 *     resolved as a host name; did you mean "orders"?
 *
 * The error is the resolver's own, annotated: its `code` (ENOTFOUND, EAI_AGAIN), `errno`,
 * `syscall` and `hostname` stay, so code that handles DNS failures (a client's retry rules)
 * behaves as before; only `message` (and the first line of `stack`) change. Names with a dot are
 * left alone: they are meant for DNS, and a mistyped service name has none.
 *
 * Used on both passthrough paths: the dispatcher's ordinary Agent (`hintUnknownHost` wraps the
 * handler) and the mesh http.Agent's own sockets (`annotateUnresolved` in its DNS lookup).
 */
import { closest, distance } from 'fastest-levenshtein';
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';

type Controller = Dispatcher.DispatchController;

/** Resolver failures that mean "no such name" (or no answer about it), from getaddrinfo and c-ares. */
const UNRESOLVED = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_NODATA', 'ENODATA']);
const annotated = new WeakSet<object>();

/**
 * The host name of `host` (`name`, `name:port`) when it is a single label that could be a
 * mistyped service name — no dot, not an IP address, not `localhost` — lower-cased; else null.
 */
export function bareName(host: string): string | null {
  if (host.includes('.') || host.startsWith('[')) return null;
  const colon = host.indexOf(':');
  const name = (colon < 0 ? host : host.slice(0, colon)).toLowerCase();
  return name === '' || name === 'localhost' ? null : name;
}

/**
 * The name of `names` closest to `word` when it is within a third of `word`'s length (at least
 * 2 edits) — the rule config errors use for "did you mean" — else undefined.
 */
export function closestName(word: string, names: Iterable<string>): string | undefined {
  const list = [...names];
  if (list.length === 0) return undefined;
  const best = closest(word, list);
  return distance(word, best) <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** What the error of an unresolved bare `name` should add. */
export function unknownHostHint(name: string, names: Iterable<string>): string {
  const list = [...names];
  const best = closestName(name, list);
  const why = `"${name}" is not a configured meshlet service, so it was resolved as a host name`;
  if (best !== undefined) return `${why}; did you mean "${best}"?`;
  if (list.length === 0) return `${why} (no service is configured)`;
  const shown = list.slice(0, 5).join(', ');
  return `${why} (configured: ${shown}${list.length > 5 ? ', …' : ''})`;
}

/**
 * When `err` is a failure to resolve the bare host `host`, add the hint to its message (once);
 * any other error, or a host with a dot, is left as it is. Returns `err`.
 */
export function annotateUnresolved<E>(err: E, host: string, names: Iterable<string>): E {
  if (typeof err !== 'object' || err === null || annotated.has(err)) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string' || !UNRESOLVED.has(code)) return err;
  const name = bareName(host);
  if (name === null) return err;
  const e = err as unknown as Error;
  const before = e.message;
  e.message = `${before} — ${unknownHostHint(name, names)}`;
  if (typeof e.stack === 'string' && e.stack.includes(before)) e.stack = e.stack.replace(before, e.message);
  annotated.add(err);
  return err;
}

/**
 * `handler` for a request passing through to `host`, which annotates a failure to resolve it
 * (see {@link annotateUnresolved}). For a host that cannot be a mistyped service name, `handler`
 * itself: nothing is added to the common path.
 */
export function hintUnknownHost(handler: Dispatcher.DispatchHandler, host: string, names: { keys(): Iterable<string> }): Dispatcher.DispatchHandler {
  if (bareName(host) === null) return handler;
  return new HintingHandler(handler, host, names);
}

/** Forwards every callback to the caller's handler, annotating an unresolved host on the way. */
class HintingHandler implements Dispatcher.DispatchHandler {
  readonly #inner: Dispatcher.DispatchHandler;
  readonly #host: string;
  readonly #names: { keys(): Iterable<string> };

  constructor(inner: Dispatcher.DispatchHandler, host: string, names: { keys(): Iterable<string> }) {
    this.#inner = inner;
    this.#host = host;
    this.#names = names;
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#inner.onRequestStart?.(controller, context);
  }
  onRequestUpgrade(controller: Controller, status: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.#inner.onRequestUpgrade?.(controller, status, headers, socket);
  }
  onResponseStarted(): void {
    this.#inner.onResponseStarted?.();
  }
  onResponseStart(controller: Controller, status: number, headers: IncomingHttpHeaders, message?: string): void {
    this.#inner.onResponseStart?.(controller, status, headers, message);
  }
  onResponseData(controller: Controller, chunk: Buffer): void {
    this.#inner.onResponseData?.(controller, chunk);
  }
  onResponseEnd(controller: Controller, trailers: IncomingHttpHeaders): void {
    this.#inner.onResponseEnd?.(controller, trailers);
  }
  onResponseError(controller: Controller, err: Error): void {
    this.#inner.onResponseError?.(controller, annotateUnresolved(err, this.#host, this.#names.keys()));
  }
  onBodySent(chunk: Buffer): void {
    this.#inner.onBodySent?.(chunk);
  }
  onRequestSent(): void {
    this.#inner.onRequestSent?.();
  }
}
