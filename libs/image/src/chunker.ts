import { createHash } from 'node:crypto';

/**
 * Content-defined chunking with FastCDC's gear hash, normalised chunking and cut-point skipping
 * (Xia et al., USENIX ATC 2016). Parameters are stored with every image, so a later change of
 * defaults never breaks reading old ones; dedup only works across equal parameters.
 */
export interface ChunkerParams {
  algorithm: 'fastcdc-gear32';
  minSize: number;
  avgSize: number;
  maxSize: number;
}

export const DEFAULT_CHUNKER: ChunkerParams = {
  algorithm: 'fastcdc-gear32',
  minSize: 256 * 1024,
  avgSize: 1024 * 1024,
  maxSize: 4 * 1024 * 1024,
};

/** GEAR[i] = the first 4 bytes (big-endian) of SHA-256("upc-gear-" + i), i = 0..255. */
const GEAR = new Uint32Array(256);
for (let i = 0; i < 256; i++) GEAR[i] = createHash('sha256').update(`upc-gear-${i}`).digest().readUInt32BE(0);

interface Masks {
  small: number;
  large: number;
}

/** Normalised chunking: a harder mask below the average size, an easier one above it (level 2). */
function masks(avgSize: number): Masks {
  const bits = Math.round(Math.log2(avgSize));
  const top = (n: number) => (n >= 32 ? 0xffffffff : (~0 << (32 - n)) >>> 0);
  return { small: top(bits + 2), large: top(bits - 2) };
}

export function validateChunkerParams(params: ChunkerParams): void {
  const { minSize, avgSize, maxSize } = params;
  if ((params.algorithm as string) !== 'fastcdc-gear32')
    throw new Error(`unknown chunker ${params.algorithm as string}`);
  if (!(minSize >= 64 && minSize < avgSize && avgSize < maxSize && maxSize <= 64 * 1024 * 1024)) {
    throw new Error(
      `chunker sizes must satisfy 64 <= min < avg < max <= 64 MiB (got ${minSize}/${avgSize}/${maxSize})`,
    );
  }
}

/**
 * The length of the first chunk of `data` (which starts at a chunk boundary). When `final` is false
 * and no cut point is found before the end, returns 0: more data is needed.
 */
export function nextCut(data: Uint8Array, params: ChunkerParams, m: Masks, final: boolean): number {
  const length = data.length;
  if (length <= params.minSize) return final ? length : 0;
  const end = Math.min(length, params.maxSize);
  const normal = Math.min(end, params.avgSize);
  let hash = 0;
  let i = params.minSize;
  const { small, large } = m;
  // The hot loop: indexes are in range by construction, so skip the undefined checks.
  /* eslint-disable @typescript-eslint/no-non-null-assertion */
  for (; i < normal; i++) {
    hash = ((hash << 1) + GEAR[data[i]!]!) >>> 0;
    if ((hash & small) === 0) return i + 1;
  }
  for (; i < end; i++) {
    hash = ((hash << 1) + GEAR[data[i]!]!) >>> 0;
    if ((hash & large) === 0) return i + 1;
  }
  /* eslint-enable @typescript-eslint/no-non-null-assertion */
  if (end === params.maxSize) return end;
  return final ? length : 0;
}

/** Splits a stream of blocks into chunks; yields each chunk as a view into an internal buffer. */
export async function* chunkStream(
  blocks: AsyncIterable<Uint8Array>,
  params: ChunkerParams = DEFAULT_CHUNKER,
): AsyncGenerator<Uint8Array> {
  const m = masks(params.avgSize);
  let pending: Buffer = Buffer.alloc(0);
  for await (const block of blocks) {
    pending = pending.length === 0 ? Buffer.from(block) : Buffer.concat([pending, block]);
    let offset = 0;
    for (;;) {
      const cut = nextCut(pending.subarray(offset), params, m, false);
      if (cut === 0) break;
      yield pending.subarray(offset, offset + cut);
      offset += cut;
    }
    pending = pending.subarray(offset);
  }
  let offset = 0;
  while (offset < pending.length) {
    const cut = nextCut(pending.subarray(offset), params, m, true);
    yield pending.subarray(offset, offset + cut);
    offset += cut;
  }
}

/** Chunks a whole buffer at once. */
export function chunkBuffer(data: Uint8Array, params: ChunkerParams = DEFAULT_CHUNKER): Uint8Array[] {
  const m = masks(params.avgSize);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  while (offset < data.length) {
    const cut = nextCut(data.subarray(offset), params, m, true);
    chunks.push(data.subarray(offset, offset + cut));
    offset += cut;
  }
  return chunks;
}

export { masks as chunkerMasks };
