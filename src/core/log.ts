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
