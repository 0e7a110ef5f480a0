/**
 * Logging. meshlet logs through `util.debuglog` sections (`NODE_DEBUG=meshlet*`) unless the mesh is
 * given a logger; warnings (discovery failures, config fallbacks) go to the logger's `warn`.
 * Nothing secret is ever passed to a logger.
 */
import { debuglog } from 'node:util';

/** The logger meshlet writes to; `console` fits. */
export interface Logger {
  debug(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
}

/** A logger for a module section, e.g. `meshlet:discovery:dns`, writing debug lines to debuglog. */
export function sectionLogger(section: string, sink?: Partial<Logger>): Logger {
  const dbg = debuglog(section);
  return {
    debug: sink?.debug ? (m, ...a) => sink.debug!(`${section}: ${m}`, ...a) : (m, ...a) => dbg(m, ...a),
    warn: sink?.warn ? (m, ...a) => sink.warn!(`${section}: ${m}`, ...a) : (m, ...a) => dbg(`WARN ${m}`, ...a),
  };
}
