/**
 * Logging. Warnings — degraded states, each once per change of state (discovery failing and
 * recovering, Redis unreachable and back), config fallbacks — go to the mesh's `logger.warn`, or
 * to stderr when none is given. Debug lines go to `logger.debug`, or to `util.debuglog` sections:
 * `NODE_DEBUG=meshlet*` shows them all (`meshlet:service:orders`, `meshlet:discovery:dns`, …).
 * A logger that throws, or returns a promise that rejects, is ignored: logging never breaks a
 * request or discovery. Nothing secret is ever passed to a logger.
 */
import { debuglog } from 'node:util';

/** The logger meshlet writes to; `console` fits. */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
}

/** `f`, except that nothing it throws — nor a promise it returns that rejects — reaches the caller. */
function safely(f: (m: string, ...a: unknown[]) => unknown): (m: string, ...a: unknown[]) => void {
  return (m, ...a) => {
    try {
      const r = f(m, ...a);
      // An async logger that rejects would be an unhandled rejection: the process would exit.
      if (typeof (r as PromiseLike<unknown> | null)?.then === 'function') (r as PromiseLike<unknown>).then(undefined, () => {});
    } catch {
      // A broken logger must not break meshlet.
    }
  };
}

/**
 * A logger for a module section, e.g. `meshlet:discovery:dns`. The sink's `debug` / `warn` are
 * looked up on each call (a level that is not a function falls back to debuglog / stderr).
 */
export function sectionLogger(section: string, sink?: Partial<Logger>): Logger {
  const dbg = debuglog(section);
  return {
    debug: safely((m, ...a) => {
      const debug = sink?.debug;
      return typeof debug === 'function' ? debug.call(sink, `${section}: ${m}`, ...a) : dbg(m, ...a);
    }),
    warn: safely((m, ...a) => {
      const warn = sink?.warn;
      return typeof warn === 'function' ? warn.call(sink, `${section}: ${m}`, ...a) : process.stderr.write(`${section}: warning: ${m}\n`);
    }),
  };
}

/**
 * One degraded state that can repeat — a reload that keeps failing, a user function that keeps
 * throwing, a discovery answer that keeps carrying the same bad record: `warn` logs only when the
 * state differs from the one last warned of (later repeats go to debug), and `clear` ends it, so
 * its next occurrence is warned of again. The state is a short key, not the message: a message
 * that carries a changing detail (a count, a request's value) does not make a new state.
 */
export class StateWarning {
  readonly #log: Logger;
  #state: string | null = null;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Whether a state is in force (warned of and not cleared). */
  get active(): boolean {
    return this.#state !== null;
  }

  warn(state: string, message: string): void {
    if (state === this.#state) return this.#log.debug(message);
    this.#state = state;
    this.#log.warn(message);
  }

  /** The state is over; `message`, when given, is warned (a recovery worth saying) if one was in force. */
  clear(message?: string): void {
    if (this.#state === null) return;
    this.#state = null;
    if (message !== undefined) this.#log.warn(message);
  }
}
