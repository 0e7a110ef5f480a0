/**
 * YAML text → plain data for the Istio reader. Whatever the yaml library reports — a syntax error,
 * a duplicate key, bad indentation, an unresolved alias, too many aliases — becomes an
 * InvalidConfigError naming the document and, where the library gives one, the line and column.
 *
 * Maps become objects without a prototype, so a key named like an Object.prototype member
 * (`constructor`, `toString`, `__proto__`…) is an own key like any other and a read of an absent
 * field is `undefined`, never an inherited member. Data that JSON cannot carry (a key that is a
 * list or map, a `!!binary`, `!!set` or timestamp value, an alias cycle) is refused by path:
 * Kubernetes objects are JSON.
 */
import { LineCounter, parseAllDocuments, visit, type Document } from 'yaml';
import { InvalidConfigError } from '../core/errors.js';

/** Aliases a document may expand (the yaml library's own default). */
const MAX_ALIASES = 100;
/** Deeper than any Istio object; bounds the walk below. */
const MAX_DEPTH = 64;

/** The documents of `text`, in order, as plain data (`null` for an empty document). */
export function readYaml(text: string): unknown[] {
  const lineCounter = new LineCounter();
  let docs: Document.Parsed[];
  try {
    docs = Array.from(parseAllDocuments(text, { lineCounter }));
  } catch (err) {
    throw new InvalidConfigError('fromIstio', `not valid YAML: ${messageOf(err)}`);
  }
  return docs.map((d, i) => {
    const where = `document ${i + 1}`;
    if (d.errors.length > 0) throw new InvalidConfigError(where, `not valid YAML: ${d.errors[0]!.message}`);
    let js: unknown;
    try {
      js = d.toJS({ mapAsMap: true, maxAliasCount: MAX_ALIASES });
    } catch (err) {
      throw new InvalidConfigError(where, `not valid YAML: ${messageOf(err)}${unresolvedAliasAt(d, lineCounter)}`);
    }
    return plain(js, where, '', new Set(), 0);
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : 'the YAML parser failed';
}

/** ` at line L, column C` of the first alias without an anchor before it, or ''. */
function unresolvedAliasAt(d: Document.Parsed, lines: LineCounter): string {
  let at = '';
  visit(d, {
    Alias(_key, node) {
      if (node.resolve(d) !== undefined || node.range == null) return undefined;
      const { line, col } = lines.linePos(node.range[0]);
      at = ` at line ${line}, column ${col}`;
      return visit.BREAK;
    },
  });
  return at;
}

function plain(v: unknown, where: string, path: string, open: Set<object>, depth: number): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  const bad = (problem: string): never => {
    throw new InvalidConfigError(path ? `${where}: ${path}` : where, problem);
  };
  if (!Array.isArray(v) && !(v instanceof Map)) {
    const type = typeof v === 'object' && v !== undefined ? (v.constructor?.name ?? 'object') : typeof v;
    return bad(`expected JSON data (a string, number, boolean, null, list or map), got a YAML value of type ${type}: quote it or drop its tag`);
  }
  if (open.has(v)) return bad('a YAML alias refers to a node that contains it');
  if (depth >= MAX_DEPTH) return bad(`nested deeper than ${MAX_DEPTH} levels`);
  open.add(v);
  let out: unknown;
  if (Array.isArray(v)) {
    out = v.map((x, i) => plain(x, where, `${path}[${i}]`, open, depth + 1));
  } else {
    const o: Record<string, unknown> = Object.create(null);
    for (const [k, x] of v) {
      if (typeof k !== 'string' && typeof k !== 'number' && typeof k !== 'boolean') {
        bad(`expected a string key, got ${k === null ? 'null' : Array.isArray(k) ? 'a list' : 'a map'} as a key`);
      }
      const key = String(k);
      const p = path ? `${path}.${key}` : key;
      if (Object.hasOwn(o, key)) throw new InvalidConfigError(`${where}: ${p}`, 'the key appears twice');
      Object.defineProperty(o, key, { value: plain(x, where, p, open, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    out = o;
  }
  open.delete(v);
  return out;
}
