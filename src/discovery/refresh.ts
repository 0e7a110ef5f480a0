/**
 * Scheduling for polling discovery sources (DNS): the next refresh after a good answer (its TTL,
 * clamped to [minRefresh, maxRefresh]) and after a failure (exponential back-off with full jitter,
 * from minRefresh up to 30 s or maxRefresh). Timers are unref'd and stop with the source.
 */
export class Refresher {
  #timer: NodeJS.Timeout | null = null;
  #failures = 0;
  #stopped = false;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly options: { minMs: number; maxMs: number; random: () => number },
  ) {}

  start(): void {
    void this.#tick();
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    await this.run();
  }

  /** Schedule after a good answer whose records live `ttlMs`. */
  ok(ttlMs: number): void {
    this.#failures = 0;
    this.#schedule(Math.min(this.options.maxMs, Math.max(this.options.minMs, ttlMs)));
  }

  /** Schedule after a failure: back off. */
  failed(): void {
    this.#failures++;
    const cap = Math.min(this.options.maxMs, Math.max(this.options.minMs, 30_000), this.options.minMs * 2 ** this.#failures);
    this.#schedule(Math.max(this.options.minMs / 2, this.options.random() * cap));
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#tick(), ms);
    this.#timer.unref?.();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
