// ring-hash against the rings Envoy's own tests print and assert
// (test/extensions/load_balancing_policies/ring_hash/ring_hash_lb_test.cc): the same hosts,
// `tcp://127.0.0.1:90` … `:95`, give the same points and send the same 64-bit hashes to the same host.
import { describe, expect, test } from 'vitest';
import { buildRing, firstPoint, ringHash, type Ring } from '../../src/balancers/ring-hash.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import { build, ctx64, deps, endpointsAt } from '../support/endpoints.js';
import { seeded } from '../support/seeded.js';

const MAX = (1n << 64n) - 1n;
const ports = (from: number, to: number): string[] => Array.from({ length: to - from + 1 }, (_, i) => `http://127.0.0.1:${from + i}`);

/** The ring as (hash, owner) pairs, hashes as 64-bit values. */
function points(r: Ring): [bigint, number][] {
  return Array.from(r.high, (h, i) => [(BigInt(h) << 32n) | BigInt(r.low[i]!), r.owners[i]!]);
}

function pickedIndex(eps: Endpoint[], raw: Record<string, unknown>, hash: bigint, skip: Endpoint[] = []): number {
  const r = build(ringHash, eps, deps(seeded(1)), raw).pick(ctx64(hash, { skip }));
  if (r.type !== 'pick') throw new Error('no pick');
  return eps.indexOf(r.endpoint);
}

/** Envoy's histogram: `count` hashes i × ((2^64 − 1) / count), i = 0 … count − 1, per endpoint. */
function histogram(eps: Endpoint[], raw: Record<string, unknown>, count: number): number[] {
  const p = build(ringHash, eps, deps(seeded(1)), raw);
  const hits = eps.map(() => 0);
  const step = MAX / BigInt(count);
  for (let i = 0n; i < BigInt(count); i++) {
    const r = p.pick(ctx64(i * step));
    if (r.type === 'pick') hits[eps.indexOf(r.endpoint)]!++;
  }
  return hits;
}

describe("ring-hash builds Envoy's ring", () => {
  test('Basic: six hosts, minimum ring 12, two points each at the positions Envoy prints', () => {
    const ring = buildRing(['127.0.0.1:90', '127.0.0.1:91', '127.0.0.1:92', '127.0.0.1:93', '127.0.0.1:94', '127.0.0.1:95'], [1, 1, 1, 1, 1, 1], 12, 8_388_608);
    expect(points(ring)).toEqual([
      [833437586790550860n, 4],
      [928266305478181108n, 2],
      [1033482794131418490n, 0],
      [3551244743356806947n, 5],
      [3851675632748031481n, 3],
      [5583722120771150861n, 1],
      [6311230543546372928n, 1],
      [7700377290971790572n, 3],
      [13144177310400110813n, 5],
      [13444792449719432967n, 2],
      [15516499411664133160n, 4],
      [16117243373044804889n, 0],
    ]);
  });

  test('Basic: the hashes Envoy tests go where Envoy sends them', () => {
    const eps = endpointsAt(ports(90, 95));
    const raw = { minimumRingSize: 12 };
    expect(pickedIndex(eps, raw, 0n)).toBe(4);
    expect(pickedIndex(eps, raw, MAX)).toBe(4);
    expect(pickedIndex(eps, raw, 3551244743356806947n)).toBe(5);
    expect(pickedIndex(eps, raw, 3551244743356806948n)).toBe(3);
    expect(pickedIndex(eps, raw, 16117243373044804880n)).toBe(0);
    // The order discovery lists endpoints in changes nothing.
    const reversed = [...eps].reverse();
    expect(reversed[pickedIndex(reversed, raw, 3551244743356806947n)]).toBe(eps[5]);
  });

  test("BasicWithMetadataHashKey: an endpoint's hashKey is what is hashed (Envoy's envoy.lb hash_key)", () => {
    const eps = endpointsAt(ports(90, 95).map((url, i) => ({ url, hashKey: String(90 + i) })));
    const ring = buildRing(['90', '91', '92', '93', '94', '95'], [1, 1, 1, 1, 1, 1], 12, 8_388_608);
    expect(points(ring)).toEqual([
      [1975508444536362413n, 5],
      [2376063919839173711n, 5],
      [2386806903309390596n, 3],
      [6749904478991551885n, 4],
      [6803900775736438537n, 3],
      [7225015537174310577n, 2],
      [8787465352164086522n, 0],
      [11282020843382717940n, 2],
      [13723418369486627818n, 1],
      [13776502110861797421n, 0],
      [14338313586354474791n, 1],
      [15364271037087512980n, 4],
    ]);
    const raw = { minimumRingSize: 12 };
    expect(pickedIndex(eps, raw, 0n)).toBe(5);
    expect(pickedIndex(eps, raw, MAX)).toBe(5);
    expect(pickedIndex(eps, raw, 7225015537174310577n)).toBe(2);
    expect(pickedIndex(eps, raw, 6803900775736438537n)).toBe(3);
  });

  test('BasicWithRetryHostPredicate: a skipped host passes the request to the next point on the ring', () => {
    const eps = endpointsAt(ports(90, 95));
    const raw = { minimumRingSize: 12 };
    expect(pickedIndex(eps, raw, 0n, [eps[4]!])).toBe(2);
    expect(pickedIndex(eps, raw, 0n, [eps[4]!, eps[2]!])).toBe(0);
  });

  test('UnevenHosts: two hosts and a minimum of 3 get two points each; replacing one keeps the other’s', () => {
    expect(points(buildRing(['127.0.0.1:80', '127.0.0.1:81'], [1, 1], 3, 8_388_608))).toEqual([
      [5454692015285649509n, 0],
      [7859399908942313493n, 1],
      [13838424394637650569n, 0],
      [16064866803292627174n, 1],
    ]);
    expect(pickedIndex(endpointsAt(ports(80, 81)), { minimumRingSize: 3 }, 0n)).toBe(0);
    expect(points(buildRing(['127.0.0.1:81', '127.0.0.1:82'], [1, 1], 3, 8_388_608))).toEqual([
      [7859399908942313493n, 0],
      [8241336090459785962n, 1],
      [12882406409176325258n, 1],
      [16064866803292627174n, 0],
    ]);
    expect(pickedIndex(endpointsAt(ports(81, 82)), { minimumRingSize: 3 }, 0n)).toBe(0);
  });

  test('HostWeightedTinyRing: weights 1, 2, 3 on a ring of exactly 6 get 1, 2 and 3 points', () => {
    const eps = endpointsAt(ports(90, 92).map((url, i) => ({ url, weight: i + 1 })));
    const raw = { minimumRingSize: 6, maximumRingSize: 6 };
    const expected: [bigint, number][] = [
      [928266305478181108n, 2],
      [4443673547860492590n, 2],
      [5583722120771150861n, 1],
      [6311230543546372928n, 1],
      [13444792449719432967n, 2],
      [16117243373044804889n, 0],
    ];
    for (const [hash, host] of expected) expect(pickedIndex(eps, raw, hash)).toBe(host);
  });

  test('HostWeightedLargeRing: weights 1, 2, 3 with a minimum of 6144 split 6000 spread hashes 987 / 1932 / 3081', () => {
    const eps = endpointsAt(ports(90, 92).map((url, i) => ({ url, weight: i + 1 })));
    const counts = buildRing(['127.0.0.1:90', '127.0.0.1:91', '127.0.0.1:92'], [1, 2, 3], 6144, 8_388_608).owners.reduce((c, o) => (c[o]!++, c), [0, 0, 0]);
    expect(counts).toEqual([1024, 2048, 3072]);
    expect(histogram(eps, { minimumRingSize: 6144 }, 6000)).toEqual([987, 1932, 3081]);
  });

  test('host weights 1:2 within localities weighted 1:2 (as weights 1, 2, 2, 4): HostAndLocalityWeighted rings', () => {
    const eps = endpointsAt(ports(90, 93).map((url, i) => ({ url, weight: [1, 2, 2, 4][i] })));
    const tiny = { minimumRingSize: 9, maximumRingSize: 9 };
    const expected: [bigint, number][] = [
      [928266305478181108n, 2],
      [3851675632748031481n, 3],
      [5583722120771150861n, 1],
      [6311230543546372928n, 1],
      [7700377290971790572n, 3],
      [12559126875973811811n, 3],
      [13444792449719432967n, 2],
      [13784988426630141778n, 3],
      [16117243373044804889n, 0],
    ];
    for (const [hash, host] of expected) expect(pickedIndex(eps, tiny, hash)).toBe(host);
    expect(histogram(eps, { minimumRingSize: 9216 }, 9000)).toEqual([924, 2009, 2053, 4014]);
  });

  test('SmallFractionalScale: a ring of exactly 2 over four hosts leaves two of them without traffic', () => {
    const hits = histogram(endpointsAt(ports(90, 93)), { minimumRingSize: 2, maximumRingSize: 2 }, 1024);
    expect(hits.filter((h) => h === 0)).toHaveLength(2);
    expect(hits.reduce((a, b) => a + b, 0)).toBe(1024);
  });

  test('LargeFractionalScale: a ring of exactly 1023 over two hosts gives 512 and 511 points, and hits 526 / 497', () => {
    const ring = buildRing(['127.0.0.1:90', '127.0.0.1:91'], [1, 1], 1023, 1023);
    expect(ring.owners.reduce((c, o) => (c[o]!++, c), [0, 0])).toEqual([512, 511]);
    expect(histogram(endpointsAt(ports(90, 91)), { minimumRingSize: 1023, maximumRingSize: 1023 }, 1023)).toEqual([526, 497]);
  });

  test('LopsidedWeightSmallScale (in Envoy’s host order): every 128th light host gets the one point it can', () => {
    // Localities weighted 127:1, one heavy host against 1,023 light ones: as host weights, 127 × 1023 and 1.
    const keys = Array.from({ length: 1024 }, (_, i) => `127.0.0.1:${i}`);
    const ring = buildRing(keys, keys.map((_, i) => (i === 0 ? 127 * 1023 : 1)), 1024, 1024);
    expect(ring.high).toHaveLength(1024);
    expect(ring.owners.filter((o) => o === 0)).toHaveLength(1016);
    const expected: [bigint, number][] = [
      [11664790346325243808n, 1],
      [15894554872961148518n, 128],
      [13958138884277627155n, 256],
      [15803774069438192949n, 384],
      [3829253010855396576n, 512],
      [17918147347826565154n, 640],
      [6442769608292299103n, 768],
      [5881074926069334434n, 896],
    ];
    for (const [hash, host] of expected) expect(ring.owners[firstPoint(ring.high, ring.low, Number(hash >> 32n), Number(hash & 0xffffffffn))]).toBe(host);
  });

  test('minimumRingSize above maximumRingSize is a config error, as in Envoy (BadRingSizeBounds)', () => {
    expect(() => build(ringHash, endpointsAt(ports(90, 90)), deps(seeded(1)), { minimumRingSize: 20, maximumRingSize: 10 })).toThrowError(
      /services\.t\.balancer\.maximumRingSize: expected ≥ minimumRingSize \(20\), got 10/,
    );
  });
});
