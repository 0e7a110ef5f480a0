/**
 * One line of a Kubernetes watch stream, applied (the list-then-watch loop: kubernetes-watch.ts).
 * A BOOKMARK only moves the resourceVersion: it has one and no name, so it is handled before any
 * check of the object. An ERROR event throws — a 410 as {@link Gone}, the resourceVersion
 * forgotten first so the next round relists, any other as {@link WatchErrorEvent}, so the loop
 * backs off instead of taking it for a dropped connection — and its Status is reported redacted,
 * never verbatim (redact.ts). ADDED / MODIFIED / DELETED keep the object's resourceVersion, then go to the
 * handlers. A line that is not JSON, not an object, names no object or has an unknown type is
 * skipped and reported, and so is a handler that throws: one bad event must not end the watch.
 */
import { describeBody } from './redact.js';

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
  /** Routine news (a first 410), for the debug log. */
  debug(message: string): void;
  /**
   * The events of one chunk of the stream have been applied (upsert / remove above): a handler
   * that publishes a snapshot can do it here once per chunk instead of once per event (a burst of
   * events arrives in one chunk). Called also when the chunk's events stopped early (an ERROR event).
   */
  flush?(): void;
}

/** 410 Gone: the resourceVersion is too old (history compacted); the next round relists. */
export class Gone extends Error {}

/** An ERROR event other than 410: the API server ended the watch on purpose; the loop backs off. */
export class WatchErrorEvent extends Error {}

/** Where a watch's events go: its handlers and its resourceVersion. */
export interface WatchEventTarget {
  /** How messages name the watch (`<label>: <path>`). */
  readonly where: string;
  readonly handlers: WatchHandlers;
  /** Takes secrets out of a text reported (the token: KubeAccess.redact). */
  readonly redact: (text: string) => string;
  /** Keep this resourceVersion; undefined forgets it (the next round relists). */
  resourceVersion(rv: string | undefined): void;
}

/** Apply one watch event (a line of the stream); throws on an ERROR event. */
export function applyWatchEvent(line: string, target: WatchEventTarget): void {
  let ev: { type?: unknown; object?: unknown };
  try {
    ev = JSON.parse(line);
  } catch {
    target.handlers.error(new Error(`${target.where}: skipped a watch event that is not JSON (${line.length} bytes)`));
    return;
  }
  if (typeof ev !== 'object' || ev === null || Array.isArray(ev)) {
    const is = ev === null ? 'null' : Array.isArray(ev) ? 'a list' : `a ${typeof ev}`;
    target.handlers.error(new Error(`${target.where}: skipped a watch event that is not an object (${is})`));
    return;
  }
  // Said before anything reads the type into a message ("a undefined event").
  if (typeof ev.type !== 'string') {
    target.handlers.error(new Error(`${target.where}: skipped a watch event without a type`));
    return;
  }
  const obj = (typeof ev.object === 'object' && ev.object !== null ? ev.object : {}) as {
    metadata?: { name?: unknown; resourceVersion?: unknown };
    code?: unknown;
    message?: unknown;
    reason?: unknown;
  };
  const rv = obj.metadata?.resourceVersion;
  // A bookmark is only a resourceVersion (no name); record it before any object check.
  if (ev.type === 'BOOKMARK') {
    if (typeof rv === 'string' && rv !== '') target.resourceVersion(rv);
    return;
  }
  if (ev.type === 'ERROR') {
    if (obj.code === 410) {
      target.resourceVersion(undefined);
      throw new Gone(`${target.where}: the watch answered 410 Gone (too old resourceVersion)`);
    }
    const code = typeof obj.code === 'number' ? obj.code : 'without a code';
    throw new WatchErrorEvent(`${target.where}: watch ERROR event ${code}: ${target.redact(describeBody(JSON.stringify({ kind: 'Status', ...obj }), undefined))}`);
  }
  if (typeof obj.metadata?.name !== 'string') {
    target.handlers.error(new Error(`${target.where}: skipped ${article(ev.type)} ${JSON.stringify(ev.type.slice(0, 20))} event without an object name`));
    return;
  }
  if (typeof rv === 'string' && rv !== '') target.resourceVersion(rv);
  const object = obj as KubeObject;
  try {
    if (ev.type === 'ADDED' || ev.type === 'MODIFIED') return target.handlers.upsert(object);
    if (ev.type === 'DELETED') return target.handlers.remove(object);
  } catch (err) {
    // A handler's bug must not end the watch for every later event.
    target.handlers.error(new Error(`${target.where}: handling a ${ev.type} event failed: ${(err as Error).message}`));
    return;
  }
  target.handlers.error(new Error(`${target.where}: skipped an event of unknown type ${JSON.stringify(ev.type).slice(0, 40)}`));
}

/** "a" or "an" before a word: "an ADDED event", "a MODIFIED event". */
const article = (word: string): string => (/^[aeiou]/i.test(word) ? 'an' : 'a');
