/**
 * This process's own identity as a workload — its labels and namespace — against which fromIstio
 * evaluates a match block's `sourceLabels` and `sourceNamespace` (and a DestinationRule's
 * `workloadSelector`) once, at conversion: the identity is fixed for the process's life.
 *
 * Labels: `source.labels`, else the Kubernetes downward-API labels file (`source.labelsFile`,
 * default /etc/podinfo/labels: one `key="value"` line per label, the value quoted as Go's %q
 * writes it). Namespace: `source.namespace`, else fromIstio's `namespace`, else the environment's
 * `POD_NAMESPACE` (the downward API's usual name). What none of them gives is unknown, and a
 * condition on it is never taken to hold (match.ts leaves its block out and reports it).
 * The labels file is read only when a document asks for labels; a file that is not there leaves
 * the labels unknown, one that is malformed is an InvalidConfigError naming its line.
 */
import { readFileSync } from 'node:fs';
import { errorCode, InvalidConfigError } from '../core/errors.js';
import { describe as describeValue } from '../core/endpoint-spec.js';
import { isObj } from './doc.js';

/** fromIstio's `source` option: who this process is. */
export interface SourceIdentity {
  /** This workload's labels; without them, read from `labelsFile`. */
  labels?: Record<string, string>;
  /** This workload's namespace; without it, fromIstio's `namespace`, else `env.POD_NAMESPACE`. */
  namespace?: string;
  /** The downward-API labels file. @default '/etc/podinfo/labels' */
  labelsFile?: string;
  /** Where `POD_NAMESPACE` is read. @default process.env */
  env?: Record<string, string | undefined>;
}

export const DEFAULT_LABELS_FILE = '/etc/podinfo/labels';
const PATH = 'fromIstio options.source';

/** What is known of this process: a value, or why it is unknown. */
export type Known<T> = { readonly known: true; readonly value: T } | { readonly known: false; readonly why: string };

export class Identity {
  readonly #source: SourceIdentity;
  readonly #namespace: string | undefined;
  #labels: Known<Readonly<Record<string, string>>> | undefined;

  /** @param namespace fromIstio's `namespace` option */
  constructor(source: SourceIdentity, namespace: string | undefined) {
    this.#source = source;
    this.#namespace = namespace;
  }

  namespace(): Known<string> {
    const ns = this.#source.namespace ?? this.#namespace ?? (this.#source.env ?? process.env).POD_NAMESPACE;
    if (ns !== undefined && ns !== '') return { known: true, value: ns };
    return { known: false, why: "this process's namespace is unknown (no source.namespace or namespace option, no POD_NAMESPACE)" };
  }

  labels(): Known<Readonly<Record<string, string>>> {
    return (this.#labels ??= this.#readLabels());
  }

  #readLabels(): Known<Readonly<Record<string, string>>> {
    if (this.#source.labels !== undefined) return { known: true, value: this.#source.labels };
    const file = this.#source.labelsFile ?? DEFAULT_LABELS_FILE;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = errorCode(err) ?? (err as Error).message;
      return { known: false, why: `this process's labels are unknown (no source.labels option; labels file ${file}: ${code})` };
    }
    return { known: true, value: parseLabelsFile(text, file) };
  }
}

/** The downward API's `key="value"` lines (Go's %q quoting) as labels. @throws InvalidConfigError naming the line */
export function parseLabelsFile(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const m = /^([^=\s]+)="((?:[^"\\]|\\.)*)"$/.exec(line.trim());
    const value = m === null ? undefined : unquote(m[2]!);
    if (m === null || value === undefined) throw new InvalidConfigError(`${PATH}.labelsFile`, `${file} line ${i + 1}: expected key="value", got ${describeValue(line.slice(0, 80))}`);
    out[m[1]!] = value;
  });
  return out;
}

const SIMPLE: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'" };

/** The inside of a Go double-quoted string, unescaped; undefined when an escape is malformed. */
function unquote(s: string): string | undefined {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = s[++i];
    if (e === undefined) return undefined;
    if (Object.hasOwn(SIMPLE, e)) out += SIMPLE[e];
    else if (e === 'x' || e === 'u' || e === 'U') {
      const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = s.slice(i + 1, i + 1 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) return undefined;
      const code = parseInt(hex, 16);
      if (code > 0x10ffff) return undefined;
      out += String.fromCodePoint(code);
      i += n;
    } else if (/[0-7]/.test(e)) {
      const oct = s.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(oct)) return undefined;
      out += String.fromCharCode(parseInt(oct, 8));
      i += 2;
    } else return undefined;
  }
  return out;
}

/** `options.source`, checked. @throws InvalidConfigError naming the option */
export function checkSource(raw: unknown): SourceIdentity {
  if (raw === undefined) return {};
  if (!isObj(raw)) throw new InvalidConfigError(PATH, `expected an object, got ${describeValue(raw)}`);
  for (const k of Object.keys(raw)) {
    if (!['labels', 'namespace', 'labelsFile', 'env'].includes(k)) throw new InvalidConfigError(`${PATH}.${k}`, 'unknown option (expected labels, namespace, labelsFile, env)');
  }
  if (raw.labels !== undefined) {
    if (!isObj(raw.labels)) throw new InvalidConfigError(`${PATH}.labels`, `expected an object of label values, got ${describeValue(raw.labels)}`);
    for (const [k, v] of Object.entries(raw.labels)) if (typeof v !== 'string') throw new InvalidConfigError(`${PATH}.labels.${k}`, `expected a string, got ${describeValue(v)}`);
  }
  for (const k of ['namespace', 'labelsFile'] as const) {
    if (raw[k] !== undefined && (typeof raw[k] !== 'string' || raw[k] === '')) throw new InvalidConfigError(`${PATH}.${k}`, `expected a non-empty string, got ${describeValue(raw[k])}`);
  }
  if (raw.env !== undefined && (typeof raw.env !== 'object' || raw.env === null)) throw new InvalidConfigError(`${PATH}.env`, `expected an object, got ${describeValue(raw.env)}`);
  return raw as SourceIdentity;
}
