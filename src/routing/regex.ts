/**
 * Regular expressions from config, with RE2 semantics as Envoy's `safe_regex` (and so Istio's):
 * compiled by re2js, a port of RE2 whose matching takes time linear in the input — no pattern, and
 * no request header, can make it backtrack — and whose syntax is RE2's: `(?i)` and the other flag
 * groups, `\pL`, `[[:alpha:]]`; no backreferences, no lookaround. A match is a full match: the
 * whole value must match, as Envoy anchors safe_regex.
 *
 * A rewrite (`uriRegexRewrite`, Envoy's `regex_rewrite`) replaces every match, left to right, by a
 * substitution in RE2's syntax: `\1`…`\9` insert a group, `\0` the whole match, `\\` a backslash.
 * Every pattern and substitution is checked once, when the config is parsed.
 */
import { RE2JS } from 're2js';
import { InvalidConfigError } from '../core/errors.js';

/** A compiled pattern that must match a whole value. */
export interface FullMatcher {
  test(value: string): boolean;
}

function compile(pattern: string, path: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (err) {
    throw new InvalidConfigError(path, `invalid RE2 regular expression ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
}

/** Compile `pattern` (RE2 syntax) for full matches. @throws InvalidConfigError at `path` when RE2 rejects it */
export function compileFullMatch(pattern: string, path: string): FullMatcher {
  const re = compile(pattern, path);
  return { test: (value) => re.testExact(value) };
}

/** One piece of a substitution: literal text, or a group's number. */
type Piece = string | number;

function parseSubstitution(text: string, groups: number, path: string): Piece[] {
  const pieces: Piece[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      literal += c;
      continue;
    }
    const next = text[++i];
    if (next === '\\') literal += '\\';
    else if (next !== undefined && next >= '0' && next <= '9') {
      const n = Number(next);
      if (n > groups) throw new InvalidConfigError(path, `\\${n} names group ${n}, but the pattern has ${groups} group${groups === 1 ? '' : 's'}`);
      if (literal !== '') pieces.push(literal);
      literal = '';
      pieces.push(n);
    } else throw new InvalidConfigError(path, 'a "\\" in a substitution is followed by a digit (a group) or by "\\"');
  }
  if (literal !== '') pieces.push(literal);
  return pieces;
}

/**
 * `value` with every match of `pattern` replaced by `substitution` (RE2's GlobalReplace).
 * @throws InvalidConfigError at `path` (`.match` or `.rewrite`) for a bad pattern or substitution
 */
export function compileReplaceAll(pattern: string, substitution: string, path: string): (value: string) => string {
  const re = compile(pattern, `${path}.match`);
  const pieces = parseSubstitution(substitution, re.groupCount(), `${path}.rewrite`);
  if (pieces.every((p) => typeof p === 'string')) {
    const text = pieces.join('');
    return (value) => re.matcher(value).replaceAll(() => text);
  }
  return (value) =>
    re.matcher(value).replaceAll((...args: unknown[]) => {
      let out = '';
      for (const p of pieces) out += typeof p === 'string' ? p : ((args[p] as string | undefined) ?? '');
      return out;
    });
}
