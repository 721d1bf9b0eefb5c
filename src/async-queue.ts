/**
 * A FIFO with async consumers: `push` hands an item to a waiting `next()` or buffers it;
 * `end()` finishes every current and future `next()`. Used for incoming messages and for
 * accepted connections. Backpressure is the owner's job: it watches `size`.
 */
export class AsyncQueue<T> {
  private items: T[] = [];
  private head = 0;
  private readonly waiters: Array<(result: IteratorResult<T>) => void> = [];
  private ended = false;

  /** Called after an item is taken (lets the owner resume a paused source). */
  onTake: (() => void) | undefined;

  get size(): number {
    return this.items.length - this.head;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  push(item: T): void {
    if (this.ended) return;
    const waiter = this.waiters.shift();
    if (waiter) {
      waiter({ value: item, done: false });
      return;
    }
    this.items.push(item);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.size > 0) {
      const value = this.items[this.head]!;
      this.items[this.head++] = undefined as T;
      // Compact now and then: a head index keeps shift() from being O(n) per item.
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.head = 0;
      }
      this.onTake?.();
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Take every buffered item at once (the owner disposes of them). */
  takeAll(): T[] {
    const taken = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return taken;
  }

  /** Remove buffered items that match (e.g. connections that closed before anyone took them). */
  remove(predicate: (item: T) => boolean): void {
    const kept = this.items.slice(this.head).filter((item) => !predicate(item));
    this.items = kept;
    this.head = 0;
  }

  /** No more items: waiting and future `next()` calls finish once the buffer is drained. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const waiter of this.waiters.splice(0)) waiter({ value: undefined, done: true });
  }

  /** Buffered items, in order (does not take them). */
  *buffered(): IterableIterator<T> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!;
  }
}
