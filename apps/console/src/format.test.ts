import { describe, expect, it } from 'vitest';
import { formatByteChange, formatBytes, formatRelativeTime } from './format.js';

describe('formatBytes', () => {
  it('uses binary units with about three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(12 * 1024)).toBe('12 KiB');
    expect(formatBytes(3.4 * 1024 ** 3)).toBe('3.4 GiB');
  });
});

describe('formatRelativeTime', () => {
  const now = Date.parse('2026-11-27T12:00:00Z');
  const ago = (seconds: number) => formatRelativeTime(new Date(now - seconds * 1000), now);
  it('says how long ago, in the largest fitting unit', () => {
    expect(ago(10)).toBe('just now');
    expect(ago(3 * 60)).toBe('3 min ago');
    expect(ago(5 * 3600)).toBe('5 h ago');
    expect(ago(86400)).toBe('1 day ago');
    expect(ago(3 * 86400)).toBe('3 days ago');
    expect(ago(-4 * 60)).toBe('in 4 min');
  });
});

describe('formatByteChange', () => {
  it('signs a change and says when there is none', () => {
    expect(formatByteChange(0)).toBe('no change');
    expect(formatByteChange(1536)).toBe('+1.5 KiB');
    expect(formatByteChange(-200)).toBe('−200 B');
  });
});
