/** Runs at most `concurrency` of the given tasks at once, the rest in the order they came. */
export function limiter(concurrency: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  // A queue with a moving head: Array.shift() would make long queues quadratic.
  const waiting: (() => void)[] = [];
  let head = 0;
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (active >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      if (head < waiting.length) {
        const next = waiting[head++];
        if (head > 1024 && head * 2 > waiting.length) {
          waiting.splice(0, head);
          head = 0;
        }
        next?.();
      }
    }
  };
}

/**
 * Bytes held at once by tasks that each say how many they need: a task waits until its bytes fit
 * beside the others', in the order tasks came. One that needs more than the whole budget runs
 * alone, so a large need is slow, never stuck.
 */
export class ByteBudget {
  private held = 0;
  private readonly waiting: { bytes: number; start: () => void }[] = [];

  constructor(readonly capacity: number) {
    if (!(capacity > 0)) throw new Error(`a byte budget needs a capacity above 0 (got ${capacity})`);
  }

  /** Bytes held by tasks running now. */
  get inUse(): number {
    return this.held;
  }

  async use<T>(bytes: number, task: () => Promise<T>): Promise<T> {
    const need = Math.max(0, bytes);
    if (this.waiting.length === 0 && this.fits(need)) this.held += need;
    else await new Promise<void>((start) => this.waiting.push({ bytes: need, start })); // counted by grant
    try {
      return await task();
    } finally {
      this.held -= need;
      this.grant();
    }
  }

  private fits(bytes: number): boolean {
    return this.held === 0 || this.held + bytes <= this.capacity;
  }

  /** Starts the waiting tasks that fit now, first come first served. */
  private grant(): void {
    for (let next = this.waiting[0]; next && this.fits(next.bytes); next = this.waiting[0]) {
      this.waiting.shift();
      this.held += next.bytes;
      next.start();
    }
  }
}
