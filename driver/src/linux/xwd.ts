import { deflateSync, inflateSync } from 'node:zlib';

/**
 * Screenshots: `xwd` writes the X server's own image format (XWD); this turns it into a PNG. Only
 * what a TrueColor X server gives (24- or 32-bit ZPixmap, either byte order) is read, and only
 * 8-bit RGB PNGs are written. No dependency: node:zlib deflates, the CRC is ours.
 */
export class ImageError extends Error {}

/** An image as 8-bit RGB triplets, row after row, no padding. */
export interface RgbImage {
  width: number;
  height: number;
  rgb: Buffer;
}

const XWD_HEADER_BYTES = 100; // 25 big-endian u32 fields; the window name follows, up to header_size
const XWD_FILE_VERSION = 7;
const XWD_COLOR_BYTES = 12; // pixel u32, red/green/blue u16, flags u8, pad u8
const Z_PIXMAP = 2;
const TRUE_COLOR = 4;
const LSB_FIRST = 0;
const MSB_FIRST = 1;

/** Reads an XWD image (what `xwd -root -silent` writes) into RGB. */
export function decodeXwd(xwd: Buffer): RgbImage {
  if (xwd.length < XWD_HEADER_BYTES) {
    throw new ImageError(`not an XWD image: ${xwd.length} bytes is less than an XWD header`);
  }
  const u32 = (field: number) => xwd.readUInt32BE(field * 4);
  const headerSize = u32(0);
  const version = u32(1);
  const format = u32(2);
  const width = u32(4);
  const height = u32(5);
  const byteOrder = u32(7);
  const bitsPerPixel = u32(11);
  const bytesPerLine = u32(12);
  const visualClass = u32(13);
  const colours = u32(19);
  if (version !== XWD_FILE_VERSION) {
    throw new ImageError(`not an XWD image: file version ${version}, expected ${XWD_FILE_VERSION}`);
  }
  if (headerSize < XWD_HEADER_BYTES || headerSize > xwd.length) {
    throw new ImageError(`not an XWD image: header size ${headerSize} in a file of ${xwd.length} bytes`);
  }
  if (format !== Z_PIXMAP)
    throw new ImageError(`XWD pixmap format ${format} is not supported (only ZPixmap, 2)`);
  if (visualClass !== TRUE_COLOR) {
    throw new ImageError(`XWD visual class ${visualClass} is not supported (only TrueColor, 4)`);
  }
  if (bitsPerPixel !== 24 && bitsPerPixel !== 32) {
    throw new ImageError(`XWD images of ${bitsPerPixel} bits per pixel are not supported (only 24 and 32)`);
  }
  if (byteOrder !== LSB_FIRST && byteOrder !== MSB_FIRST)
    throw new ImageError(`XWD byte order ${byteOrder} is unknown`);
  if (width === 0 || height === 0) throw new ImageError(`the XWD image is empty (${width}×${height})`);
  const bytesPerPixel = bitsPerPixel / 8;
  if (bytesPerLine < width * bytesPerPixel) {
    throw new ImageError(
      `XWD lines of ${bytesPerLine} bytes cannot hold ${width} pixels of ${bitsPerPixel} bits`,
    );
  }
  const [red, green, blue] = [channel(u32(14)), channel(u32(15)), channel(u32(16))];
  const start = headerSize + colours * XWD_COLOR_BYTES; // TrueColor pixels are their colour: the map is unused
  if (start + bytesPerLine * height > xwd.length) {
    throw new ImageError(
      `the XWD image is cut short: ${xwd.length} bytes, ${start + bytesPerLine * height} expected`,
    );
  }
  const read =
    byteOrder === MSB_FIRST
      ? (offset: number) => xwd.readUIntBE(offset, bytesPerPixel)
      : (offset: number) => xwd.readUIntLE(offset, bytesPerPixel);
  const rgb = Buffer.alloc(width * height * 3);
  let out = 0;
  for (let y = 0; y < height; y++) {
    const line = start + y * bytesPerLine;
    for (let x = 0; x < width; x++) {
      const pixel = read(line + x * bytesPerPixel);
      rgb[out++] = red(pixel);
      rgb[out++] = green(pixel);
      rgb[out++] = blue(pixel);
    }
  }
  return { width, height, rgb };
}

/** The function that takes one colour channel (given by its mask) of a pixel to 0..255. */
function channel(mask: number): (pixel: number) => number {
  if (mask === 0) throw new ImageError('an XWD colour mask is empty');
  let shift = 0;
  while (((mask >>> shift) & 1) === 0) shift++;
  const max = mask >>> shift;
  if ((max & (max + 1)) !== 0)
    throw new ImageError(`XWD colour mask 0x${mask.toString(16)} is not contiguous`);
  if (max === 0xff) return (pixel) => (pixel & mask) >>> shift;
  return (pixel) => Math.round((((pixel & mask) >>> shift) * 255) / max);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const PNG_RGB = 2; // colour type: truecolour, no alpha

/** An 8-bit RGB PNG of `image`: IHDR, one IDAT (no row filters), IEND. */
export function encodePng(image: RgbImage): Buffer {
  const { width, height, rgb } = image;
  const stride = width * 3;
  if (width === 0 || height === 0 || rgb.length !== stride * height) {
    throw new ImageError(`${rgb.length} bytes are not a ${width}×${height} RGB image`);
  }
  const rows = Buffer.alloc((stride + 1) * height); // each row: filter 0 (none), then its pixels
  for (let y = 0; y < height; y++) rgb.copy(rows, y * (stride + 1) + 1, y * stride, (y + 1) * stride);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, PNG_RGB, 0, 0, 0], 8); // bit depth, colour type, deflate, adaptive filters, no interlace
  return Buffer.concat([
    PNG_SIGNATURE,
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A screenshot's PNG from `xwd`'s output. */
export function xwdToPng(xwd: Buffer): Buffer {
  return encodePng(decodeXwd(xwd));
}

/** Reads back a PNG as `encodePng` writes it (8-bit RGB, unfiltered rows); refuses any other. */
export function readPng(png: Buffer): RgbImage {
  if (png.length < PNG_SIGNATURE.length || !png.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) {
    throw new ImageError('not a PNG image');
  }
  let header: Buffer | undefined;
  const data: Buffer[] = [];
  let offset = PNG_SIGNATURE.length;
  for (;;) {
    if (offset + 12 > png.length) throw new ImageError('the PNG image is cut short');
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const end = offset + 8 + length;
    if (end + 4 > png.length) throw new ImageError(`the PNG image is cut short in its ${type} chunk`);
    if (crc32(png.subarray(offset + 4, end)) !== png.readUInt32BE(end)) {
      throw new ImageError(`the PNG image's ${type} chunk is damaged (bad CRC)`);
    }
    const body = png.subarray(offset + 8, end);
    offset = end + 4;
    if (type === 'IHDR') header = body;
    else if (type === 'IDAT') data.push(body);
    else if (type === 'IEND') break;
  }
  if (header?.length !== 13) throw new ImageError('the PNG image has no header');
  const width = header.readUInt32BE(0);
  const height = header.readUInt32BE(4);
  if (header.readUInt8(8) !== 8 || header.readUInt8(9) !== PNG_RGB || header.readUInt8(12) !== 0) {
    throw new ImageError('only non-interlaced 8-bit RGB PNG images can be read');
  }
  const rows = inflateSync(Buffer.concat(data));
  const stride = width * 3;
  if (rows.length !== (stride + 1) * height) throw new ImageError('the PNG image data does not fit its size');
  const rgb = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const row = y * (stride + 1);
    const filter = rows.readUInt8(row);
    if (filter !== 0) throw new ImageError(`PNG row filter ${filter} is not supported (only 0, none)`);
    rows.copy(rgb, y * stride, row + 1, row + 1 + stride);
  }
  return { width, height, rgb };
}

/** How many distinct colours `image` has, counting no further than `limit`. */
export function countColours(image: RgbImage, limit = Number.POSITIVE_INFINITY): number {
  const seen = new Set<number>();
  for (let i = 0; i + 2 < image.rgb.length && seen.size < limit; i += 3) seen.add(image.rgb.readUIntBE(i, 3));
  return seen.size;
}

function chunk(type: string, body: Buffer): Buffer {
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), body]);
  const out = Buffer.alloc(typed.length + 8);
  out.writeUInt32BE(body.length, 0);
  typed.copy(out, 4);
  out.writeUInt32BE(crc32(typed), typed.length + 4);
  return out;
}

/** CRC-32 (ISO 3309, as PNG uses it), by table. */
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

export function crc32(bytes: Buffer): number {
  let c = 0xffffffff;
  for (const byte of bytes) c = (CRC_TABLE[(c ^ byte) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
