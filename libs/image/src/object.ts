import { compress, decompress } from '@mongodb-js/zstd';
import { sha256Hex } from './hash.js';

/**
 * How an object's bytes are stored: one format byte, then the payload. The object's id is always
 * the SHA-256 of its plaintext, so the same content has one id however it was stored.
 */
export const Encoding = { Raw: 0, Zstd: 1 } as const;

/** Objects, after decoding, are never larger than this (a chunk's max, or a big tree). */
export const MAX_OBJECT_SIZE = 64 * 1024 * 1024;
/**
 * Below this size compression is not tried: the most it could save is a few hundred bytes, and
 * the binding's per-call cost (a fresh zstd context each time) dominates for tiny objects.
 */
const MIN_COMPRESS = 512;
/** Compression is kept only when it saves at least this share of the bytes. */
const MIN_SAVING = 0.1;
/** A sample of this many bytes decides whether compressing the rest is worth trying. */
const PROBE_BYTES = 64 * 1024;

export class ObjectFormatError extends Error {
  override name = 'ObjectFormatError';
  constructor(
    message: string,
    readonly hash?: string,
    /** `mismatch`: well-formed, but the plaintext is not what the id says. */
    readonly kind: 'malformed' | 'too_large' | 'mismatch' = 'malformed',
  ) {
    super(hash ? `object ${hash}: ${message}` : message);
  }
}

export interface EncodedObject {
  hash: string;
  /** Plaintext length. */
  size: number;
  bytes: Buffer;
}

/**
 * Encodes plaintext for storage, compressing with zstd only where it pays: a probe of the first
 * 64 KiB must shrink by 10 %, and so must the whole. Already-compressed data is stored raw without
 * paying for a full compression attempt.
 */
export async function encodeObject(
  plaintext: Uint8Array,
  hash = sha256Hex(plaintext),
): Promise<EncodedObject> {
  const input = Buffer.from(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
  if (input.length >= MIN_COMPRESS && (await worthCompressing(input))) {
    const packed = declareContentSize(await compress(input), input.length);
    if (packed.length <= input.length * (1 - MIN_SAVING)) {
      return { hash, size: input.length, bytes: Buffer.concat([Buffer.of(Encoding.Zstd), packed]) };
    }
  }
  return { hash, size: input.length, bytes: Buffer.concat([Buffer.of(Encoding.Raw), input]) };
}

async function worthCompressing(input: Buffer): Promise<boolean> {
  if (input.length <= PROBE_BYTES * 2) return true;
  const probe = input.subarray(0, PROBE_BYTES);
  return (await compress(probe)).length <= probe.length * (1 - MIN_SAVING);
}

/**
 * Decodes stored bytes back to plaintext and checks them against `hash`. A zstd frame must declare
 * its size, and that size must be within `maxSize`, before anything is decompressed: a
 * decompression bomb is refused without being expanded.
 */
export async function decodeObject(
  hash: string,
  stored: Uint8Array,
  maxSize = MAX_OBJECT_SIZE,
): Promise<Buffer> {
  if (stored.length === 0) throw new ObjectFormatError('is empty (no format byte)', hash);
  const payload = Buffer.from(stored.buffer, stored.byteOffset + 1, stored.byteLength - 1);
  let plaintext: Buffer;
  switch (stored[0]) {
    case Encoding.Raw:
      if (payload.length > maxSize)
        throw new ObjectFormatError(`is larger than ${maxSize} bytes`, hash, 'too_large');
      plaintext = payload;
      break;
    case Encoding.Zstd: {
      const declared = zstdContentSize(payload);
      if (declared === undefined) throw new ObjectFormatError('zstd frame does not declare its size', hash);
      // The size check covers one frame: anything after it (a second frame, say) would expand unchecked.
      if (zstdFrameLength(payload) !== payload.length) {
        throw new ObjectFormatError('holds more than one zstd frame, or a truncated one', hash);
      }
      if (declared > maxSize) {
        throw new ObjectFormatError(
          `would expand to ${declared} bytes, over the limit of ${maxSize}`,
          hash,
          'too_large',
        );
      }
      try {
        plaintext = await decompress(payload);
      } catch (error) {
        throw new ObjectFormatError(`zstd data is corrupt (${(error as Error).message})`, hash);
      }
      if (plaintext.length !== declared) throw new ObjectFormatError('zstd frame lied about its size', hash);
      break;
    }
    default:
      throw new ObjectFormatError(`has unknown format byte ${String(stored[0])}`, hash);
  }
  const actual = sha256Hex(plaintext);
  if (actual !== hash)
    throw new ObjectFormatError(`content does not match its hash (it is ${actual})`, hash, 'mismatch');
  return plaintext;
}

/**
 * The plaintext length that stored bytes declare, read from the format byte and the zstd frame
 * header without decompressing anything; undefined when they do not declare one (`decodeObject`
 * then says why).
 */
export function declaredSize(stored: Uint8Array): number | undefined {
  if (stored.length === 0) return undefined;
  if (stored[0] === Encoding.Raw) return stored.length - 1;
  if (stored[0] === Encoding.Zstd) return zstdContentSize(stored.subarray(1));
  return undefined;
}

/**
 * The zstd binding streams its output and so leaves Frame_Content_Size out of the frame header. We
 * add it (8 bytes, RFC 8878 §3.1.1.1.1): a reader can then refuse a frame that would expand past
 * its limit before decompressing anything, and the decoder itself refuses output beyond it.
 */
function declareContentSize(frame: Buffer, size: number): Buffer {
  const header = frameHeader(frame);
  if (!header || header.sizeBytes !== 0) return frame; // not a frame, or the size is there already
  const field = Buffer.alloc(8);
  field.writeBigUInt64LE(BigInt(size));
  const descriptor = Buffer.of((frame[4] ?? 0) | (3 << 6));
  return Buffer.concat([
    frame.subarray(0, 4),
    descriptor,
    frame.subarray(5, header.sizeAt),
    field,
    frame.subarray(header.sizeAt),
  ]);
}

interface FrameHeader {
  /** Where Frame_Content_Size starts, and its width in bytes (0: absent). */
  sizeAt: number;
  sizeBytes: number;
  hasChecksum: boolean;
}

/** The fixed part of a zstd frame header (RFC 8878 §3.1.1.1), or undefined when it is not one. */
function frameHeader(b: Buffer): FrameHeader | undefined {
  if (b.length < 6 || b.readUInt32LE(0) !== 0xfd2fb528) return undefined;
  const descriptor = b[4] ?? 0;
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const dictIdBytes = [0, 1, 2, 4][descriptor & 3] ?? 0;
  return {
    sizeAt: 5 + (singleSegment ? 0 : 1) + dictIdBytes,
    sizeBytes: fcsFlag === 0 ? singleSegment : ([1, 2, 4, 8][fcsFlag] ?? 0),
    hasChecksum: ((descriptor >> 2) & 1) === 1,
  };
}

/**
 * The length in bytes of the zstd frame at the start of `frame` (header, blocks, optional checksum;
 * RFC 8878 §3.1.1), or undefined when it is cut short or malformed. Reads only block headers.
 */
export function zstdFrameLength(frame: Uint8Array): number | undefined {
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const header = frameHeader(b);
  if (!header) return undefined;
  let at = header.sizeAt + header.sizeBytes;
  for (;;) {
    if (at + 3 > b.length) return undefined;
    const block = (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8) | ((b[at + 2] ?? 0) << 16);
    const type = (block >> 1) & 3;
    if (type === 3) return undefined;
    at += 3 + (type === 1 ? 1 : block >>> 3);
    if (block & 1) break;
  }
  at += header.hasChecksum ? 4 : 0;
  return at <= b.length ? at : undefined;
}

/**
 * The Frame_Content_Size of a single zstd frame (RFC 8878 §3.1.1.1), or undefined when the frame
 * does not carry one.
 */
export function zstdContentSize(frame: Uint8Array): number | undefined {
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const header = frameHeader(b);
  if (!header) return undefined;
  const { sizeAt: at, sizeBytes: fieldSize } = header;
  if (fieldSize === 0 || b.length < at + fieldSize) return undefined;
  switch (fieldSize) {
    case 1:
      return b[at];
    case 2:
      return b.readUInt16LE(at) + 256;
    case 4:
      return b.readUInt32LE(at);
    default: {
      const value = b.readBigUInt64LE(at);
      return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
    }
  }
}
