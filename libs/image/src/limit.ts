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
