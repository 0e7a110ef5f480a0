/**
 * The requests of a service that have not settled yet: an intrusive doubly linked list through
 * each call's `prevLive` / `nextLive`, so tracking a request allocates nothing. Close waits for it
 * to empty, and cuts what is still in it when its grace runs out.
 */
import type { Call } from './call.js';

export class LiveCalls {
  #head: Call | null = null;
  size = 0;

  add(call: Call): void {
    call.nextLive = this.#head;
    if (this.#head !== null) this.#head.prevLive = call;
    this.#head = call;
    this.size++;
  }

  delete(call: Call): void {
    if (call.prevLive !== null) call.prevLive.nextLive = call.nextLive;
    else if (this.#head === call) this.#head = call.nextLive;
    else return; // not in the list
    if (call.nextLive !== null) call.nextLive.prevLive = call.prevLive;
    call.prevLive = call.nextLive = null;
    this.size--;
  }

  /** Call `fn` on each live call; `fn` may end (and so remove) the call it is given. */
  forEach(fn: (call: Call) => void): void {
    for (let c = this.#head; c !== null; ) {
      const next = c.nextLive;
      fn(c);
      c = next;
    }
  }
}
