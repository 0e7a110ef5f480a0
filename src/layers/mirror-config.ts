/** A route's mirror (Istio's `mirror` + `mirrorPercentage`): which subset, what share. */
import { expectObject, join, rejectUnknown } from '../config/check.js';
import { percentOf } from './fault.js';

export interface MirrorConfig {
  /** Subset that receives the copies; the whole service when unset. */
  subset?: string;
  /** Share of the route's requests copied, percent. @default 100 */
  percent?: number;
}

export interface ParsedMirror {
  readonly subset: string | null;
  readonly percent: number;
}

export function parseMirror(raw: unknown, path: string, known: (name: unknown, path: string) => string): ParsedMirror | null {
  if (raw === undefined) return null;
  const m = expectObject(raw, path);
  rejectUnknown(m, ['subset', 'percent'], path);
  return { subset: m.subset === undefined ? null : known(m.subset, join(path, 'subset')), percent: percentOf(m, path) };
}
