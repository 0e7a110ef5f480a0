/**
 * Logging. Warnings — degraded states, each once per change of state (discovery failing and
 * recovering, Redis unreachable and back), config fallbacks — go to the mesh's `logger.warn`, or
 * to stderr when none is given. Debug lines go to `logger.debug`, or to `util.debuglog` sections:
 * `NODE_DEBUG=meshlet*` shows them all (`meshlet:service:orders`, `meshlet:discovery:dns`, …).
 * A logger that throws is ignored: logging never breaks a request or discovery. Nothing secret is
 * ever passed to a logger.
 */
import { debuglog } from 'node:util';

/** The logger meshlet writes to; `console` fits. */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
}

function safely(f: (m: string, ...a: unknown[]) => void): (m: string, ...a: unknown[]) => void {
  return (m, ...a) => {
    try {
      f(m, ...a);
    } catch {
      // A broken logger must not break meshlet.
    }
  };
}

/** A logger for a module section, e.g. `meshlet:discovery:dns`. */
export function sectionLogger(section: string, sink?: Partial<Logger>): Logger {
  const dbg = debuglog(section);
  const debug = sink?.debug;
  const warn = sink?.warn;
  return {
    debug: safely(typeof debug === 'function' ? (m, ...a) => debug.call(sink, `${section}: ${m}`, ...a) : (m, ...a) => dbg(m, ...a)),
    warn: safely(typeof warn === 'function' ? (m, ...a) => warn.call(sink, `${section}: ${m}`, ...a) : (m) => process.stderr.write(`${section}: warning: ${m}\n`)),
  };
}
