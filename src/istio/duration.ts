/**
 * Protobuf Duration strings as Istio writes them ("10s", "1.5s", "300ms", "1m", "2h45m", "0.5s")
 * to milliseconds, or a non-negative number of seconds. Undefined for anything else.
 */
const UNIT: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };

export function durationMs(text: unknown): number | undefined {
  if (typeof text === 'number' && Number.isFinite(text) && text >= 0) return text * 1000; // bare seconds
  if (typeof text !== 'string') return undefined;
  const s = text.trim();
  if (s === '' || !/^(\d+(\.\d+)?(h|ms|m|s|us|µs|ns))+$/.test(s)) return undefined;
  let total = 0;
  for (const [, n, , unit] of s.matchAll(/(\d+(\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) total += Number(n) * UNIT[unit!]!;
  return total;
}
