/**
 * List-then-watch of one Kubernetes collection, robust the way reference/kubernetes-dns.md §8.2
 * says a watcher must be: list, then watch from the list's resourceVersion with bookmarks and a
 * server timeout; follow the resourceVersion of every event (bookmarks too) and re-watch from it
 * when a watch ends; relist on 410 Gone (HTTP or an ERROR event); back off 0.8 s → 30 s with
 * jitter on other failures; a client-side deadline catches a silently stalled stream.
 */
import { request } from 'undici';
import type { KubeAccess } from './kubernetes-client.js';

export interface KubeObject {
  metadata: { name: string; namespace?: string; resourceVersion?: string; uid?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

export interface WatchHandlers {
  /** A fresh list: the whole state. */
  reset(items: KubeObject[]): void;
  upsert(obj: KubeObject): void;
  remove(obj: KubeObject): void;
  /** A failure (kept going); `fatal` hints at a configuration problem (403). */
  error(err: Error, fatal?: boolean): void;
}

class Gone extends Error {}
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const MIN_BACKOFF = 800;
const MAX_BACKOFF = 30_000;

export class ListWatch {
  #rv: string | undefined;
  #backoff = MIN_BACKOFF;
  #current: AbortController | null = null;
  #stopped = false;

  constructor(
    private readonly access: KubeAccess,
    private readonly path: string,
    private readonly labelSelector: string | undefined,
    private readonly handlers: WatchHandlers,
    private readonly opts: { timeoutSeconds: number; random: () => number },
  ) {}

  start(): void {
    void this.#run();
  }

  stop(): void {
    this.#stopped = true;
    this.#current?.abort();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        if (this.#rv === undefined) await this.#list();
        await this.#watch();
      } catch (err) {
        if (this.#stopped) return;
        if (err instanceof Gone) {
          this.#rv = undefined; // relist
          continue;
        }
        const e = err as Error & { status?: number };
        this.handlers.error(e, e instanceof HttpError && e.status === 403);
        await this.#sleep();
      }
    }
  }

  async #sleep(): Promise<void> {
    const ms = MIN_BACKOFF / 2 + this.opts.random() * this.#backoff;
    this.#backoff = Math.min(MAX_BACKOFF, this.#backoff * 2);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref?.();
      this.#current = new AbortController();
      this.#current.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  #url(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.labelSelector) q.set('labelSelector', this.labelSelector);
    return `${this.access.server}${this.path}?${q}`;
  }

  async #get(url: string, signal: AbortSignal): Promise<Awaited<ReturnType<typeof request>>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const auth = this.access.authorization();
    if (auth) headers.authorization = auth;
    const res = await request(url, { dispatcher: this.access.dispatcher, headers, signal });
    if (res.statusCode === 200) return res;
    const text = await res.body.text().catch(() => '');
    if (res.statusCode === 410) throw new Gone('410 Gone');
    if (res.statusCode === 401) this.access.refreshToken();
    let message = text.slice(0, 300);
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message;
    } catch {
      // not a Status object
    }
    const hint = res.statusCode === 403 ? ' (RBAC: the service account needs get/list/watch on this resource)' : '';
    throw new HttpError(res.statusCode, `kubernetes discovery: ${this.path} answered ${res.statusCode}: ${message}${hint}`);
  }

  async #list(): Promise<void> {
    const ac = (this.#current = new AbortController());
    const t = setTimeout(() => ac.abort(new Error('list timed out')), 30_000);
    t.unref?.();
    try {
      const res = await this.#get(this.#url({}), ac.signal);
      const list = (await res.body.json()) as { metadata?: { resourceVersion?: string }; items?: KubeObject[] };
      if (!Array.isArray(list.items)) throw new Error(`kubernetes discovery: ${this.path}: a list without items`);
      this.#rv = list.metadata?.resourceVersion;
      this.handlers.reset(list.items.filter((i) => typeof i?.metadata?.name === 'string'));
      this.#backoff = MIN_BACKOFF;
    } finally {
      clearTimeout(t);
    }
  }

  async #watch(): Promise<void> {
    const ac = (this.#current = new AbortController());
    // Client-side deadline: the server ends the watch at timeoutSeconds; a stream that stays open
    // well past it has stalled.
    const t = setTimeout(() => ac.abort(new Error('watch stalled')), (this.opts.timeoutSeconds + 30) * 1000);
    t.unref?.();
    try {
      const res = await this.#get(
        this.#url({ watch: '1', allowWatchBookmarks: 'true', timeoutSeconds: String(this.opts.timeoutSeconds), ...(this.#rv ? { resourceVersion: this.#rv } : {}) }),
        ac.signal,
      );
      let buffered = '';
      for await (const chunk of res.body) {
        buffered += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line) this.#event(line);
        }
      }
    } catch (err) {
      if (ac.signal.aborted && !this.#stopped && (ac.signal.reason as Error)?.message === 'watch stalled') throw new Error('kubernetes discovery: watch stalled; re-watching');
      throw err;
    } finally {
      clearTimeout(t);
    }
  }

  #event(line: string): void {
    let ev: { type?: string; object?: KubeObject & { code?: number; message?: string } };
    try {
      ev = JSON.parse(line);
    } catch {
      this.handlers.error(new Error(`kubernetes discovery: skipped a malformed watch event: ${line.slice(0, 80)}`));
      return;
    }
    const obj = ev.object;
    if (ev.type === 'ERROR') {
      if (obj?.code === 410) throw new Gone(obj.message ?? 'too old resource version');
      throw new Error(`kubernetes discovery: watch error ${obj?.code ?? ''}: ${obj?.message ?? 'unknown'}`);
    }
    if (!obj || typeof obj.metadata?.name !== 'string') {
      this.handlers.error(new Error(`kubernetes discovery: skipped a watch event without an object (${ev.type})`));
      return;
    }
    if (obj.metadata.resourceVersion) this.#rv = obj.metadata.resourceVersion;
    this.#backoff = MIN_BACKOFF;
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED') this.handlers.upsert(obj);
    else if (ev.type === 'DELETED') this.handlers.remove(obj);
    else if (ev.type !== 'BOOKMARK') this.handlers.error(new Error(`kubernetes discovery: skipped an event of unknown type ${JSON.stringify(ev.type)}`));
  }
}
