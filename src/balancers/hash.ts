/**
 * A fast, well-mixed 32-bit string hash for your own balancers: FNV-1a over UTF-16 code units,
 * finished with murmur3's fmix32 avalanche so nearby keys ("user-1", "user-2") spread widely.
 * Not cryptographic; stable across processes and versions. The built-in ring-hash and maglev use
 * XXH64 instead (xxhash64.ts), the hash Envoy uses, so that they agree with Envoy.
 */
export function hash32(key: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
