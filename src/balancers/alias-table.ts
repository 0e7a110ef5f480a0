/**
 * Vose's alias method: after an O(n) build, a weighted random index is drawn in O(1) from one
 * uniform number — the column from its integer part, the coin from its fraction. Shared by the
 * weighted random and two-choice balancers. Equal weights skip the table entirely.
 */
export class AliasTable {
  readonly size: number;
  readonly #prob: Float64Array | null;
  readonly #alias: Uint32Array | null;

  constructor(weights: readonly number[]) {
    const n = weights.length;
    this.size = n;
    const uniform = weights.every((w) => w === weights[0]);
    if (uniform) {
      this.#prob = null;
      this.#alias = null;
      return;
    }
    const total = weights.reduce((a, b) => a + b, 0);
    const prob = new Float64Array(n);
    const alias = new Uint32Array(n);
    const scaled = weights.map((w) => (w * n) / total);
    const small: number[] = [];
    const large: number[] = [];
    scaled.forEach((p, i) => (p < 1 ? small : large).push(i));
    while (small.length > 0 && large.length > 0) {
      const s = small.pop()!;
      const l = large.pop()!;
      prob[s] = scaled[s]!;
      alias[s] = l;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      (scaled[l]! < 1 ? small : large).push(l);
    }
    for (const i of large) prob[i] = 1;
    for (const i of small) prob[i] = 1; // rounding leftovers
    this.#prob = prob;
    this.#alias = alias;
  }

  /**
   * A weighted index from `bits`, an integer uniform in [0, 2^30) — for callers that must not box
   * a double (a 30-bit integer is a small integer to V8).
   */
  sampleInt(bits: number): number {
    // sample() inlined by hand: passing it the double would box it if the call is not inlined.
    const x = (bits / 1073741824) * this.size;
    const i = Math.floor(x);
    const prob = this.#prob;
    if (prob === null) return i;
    return x - i < prob[i]! ? i : this.#alias![i]!;
  }

  /** A weighted index from `u` uniform in [0, 1). */
  sample(u: number): number {
    const x = u * this.size;
    const i = Math.floor(x);
    const prob = this.#prob;
    if (prob === null) return i;
    return x - i < prob[i]! ? i : this.#alias![i]!;
  }
}
