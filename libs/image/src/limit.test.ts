import { describe, expect, it } from 'vitest';
import { ByteBudget, limiter } from './limit.js';

describe('limiter', () => {
  it('runs at most N at once, all of them, in order', async () => {
    const limit = limiter(3);
    let active = 0;
    let peak = 0;
    const started: number[] = [];
    const results = await Promise.all(
      Array.from({ length: 3000 }, (_, i) =>
        limit(async () => {
          started.push(i);
          active++;
          peak = Math.max(peak, active);
          await new Promise((resolve) => setImmediate(resolve));
          active--;
          return i * 2;
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(results).toEqual(Array.from({ length: 3000 }, (_, i) => i * 2));
    expect(started).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });
});

describe('ByteBudget', () => {
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('holds at most its capacity, and serves tasks in the order they came', async () => {
    const budget = new ByteBudget(100);
    let peak = 0;
    const started: number[] = [];
    const sizes = [60, 30, 50, 10, 100, 5, 95, 40];
    await Promise.all(
      sizes.map((bytes, i) =>
        budget.use(bytes, async () => {
          started.push(i);
          peak = Math.max(peak, budget.inUse);
          await tick();
          await tick();
        }),
      ),
    );
    expect(peak).toBeLessThanOrEqual(100);
    expect(started).toEqual(sizes.map((_, i) => i));
    expect(budget.inUse).toBe(0);
  });

  it('runs a task that needs more than the whole budget alone, and gives the bytes back on failure', async () => {
    const budget = new ByteBudget(10);
    const running: number[] = [];
    const overlaps: number[][] = [];
    const task =
      (id: number, fail = false) =>
      async () => {
        running.push(id);
        overlaps.push([...running]);
        await tick();
        running.splice(running.indexOf(id), 1);
        if (fail) throw new Error(`task ${id} failed`);
      };
    const results = await Promise.allSettled([
      budget.use(4, task(1)),
      budget.use(1000, task(2, true)),
      budget.use(4, task(3)),
      budget.use(4, task(4)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(overlaps).toEqual([[1], [2], [3], [3, 4]]);
    expect(budget.inUse).toBe(0);
  });

  it('refuses a capacity of nothing', () => {
    expect(() => new ByteBudget(0)).toThrow(/above 0/);
  });
});
