/**
 * A fast, well-mixed 32-bit string hash for hash balancers: FNV-1a over UTF-16 code units,
 * finished with murmur3's fmix32 avalanche so nearby keys ("user-1", "user-2") spread over the
 * whole ring. Not cryptographic; stable across processes and versions (rings built by different
 * processes agree).
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
