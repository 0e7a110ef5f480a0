/**
 * List-then-watch of one Kubernetes collection, robust the way reference/kubernetes-dns.md §8.2
 * says a watcher must be, and never a storm for its API server (client-go's reflector):
 *
 * - A round is: list (when there is no resourceVersion to watch from), then one watch from the
 *   last resourceVersion, with bookmarks and a server timeout (`watchTimeoutMs`, else a random
 *   300–600 s per watch, as client-go) and a client-side deadline 30 s past it for a stalled
 *   stream.
 * - Every event's resourceVersion is kept, a bookmark's too (a bookmark is handled before any
 *   check of the object: it has a resourceVersion and no name).
 * - A watch that stayed open at least 1 s and ended cleanly (server timeout, EOF) is healthy: the
 *   next watch starts at once from the last resourceVersion, and the back-off starts over.
 * - Anything else backs off with jitter before the next round (backoff.ts; 0.8 s doubling to
 *   30 s): a failed list, a watch refused (4xx/5xx), a broken or stalled stream, an ERROR event,
 *   a watch that ended in under 1 s (a server that closes watches at once), and 410 Gone (HTTP or
 *   ERROR event), which also forgets the resourceVersion so the next round relists.
 * - Failures are reported through `handlers.error`, never with a response body verbatim (at most
 *   a Status message, redacted: redact.ts). A first 410 is routine (history compacted) and only
 *   logged; 410s in a row are reported.
 * What each event of the stream does (bookmark, ERROR, add/modify/delete):
 * kubernetes-watch-event.ts.
 */
import { request } from 'undici';
import { KUBERNETES_BACKOFF, retryWithBackoff } from './backoff.js';
import type { KubeAccess } from './kubernetes-client.js';
import { describeBody } from './redact.js';
import { applyWatchEvent, Gone, type KubeObject, type WatchEventTarget, type WatchHandlers } from './kubernetes-watch-event.js';

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

/** A watch open at least this long, ended cleanly, is healthy (client-go's "very short watch" is < 1 s). */
export const HEALTHY_WATCH_MS = 1_000;
const LIST_TIMEOUT_MS = 30_000;
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

  /** One round; resolves after a healthy watch, throws to back off. */
  async #round(signal: AbortSignal): Promise<void> {
    if (this.#rv === undefined) await this.#list(signal);
    const started = this.#opts.now();
    let events: number;
    try {
      events = await this.#watch(signal);
    } catch (err) {
      // A long healthy watch that then broke (a dropped connection) re-watches at once, back-off reset.
      const healthy = this.#opts.now() - started >= HEALTHY_WATCH_MS;
      if (!healthy || err instanceof Gone || err instanceof HttpError || signal.aborted) throw err;
      this.#handlers.error(new Error(`${(err as Error).message}; re-watching`));
      return;
    }
    const lasted = this.#opts.now() - started;
    if (!(lasted >= HEALTHY_WATCH_MS)) {
      throw new Error(`${this.#label}: ${this.#path}: the watch ended after ${Math.round(lasted)} ms (${events} events)`);
    }
  }

  #url(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.#labelSelector) q.set('labelSelector', this.#labelSelector);
    return `${this.#access.server}${this.#path}?${q}`;
  }

  async #get(url: string, signal: AbortSignal): Promise<Awaited<ReturnType<typeof request>>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const auth = this.#access.authorization();
    if (auth) headers.authorization = auth;
    const res = await request(url, { dispatcher: this.#access.dispatcher, headers, signal });
    if (res.statusCode === 200) return res;
    const text = await res.body.text().catch(() => '');
    if (res.statusCode === 410) {
      this.#rv = undefined;
      throw new Gone(`${this.#label}: ${this.#path}: 410 Gone (too old resourceVersion)`);
    }
    if (res.statusCode === 401) this.#access.refreshToken();
    const said = this.#access.redact(describeBody(text, String(res.headers['content-type'] ?? '')));
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
    const ac = new AbortController();
    const abort = (): void => ac.abort(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    const t = setTimeout(() => ac.abort(new Error(`${this.#label}: ${this.#path}: the list timed out after ${LIST_TIMEOUT_MS / 1000} s`)), LIST_TIMEOUT_MS);
    t.unref();
    try {
      const res = await this.#get(this.#url({}), ac.signal);
      const list = (await res.body.json()) as { metadata?: { resourceVersion?: unknown }; items?: unknown };
      if (typeof list !== 'object' || list === null || !Array.isArray(list.items)) throw new Error(`${this.#label}: ${this.#path}: the list answer has no items`);
      const items = list.items.filter((i): i is KubeObject => typeof (i as KubeObject | null)?.metadata?.name === 'string');
      if (items.length < list.items.length) this.#handlers.error(new Error(`${this.#label}: ${this.#path}: skipped ${list.items.length - items.length} listed object(s) without metadata.name`));
      const rv = list.metadata?.resourceVersion;
      this.#rv = typeof rv === 'string' && rv !== '' ? rv : undefined;
      this.#handlers.reset(items);
    } catch (err) {
      throw ac.signal.aborted && !signal.aborted ? (ac.signal.reason as Error) : err;
    } finally {
      clearTimeout(t);
      signal.removeEventListener('abort', abort);
    }
  }

  /** One watch; resolves with the number of events when the stream ends cleanly. */
  async #watch(signal: AbortSignal): Promise<number> {
    const timeoutS = Math.max(1, Math.round((this.#opts.watchTimeoutMs ?? (300 + Math.floor(clamp01(this.#opts.random()) * 300)) * 1000) / 1000));
    const ac = new AbortController();
    const abort = (): void => ac.abort(signal.reason);
    signal.addEventListener('abort', abort, { once: true });
    // Client-side deadline: the server ends the watch at timeoutSeconds; a stream still open well past it has stalled.
    const stalled = new Error(`${this.#label}: ${this.#path}: the watch stalled (open ${timeoutS + STALL_GRACE_MS / 1000} s, past its timeout)`);
    const t = setTimeout(() => ac.abort(stalled), timeoutS * 1000 + STALL_GRACE_MS);
    t.unref();
    let events = 0;
    try {
      const res = await this.#get(
        this.#url({ watch: '1', allowWatchBookmarks: 'true', timeoutSeconds: String(timeoutS), ...(this.#rv ? { resourceVersion: this.#rv } : {}) }),
        ac.signal,
      );
      const target: WatchEventTarget = {
        where: `${this.#label}: ${this.#path}`,
        handlers: this.#handlers,
        redact: (text) => this.#access.redact(text),
        resourceVersion: (rv) => {
          this.#rv = rv;
        },
      };
      let buffered = '';
      for await (const chunk of res.body) {
        buffered += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line) {
            events++;
            applyWatchEvent(line, target);
          }
        }
      }
      return events;
    } catch (err) {
      if (ac.signal.aborted && ac.signal.reason === stalled) throw stalled;
      if (err instanceof Gone || err instanceof HttpError || signal.aborted) throw err;
      throw new Error(`${this.#label}: ${this.#path}: the watch broke after ${events} events (${(err as Error).message})`);
    } finally {
      clearTimeout(t);
      signal.removeEventListener('abort', abort);
    }
  }
}

const clamp01 = (x: number): number => (x >= 0 && x < 1 ? x : 0.5);