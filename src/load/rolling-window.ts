/**
 * Two counts over a sliding time window of 10 buckets, with running totals: O(1) per count, no
 * timer — buckets that fell out of the window are dropped as counts arrive, on the caller's
 * clock. The retry budget counts requests and retries in one; each endpoint's error-rate rule
 * counts attempts and failures.
 */
const BUCKETS = 10;

export class RollingPair {
  readonly #bucketMs: number;
  readonly #a = new Float64Array(BUCKETS);
  readonly #b = new Float64Array(BUCKETS);
  #epoch: number;
  /** The first count over the window. */
  a = 0;
  /** The second count over the window. */
  b = 0;

  constructor(windowMs: number, nowMs: number) {
    this.#bucketMs = windowMs / BUCKETS;
    this.#epoch = Math.floor(nowMs / this.#bucketMs);
  }

  /** Drop what fell out of the window by `nowMs`; the index of the current bucket. */
  #advance(nowMs: number): number {
    const epoch = Math.floor(nowMs / this.#bucketMs);
    const steps = epoch - this.#epoch;
    if (steps > 0) {
      for (let i = 1; i <= Math.min(steps, BUCKETS); i++) {
        const k = (this.#epoch + i) % BUCKETS;
        this.a -= this.#a[k]!;
        this.b -= this.#b[k]!;
        this.#a[k] = 0;
        this.#b[k] = 0;
      }
      this.#epoch = epoch;
    }
    return ((epoch % BUCKETS) + BUCKETS) % BUCKETS;
  }

  /** Bring the totals up to `nowMs` without counting. */
  advance(nowMs: number): void {
    this.#advance(nowMs);
  }

  addA(nowMs: number): void {
    this.#a[this.#advance(nowMs)]!++;
    this.a++;
  }

  addB(nowMs: number): void {
    this.#b[this.#advance(nowMs)]!++;
    this.b++;
  }

  /**
   * Take back one second count made at `atMs` (default: now) from its bucket, never below zero;
   * nothing once that bucket has left the window (the count is gone already).
   */
  removeB(nowMs: number, atMs: number = nowMs): void {
    this.#advance(nowMs);
    const at = Math.floor(atMs / this.#bucketMs);
    const age = this.#epoch - at;
    if (age < 0 || age >= BUCKETS) return;
    const k = ((at % BUCKETS) + BUCKETS) % BUCKETS;
    if (this.#b[k]! > 0) {
      this.#b[k]!--;
      this.b--;
    }
  }

  reset(): void {
    this.#a.fill(0);
    this.#b.fill(0);
    this.a = this.b = 0;
  }
}
