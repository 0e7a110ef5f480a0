import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { compileFullMatch, compileReplaceAll } from '../../src/routing/regex.js';
import { InvalidConfigError } from '../../src/index.js';

describe('full matches with RE2 syntax', () => {
  test("Istio's own (?i) example matches case-insensitively", () => {
    const re = compileFullMatch('(?i)^aaa$', 'p');
    expect(['aaa', 'AAA', 'aAa'].map((s) => re.test(s))).toEqual([true, true, true]);
    expect(re.test('aaaa')).toBe(false);
  });

  test('a match is a full match: the pattern must cover the whole value', () => {
    const re = compileFullMatch('/api/v[0-9]+', 'p');
    expect(re.test('/api/v2')).toBe(true);
    expect(re.test('/api/v2/items')).toBe(false);
    expect(re.test('x/api/v2')).toBe(false);
    // Alternation binds inside the anchors, as RE2's FullMatch reads it.
    const alt = compileFullMatch('a|b', 'p');
    expect([alt.test('a'), alt.test('b'), alt.test('ab')]).toEqual([true, true, false]);
  });

  test('RE2 classes that JavaScript lacks are understood', () => {
    expect(compileFullMatch('[[:alpha:]]+', 'p').test('abc')).toBe(true);
    expect(compileFullMatch('\\pL+', 'p').test('héllo')).toBe(true);
  });

  test('a backtracking pattern does not backtrack: a 100k-character hostile value simply fails to match', () => {
    const re = compileFullMatch('(a+)+b', 'p');
    expect(re.test(`${'a'.repeat(100_000)}!`)).toBe(false);
    expect(re.test(`${'a'.repeat(100_000)}b`)).toBe(true);
  });

  test.each([
    ['a backreference', '(a)\\1'],
    ['a lookbehind', '(?<=a)b'],
    ['a lookahead', 'a(?=b)'],
    ['an unclosed group', '('],
    ['a repeat over 1000', 'a{1001}'],
  ])('%s is refused with InvalidConfigError at the path', (_name, pattern) => {
    const err = (() => {
      try {
        compileFullMatch(pattern, 'services.a.routes[0].match[0].uri.regex');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidConfigError);
    expect((err as Error).message).toMatch(/at services\.a\.routes\[0\]\.match\[0\]\.uri\.regex: invalid RE2 regular expression/);
  });

  test('agrees with JavaScript RegExp on patterns both read alike', () => {
    const re = compileFullMatch('[ab]*c?', 'p');
    const js = /^(?:[ab]*c?)$/;
    fc.assert(fc.property(fc.stringMatching(/^[abc]{0,12}$/), (s) => re.test(s) === js.test(s)));
  });
});

describe('replace-all with RE2 substitutions', () => {
  test("Istio's examples: capture groups, and a case-insensitive match", () => {
    // Group 2 is "/v1/api", slash included: RE2 (so Envoy) gives a double slash here, though the
    // comment in Istio's virtual_service.proto says "/customprefix/v1/api/update".
    expect(compileReplaceAll('^/service/([^/]+)(/.*)$', '/customprefix/\\2/\\1', 'p')('/service/update/v1/api')).toBe('/customprefix//v1/api/update');
    // Envoy's own example (regex_rewrite in route_components.proto).
    expect(compileReplaceAll('^/service/([^/]+)(/.*)$', '\\2/instance/\\1', 'p')('/service/foo/v1/api')).toBe('/v1/api/instance/foo');
    expect(compileReplaceAll('(?i)/xxx/', '/yyy/', 'p')('/aaa/XxX/bbb')).toBe('/aaa/yyy/bbb');
  });

  test('every match is replaced; \\0 is the whole match and \\\\ a backslash', () => {
    expect(compileReplaceAll('o', '0', 'p')('/foo/boo')).toBe('/f00/b00');
    expect(compileReplaceAll('[0-9]+', '<\\0>', 'p')('/a1/b22')).toBe('/a<1>/b<22>');
    expect(compileReplaceAll('a', '\\\\', 'p')('/a')).toBe('/\\');
  });

  test('a group the pattern lacks, or a stray backslash, is refused at the rewrite path', () => {
    expect(() => compileReplaceAll('(a)', '\\2', 'r')).toThrowError(/at r\.rewrite: \\2 names group 2, but the pattern has 1 group$/);
    expect(() => compileReplaceAll('a', '\\x', 'r')).toThrowError(/at r\.rewrite: a "\\" in a substitution is followed by a digit/);
    expect(() => compileReplaceAll('(a)\\1', 'b', 'r')).toThrowError(/at r\.match: invalid RE2 regular expression/);
  });
});
