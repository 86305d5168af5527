import { ApiException } from '../errors.js';

export interface Range {
  start: number;
  end: number;
}

/**
 * Parses a single-range `Range: bytes=…` header against an object of `size` bytes (RFC 9110 §14.1.2).
 * Undefined means "send it all": no header, or a unit or form we do not serve (multiple ranges),
 * which the RFC lets a server ignore. An unsatisfiable range is a 416.
 */
export function parseRange(header: string | undefined, size: number): Range | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  let range: Range;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) throw unsatisfiable(size);
    range = { start: Math.max(0, size - suffix), end: size - 1 };
  } else {
    const start = Number(first);
    const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== '' && Number(last) < start) return undefined;
    range = { start, end };
  }
  if (range.start >= size) throw unsatisfiable(size);
  return range;
}

const unsatisfiable = (size: number) =>
  new ApiException(
    'invalid_range',
    `the object has ${size} bytes`,
    { size },
    { 'content-range': `bytes */${size}` },
  );
