/** mulberry32: a tiny seeded PRNG for deterministic tests. Returns floats in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Half-width of a binomial count's tolerance: `k` standard deviations of n draws at probability p. */
export function tolerance(n: number, p: number, k = 4.5): number {
  return k * Math.sqrt(n * p * (1 - p));
}
