import { describe, expect, it } from 'vitest';
import { ApiException } from '../errors.js';
import { parseRange } from './range.js';

describe('parseRange', () => {
  it.each([
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=5-', { start: 5, end: 999 }],
    ['bytes=-10', { start: 990, end: 999 }],
    ['bytes=-5000', { start: 0, end: 999 }],
    ['bytes=990-5000', { start: 990, end: 999 }],
  ])('%s of 1000 bytes', (header, range) => {
    expect(parseRange(header, 1000)).toEqual(range);
  });

  it.each([undefined, 'items=0-1', 'bytes=0-1,5-6', 'bytes=9-3', 'bytes=-'])(
    'serves everything for %s',
    (header) => {
      expect(parseRange(header, 1000)).toBeUndefined();
    },
  );

  it.each(['bytes=1000-', 'bytes=-0'])('refuses %s of 1000 bytes with 416', (header) => {
    let thrown: unknown;
    try {
      parseRange(header, 1000);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ApiException);
    expect((thrown as ApiException).code).toBe('invalid_range');
    expect((thrown as ApiException).headers['content-range']).toBe('bytes */1000');
  });
});
