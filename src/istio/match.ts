/**
 * HTTPMatchRequest → a route's match block. A condition meshlet cannot evaluate (the authority,
 * scheme or port, withoutHeaders, a field it does not know, the source when this process's
 * identity is unknown) never widens a match: its block is left out — it matches nothing rather
 * than everything — and reported; a route whose blocks are all left out is skipped.
 * Evaluated once, here, since they hold or not for every request of this process: `gateways`
 * (meshlet is a sidecar, `mesh`, so a block for gateways only never matches), `sourceLabels` and
 * `sourceNamespace` against this process's identity (identity.ts): a block whose source is not
 * this process never matches and is left out; one whose source is, matches on its other conditions.
 */
import type { RouteMatch, StringMatch } from '../routing/match.js';
import { compileFullMatch } from '../routing/regex.js';
import { isObj, put, type Doc, type Obj } from './doc.js';
import type { Identity } from './identity.js';

export function stringMatch(v: unknown, doc: Doc, path: string): StringMatch {
  const o = doc.obj(v, path);
  const keys = Object.keys(o);
  if (keys.length !== 1 || !['exact', 'prefix', 'regex'].includes(keys[0]!)) doc.bad(path, 'expected exactly one of exact, prefix, regex');
  const kp = `${path}.${keys[0]!}`;
  const text = doc.str(o[keys[0]!], kp);
  // Istio's validation compiles the regex (RE2, as meshlet's routes do): a bad one is refused here.
  if (keys[0] === 'regex' && text !== '*') doc.checked(kp, () => compileFullMatch(text, kp));
  return { [keys[0]!]: text } as StringMatch;
}

/** `exact` or `prefix` as a regex matching it in any ASCII case (`ignoreUriCase`). */
function anyCase(m: StringMatch): StringMatch {
  if (!('exact' in m) && !('prefix' in m)) return m; // Istio ignores case only for exact and prefix
  const text = 'exact' in m ? m.exact : m.prefix;
  const re = [...text].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : /[\\^$.|?*+()[\]{}]/.test(c) ? `\\${c}` : c)).join('');
  return { regex: 'exact' in m ? re : `${re}.*` };
}

/** An empty condition, or Istio's `regex: "*"` (not RE2: Istio reads it as "present"). */
const presence = (x: unknown): boolean => isObj(x) && (Object.keys(x).length === 0 || (Object.keys(x).length === 1 && x.regex === '*'));

const CANNOT: Record<string, string> = {
  withoutHeaders: 'meshlet cannot match on a header being absent or different',
  authority: 'meshlet does not match on the authority',
  scheme: 'meshlet does not match on the scheme',
  port: 'meshlet does not match on the port',
};

export interface MatchRead {
  /** The block, or null when it holds a condition meshlet cannot evaluate, or one that never holds for a sidecar. */
  readonly match: RouteMatch | null;
  /** The conditions meshlet could not evaluate, by path, with why (reported by the caller). */
  readonly cannot: readonly { path: string; why: string }[];
}

export function httpMatch(m: Obj, doc: Doc, path: string, identity: Identity): MatchRead {
  const out: RouteMatch = {};
  const cannot: { path: string; why: string }[] = [];
  let forGatewaysOnly = false;
  /** A source condition that does not hold for this process. */
  let notThisSource = false;
  let ignoreCase = false;
  const table = (v: unknown, p: string): Record<string, StringMatch> => {
    const t: Record<string, StringMatch> = {};
    for (const [k, x] of Object.entries(doc.obj(v, p))) put(t, k, presence(x) ? { present: true } : stringMatch(x, doc, `${p}.${k}`));
    return t;
  };
  const handlers: Record<string, (v: unknown, p: string) => void> = {
    name: doc.reportAs('match names only label access logs, which meshlet does not write'),
    statPrefix: doc.reportAs('meshlet does not name stats per match'),
    uri: (v, p) => (out.uri = stringMatch(v, doc, p)),
    method: (v, p) => (out.method = stringMatch(v, doc, p)),
    headers: (v, p) => (out.headers = table(v, p)),
    queryParams: (v, p) => (out.queryParams = table(v, p)),
    ignoreUriCase: (v, p) => (ignoreCase = doc.bool(v, p)),
    gateways: (v, p) => {
      // Empty is unset (a protobuf repeated field): the block keeps the VirtualService's gateways.
      const gateways = doc.list(v, p);
      forGatewaysOnly = gateways.length > 0 && !gateways.includes('mesh');
    },
    sourceLabels: (v, p) => {
      const want = doc.record(v, p, (x, xp) => doc.str(x, xp));
      const mine = identity.labels();
      if (!mine.known) cannot.push({ path: p, why: mine.why });
      else if (!Object.entries(want).every(([k, x]) => Object.hasOwn(mine.value, k) && mine.value[k] === x)) notThisSource = true;
    },
    sourceNamespace: (v, p) => {
      const want = doc.str(v, p);
      const mine = identity.namespace();
      if (!mine.known) cannot.push({ path: p, why: mine.why });
      else if (mine.value !== want) notThisSource = true;
    },
  };
  for (const [k, why] of Object.entries(CANNOT)) handlers[k] = (_v, p) => cannot.push({ path: p, why });
  for (const [k, v] of Object.entries(m)) {
    const p = `${path}.${k}`;
    if (Object.hasOwn(handlers, k)) handlers[k]!(v, p);
    else cannot.push({ path: p, why: 'not a match condition meshlet knows' });
  }
  if (ignoreCase && out.uri !== undefined) out.uri = anyCase(out.uri);
  return { match: cannot.length > 0 || forGatewaysOnly || notThisSource ? null : out, cannot };
}

/**
 * The match blocks of a route, those meshlet cannot evaluate left out and reported; null when
 * every block was left out (the route is skipped).
 */
export function httpMatches(v: unknown, doc: Doc, path: string, identity: Identity): RouteMatch[] | null {
  const reads = doc.list(v, path).map((m, i) => httpMatch(doc.obj(m, `${path}[${i}]`), doc, `${path}[${i}]`, identity));
  const kept = reads.flatMap((r) => (r.match === null ? [] : [r.match]));
  const skipped = reads.length > 0 && kept.length === 0;
  for (const r of reads) {
    for (const c of r.cannot) {
      doc.unsupported(c.path, `${c.why}: this match block is left out, so it matches nothing rather than everything${skipped ? ', and the route, with no other block, is skipped' : ''}`);
    }
  }
  if (skipped) return null;
  // A block left with no condition (its source holds) matches every request: so does the route.
  return kept.some((k) => Object.keys(k).length === 0) ? [] : kept;
}
