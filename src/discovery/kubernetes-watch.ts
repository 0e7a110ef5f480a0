/**
 * List-then-watch of one Kubernetes collection, robust the way reference/kubernetes-dns.md §8.2
 * says a watcher must be, and never a storm for its API server (client-go's reflector):
 *
 * - A round is: list (when there is no resourceVersion to watch from), then a watch from the
 *   last resourceVersion — and the next, while they end well (below) — each with bookmarks, a
 *   server timeout (`watchTimeoutMs`, else a random 300–600 s per watch, as client-go) and a
 *   client-side deadline 30 s past it for a stalled stream.
 * - Every event's resourceVersion is kept, a bookmark's too (a bookmark is handled before any
 *   check of the object: it has a resourceVersion and no name).
 * - How a watch ended decides what follows. It ended *well* when its stream ended cleanly (server
 *   timeout, EOF) or its connection dropped after it had been healthy: it delivered an event (a
 *   bookmark counts) or stayed open at least 1 s (client-go's "very short watch" is under 1 s with
 *   no event).
 *   - A watch that ended well after it *settled* — open 30 s (the back-off's cap), or until its
 *     server timeout when `watchTimeoutMs` is shorter — is followed at once by the next, from the
 *     last resourceVersion, and the back-off starts over. This is the only reset.
 *   - A watch that ended well before it settled is followed at once by the next too, but at most
 *     3 times in a row: from the 4th such watch since the last settled one, each backs off like
 *     any failure, the delays growing, until a watch settles. A server (or a proxy) that drops or
 *     ends every watch after a second or two therefore gets 3 quick re-watches, then back-off —
 *     never a loop (client-go's reflector likewise resets its back-off only after a healthy
 *     period).
 * - Anything else backs off with jitter before the next round, whatever the watch lasted
 *   (backoff.ts; 0.8 s doubling to 30 s): a failed list, a watch refused (4xx/5xx) or whose
 *   request failed, an ERROR event, a stalled stream, a watch that ended or dropped in under 1 s
 *   with no event (a server that closes watches at once), and 410 Gone (HTTP or ERROR event),
 *   which also forgets the resourceVersion so the next round relists; so does a watch line over
 *   MAX_WATCH_LINE_BYTES (8 MiB: no real event is that big), which ends the watch unread.
 * - The stream is split into lines in linear time, bytes kept until their newline; what is left
 *   after the last newline when a stream ends is an event cut short: reported, not applied.
 * - So once the delays have grown to the cap, a misbehaving API server sees at most one watch per
 *   30 s (or per `watchTimeoutMs`, when that is shorter and the server honours it).
 * - Failures are reported through `handlers.error`, never with a response body verbatim (at most
 *   a Status message, redacted: redact.ts). A first 410 is routine (history compacted) and only
 *   logged; 410s in a row are reported.
 * What each event of the stream does (bookmark, ERROR, add/modify/delete):
 * kubernetes-watch-event.ts; after the events of each chunk, `handlers.flush` (publish once).
 */
import { request } from 'undici';
import { KUBERNETES_BACKOFF, retryWithBackoff } from './backoff.js';
import { LineSplitter, LineTooLong, MAX_WATCH_LINE_BYTES, RequestFailed, requestFailed, withDeadline } from './kubernetes-requests.js';
import type { KubeAccess } from './kubernetes-client.js';
import { describeBody, parseJsonAnswer } from './redact.js';
import { applyWatchEvent, Gone, WatchErrorEvent, type KubeObject, type WatchEventTarget, type WatchHandlers } from './kubernetes-watch-event.js';

export type { KubeObject, WatchHandlers } from './kubernetes-watch-event.js';

export interface WatchOptions {
  /** Server-side watch timeout; undefined: a random 300–600 s per watch. */
  readonly watchTimeoutMs: number | undefined;
  readonly random: () => number;
  /** Monotonic clock in ms (the mesh's). */
  readonly now: () => number;
  /** How messages name the watcher. @default 'kubernetes discovery' */
  readonly label?: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A watch open at least this long (or that delivered an event) was healthy when it ended (client-go's "very short watch" is < 1 s with no event). */
export const HEALTHY_WATCH_MS = 1_000;
/**
 * A watch open this long (or until its server timeout, when that is sooner) has settled: what
 * follows it starts the back-off over. The back-off's cap, so that a server that keeps ending
 * watches gets at most one per cap either way.
 */
export const SETTLED_WATCH_MS = KUBERNETES_BACKOFF.maxMs;
/** Watches that ended well but before they settled are followed at once this many times in a row; later ones back off. */
export const QUICK_REWATCHES = 3;
/**
 * The deadline of every request of the Kubernetes sources that is not a watch (a list, the
 * Service read for pod labels): headers and body. undici's own bound is its 300 s headersTimeout;
 * past this one the request counts as failed, like any other failure.
 */
export const LIST_TIMEOUT_MS = 30_000;
const STALL_GRACE_MS = 30_000;
export class ListWatch {
  readonly #access: KubeAccess;
  /** The collection's path, then the ones tried in turn while the API server answers 404 to a list (older API versions). */
  readonly #paths: readonly string[];
  #at = 0;
  readonly #label: string;
  readonly #labelSelector: string | undefined;
  readonly #handlers: WatchHandlers;
  readonly #opts: WatchOptions;
  readonly #stop = new AbortController();
  #rv: string | undefined;
  /** Watches that ended well but before they settled, since the last settled one: the first QUICK_REWATCHES re-watch at once. */
  #unsettled = 0;

  /**
   * @param path the collection (`/apis/discovery.k8s.io/v1/namespaces/ns/endpointslices`), or
   *   several in order of preference: a list answered 404 (the API server does not serve that
   *   version) moves on to the next at once; when every one is 404 the round fails and backs off.
   */
  constructor(access: KubeAccess, path: string | readonly string[], labelSelector: string | undefined, handlers: WatchHandlers, opts: WatchOptions) {
    this.#access = access;
    this.#paths = typeof path === 'string' ? [path] : [...path];
    if (this.#paths.length === 0) throw new Error('ListWatch: no path');
    this.#label = opts.label ?? 'kubernetes discovery';
    this.#labelSelector = labelSelector;
    this.#handlers = handlers;
    this.#opts = opts;
  }

  /** The collection listed and watched now (the first path the API server serves). */
  get path(): string {
    return this.#paths[this.#at]!;
  }

  get #path(): string {
    return this.path;
  }

  start(): void {
    void this.#loop();
  }

  /** Ends the loop: the request in flight is aborted, the back-off timer cleared. */
  stop(): void {
    this.#stop.abort();
  }

  async #loop(): Promise<void> {
    const signal = this.#stop.signal;
    try {
      for (;;) {
        await retryWithBackoff(() => this.#round(signal), {
          ...KUBERNETES_BACKOFF,
          signal,
          onFailure: (err, attempt, delayMs) => {
            if (signal.aborted) return;
            const next = `; next try in ${(delayMs / 1000).toFixed(1)} s`;
            if (err instanceof Gone && attempt === 1) this.#handlers.debug(`${this.#path}: ${err.message}; relisting${next}`);
            else this.#handlers.error(new Error(`${err.message}${next}`), err instanceof HttpError && err.status === 403);
          },
        });
      }
    } catch {
      // stopped
    }
  }

  /**
   * One round: list when there is no resourceVersion, then watch, and watch again at once while
   * watches end well (at most QUICK_REWATCHES in a row before one settles). Resolves after a
   * settled watch, so the back-off starts over; throws to back off.
   */
  async #round(signal: AbortSignal): Promise<void> {
    for (;;) {
      if (this.#rv === undefined) await this.#list(signal);
      const started = this.#opts.now();
      // Throws, to back off, for what backs off whatever the watch lasted (refused, ERROR event, 410, stall).
      const end = await this.#watch(signal);
      const lasted = Math.round(this.#opts.now() - started);
      const where = `${this.#label}: ${this.#path}`;
      const how = end.dropped
        ? `the watch broke after ${lasted} ms and ${end.events} events (${end.dropped.message})`
        : `the watch ended after ${lasted} ms (${end.events} events)`;
      if (lasted >= Math.min(SETTLED_WATCH_MS, end.timeoutMs)) {
        this.#unsettled = 0;
        if (end.dropped) this.#handlers.error(new Error(`${where}: ${how}; re-watching`));
        return;
      }
      // Never healthy: a server that ends (or drops) every watch at once.
      if (!(lasted >= HEALTHY_WATCH_MS) && end.events === 0) throw new Error(`${where}: ${how}`);
      this.#unsettled++;
      if (this.#unsettled > QUICK_REWATCHES) {
        throw new Error(`${where}: ${how}, the ${ordinal(this.#unsettled)} watch in a row to end within ${SETTLED_WATCH_MS / 1000} s`);
      }
      // A dropped connection is news; a clean early end (a proxy's idle timeout) is routine.
      if (end.dropped) this.#handlers.error(new Error(`${where}: ${how}; re-watching`));
      else this.#handlers.debug(`${this.#path}: ${how}, before its ${end.timeoutMs / 1000} s timeout; re-watching`);
    }
  }

  /** The handlers' flush, whose failure is reported, never thrown into the stream loop. */
  #flush(): void {
    try {
      this.#handlers.flush?.();
    } catch (err) {
      this.#handlers.error(new Error(`${this.#label}: ${this.#path}: applying watch events failed: ${(err as Error).message}`));
    }
  }

  #url(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.#labelSelector) q.set('labelSelector', this.#labelSelector);
    return `${this.#access.server}${this.#path}?${q}`;
  }

  async #get(url: string, signal: AbortSignal, what: 'list' | 'watch'): Promise<Awaited<ReturnType<typeof request>>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const auth = this.#access.authorization();
    if (auth) headers.authorization = auth;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(url, { dispatcher: this.#access.dispatcher, headers, signal });
    } catch (err) {
      // undici's message alone ("connect ECONNREFUSED 10.0.0.1:6443") says nothing of which request.
      if (signal.aborted) throw err;
      throw requestFailed(`${this.#label}: ${this.#path}: the ${what} request`, err);
    }
    if (res.statusCode === 200) return res;
    const text = await res.body.text().catch(() => '');
    if (res.statusCode === 410) {
      this.#rv = undefined;
      throw new Gone(`${this.#label}: ${this.#path}: 410 Gone (too old resourceVersion)`);
    }
    if (res.statusCode === 401) this.#access.refreshToken();
    const said = this.#access.redact(describeBody(text, contentType(res)));
    const hint = res.statusCode === 403 ? ' (RBAC: the service account needs get/list/watch on this resource)' : '';
    throw new HttpError(res.statusCode, `${this.#label}: ${this.#path} answered ${res.statusCode}: ${said}${hint}`);
  }

  /** List the current path; a 404 moves on to the next path (an older API version), at most once per path. */
  async #list(signal: AbortSignal): Promise<void> {
    for (;;) {
      try {
        return await this.#listOnce(signal);
      } catch (err) {
        if (!(err instanceof HttpError && err.status === 404) || signal.aborted) throw err;
        const last = this.#at === this.#paths.length - 1;
        this.#at = last ? 0 : this.#at + 1;
        if (last) throw err;
        this.#handlers.debug(`${this.#paths[this.#at - 1]} is not served (404); trying ${this.#path}`);
      }
    }
  }

  async #listOnce(signal: AbortSignal): Promise<void> {
    const timedOut = (): Error => new Error(`${this.#label}: ${this.#path}: the list timed out after ${LIST_TIMEOUT_MS / 1000} s`);
    await withDeadline(signal, LIST_TIMEOUT_MS, timedOut, async (signal) => {
      const res = await this.#get(this.#url({}), signal, 'list');
      // Not `body.json()`: its SyntaxError quotes the start of the body (an HTML error page from a proxy).
      const text = await res.body.text().catch((err: unknown) => {
        throw signal.aborted ? err : requestFailed(`${this.#label}: ${this.#path}: reading the list answer`, err);
      });
      const list = parseJsonAnswer(text, contentType(res), `${this.#label}: ${this.#path}`, 'the list answer') as { metadata?: { resourceVersion?: unknown }; items?: unknown } | null;
      if (typeof list !== 'object' || list === null || !Array.isArray(list.items)) throw new Error(`${this.#label}: ${this.#path}: the list answer has no items`);
      const items = list.items.filter((i): i is KubeObject => typeof (i as KubeObject | null)?.metadata?.name === 'string');
      if (items.length < list.items.length) this.#handlers.error(new Error(`${this.#label}: ${this.#path}: skipped ${list.items.length - items.length} listed object(s) without metadata.name`));
      const rv = list.metadata?.resourceVersion;
      this.#rv = typeof rv === 'string' && rv !== '' ? rv : undefined;
      this.#handlers.reset(items);
    });
  }

  /**
   * One watch. Resolves when its stream ends, cleanly (`dropped` null) or because the connection
   * broke; throws for what backs off whatever the watch lasted: a refused watch or a request that
   * failed before any answer, an ERROR event (410: {@link Gone}), a stall, and when stopped.
   */
  async #watch(signal: AbortSignal): Promise<WatchEnd> {
    const timeoutS = Math.max(1, Math.round((this.#opts.watchTimeoutMs ?? (300 + Math.floor(clamp01(this.#opts.random()) * 300)) * 1000) / 1000));
    const ac = new AbortController();
    const abort = (): void => ac.abort(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    // Client-side deadline: the server ends the watch at timeoutSeconds; a stream still open well past it has stalled.
    const stalled = new Error(`${this.#label}: ${this.#path}: the watch stalled (open ${timeoutS + STALL_GRACE_MS / 1000} s, past its timeout)`);
    const t = setTimeout(() => ac.abort(stalled), timeoutS * 1000 + STALL_GRACE_MS);
    t.unref();
    let events = 0;
    let streaming = false;
    const lines = new LineSplitter(MAX_WATCH_LINE_BYTES);
    try {
      const res = await this.#get(
        this.#url({ watch: '1', allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutS), ...(this.#rv ? { resourceVersion: this.#rv } : {}) }),
        ac.signal,
        'watch',
      );
      streaming = true;
      const target: WatchEventTarget = {
        where: `${this.#label}: ${this.#path}`,
        handlers: this.#handlers,
        redact: (text) => this.#access.redact(text),
        resourceVersion: (rv) => {
          this.#rv = rv;
        },
      };
      const where = `${this.#label}: ${this.#path}`;
      const tooLong = (): LineTooLong => {
        // Watching again from here would meet the same event: relist past it.
        this.#rv = undefined;
        return new LineTooLong(`${where}: a watch event over ${MAX_WATCH_LINE_BYTES / 1024 / 1024} MiB (no newline within ${MAX_WATCH_LINE_BYTES} bytes); ended the watch, relisting`);
      };
      for await (const chunk of res.body) {
        let applied = 0;
        try {
          for (const raw of lines.push(chunk as Buffer, tooLong)) {
            const line = raw.trim();
            if (line) {
              events++;
              applied++;
              applyWatchEvent(line, target);
            }
          }
        } finally {
          // Once per chunk, whatever ended it: what was applied is published even when an event threw.
          if (applied > 0) this.#flush();
        }
      }
      // The API server ends every event with '\n': what follows the last one is an event cut short.
      // Not applied; the next watch, from the last resourceVersion, delivers it again whole.
      if (lines.pendingBytes > 0) this.#handlers.error(new Error(`${where}: the watch stream ended inside an event (${lines.pendingBytes} bytes after its last newline); skipped`));
      return { events, timeoutMs: timeoutS * 1000, dropped: null };
    } catch (err) {
      if (ac.signal.aborted && ac.signal.reason === stalled) throw stalled;
      if (err instanceof Gone || err instanceof HttpError || err instanceof WatchErrorEvent || err instanceof RequestFailed || err instanceof LineTooLong || signal.aborted) throw err;
      const message = err instanceof Error ? err.message : String(err);
      // No answer at all (connection refused, reset before the headers) is a failed request, not a dropped watch.
      if (!streaming) throw new Error(`${this.#label}: ${this.#path}: the watch request failed (${message})`);
      const cut = lines.pendingBytes > 0 ? `; ${lines.pendingBytes} bytes of an unfinished event discarded` : '';
      return { events, timeoutMs: timeoutS * 1000, dropped: new Error(message + cut) };
    } finally {
      clearTimeout(t);
      signal.removeEventListener('abort', abort);
    }
  }
}

/** How a watch's stream ended, when nothing in it says to back off. */
interface WatchEnd {
  /** Lines read: events, bookmarks included. */
  readonly events: number;
  /** The server-side timeout asked for (timeoutSeconds), in ms. */
  readonly timeoutMs: number;
  /** Why the stream broke (a dropped connection), or null when it ended cleanly. */
  readonly dropped: Error | null;
}

const contentType = (res: { headers: Record<string, string | string[] | undefined> }): string => String(res.headers['content-type'] ?? '');

const ordinal = (n: number): string => `${n}${n % 10 === 1 && n % 100 !== 11 ? 'st' : n % 10 === 2 && n % 100 !== 12 ? 'nd' : n % 10 === 3 && n % 100 !== 13 ? 'rd' : 'th'}`;

const clamp01 = (x: number): number => (x >= 0 && x < 1 ? x : 0.5);