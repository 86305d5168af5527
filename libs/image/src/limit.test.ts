import { describe, expect, it } from 'vitest';
import { limiter } from './limit.js';

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
