import { crc32 as zlibCrc32, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { countColours, crc32, decodeXwd, encodePng, ImageError, readPng, xwdToPng } from './xwd.js';

interface XwdSpec {
  /** Pixel values, row after row. */
  pixels: number[][];
  bitsPerPixel?: number;
  msbFirst?: boolean;
  masks?: [number, number, number];
  /** Bytes of padding after each line. */
  pad?: number;
  colours?: number;
  version?: number;
  format?: number;
  visualClass?: number;
}

/** An XWD file as xwd writes one: big-endian header, window name, colour map, then the pixels. */
function xwd(spec: XwdSpec): Buffer {
  const height = spec.pixels.length;
  const width = spec.pixels[0]?.length ?? 0;
  const bitsPerPixel = spec.bitsPerPixel ?? 32;
  const bytesPerPixel = bitsPerPixel / 8;
  const bytesPerLine = width * bytesPerPixel + (spec.pad ?? 0);
  const name = Buffer.from('test window\0', 'latin1');
  const colours = spec.colours ?? 0;
  const [red, green, blue] = spec.masks ?? [0xff0000, 0x00ff00, 0x0000ff];
  const fields = [
    100 + name.length, // header_size
    spec.version ?? 7,
    spec.format ?? 2, // ZPixmap
    24, // depth
    width,
    height,
    0, // xoffset
    spec.msbFirst ? 1 : 0, // byte_order
    32, // bitmap_unit
    spec.msbFirst ? 1 : 0, // bitmap_bit_order
    32, // bitmap_pad
    bitsPerPixel,
    bytesPerLine,
    spec.visualClass ?? 4, // TrueColor
    red,
    green,
    blue,
    8, // bits_per_rgb
    256, // colormap_entries
    colours,
    width,
    height,
    0,
    0,
    0,
  ];
  const header = Buffer.alloc(100);
  fields.forEach((value, index) => header.writeUInt32BE(value, index * 4));
  const colourMap = Buffer.alloc(colours * 12, 0xab); // skipped by the reader: TrueColor ignores it
  const image = Buffer.alloc(bytesPerLine * height, 0xee);
  spec.pixels.forEach((row, y) => {
    row.forEach((pixel, x) => {
      const offset = y * bytesPerLine + x * bytesPerPixel;
      pixel %= 2 ** bitsPerPixel; // what fits (16 bits for the refused 16-bit case)
      if (spec.msbFirst) image.writeUIntBE(pixel, offset, bytesPerPixel);
      else image.writeUIntLE(pixel, offset, bytesPerPixel);
    });
  });
  return Buffer.concat([header, name, colourMap, image]);
}

/** A PNG taken apart without the module's own reader: its chunks (CRC checked) and its rows. */
function parsePng(png: Buffer): {
  width: number;
  height: number;
  depth: number;
  colourType: number;
  rows: Buffer[];
} {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const chunks: { type: string; body: Buffer }[] = [];
  for (let offset = 8; offset < png.length;) {
    const length = png.readUInt32BE(offset);
    const typed = png.subarray(offset + 4, offset + 8 + length);
    expect(png.readUInt32BE(offset + 8 + length)).toBe(zlibCrc32(typed));
    chunks.push({ type: typed.toString('latin1', 0, 4), body: typed.subarray(4) });
    offset += 12 + length;
  }
  expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
  const ihdr = chunks[0]?.body ?? Buffer.alloc(13);
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const raw = inflateSync(chunks[1]?.body ?? Buffer.alloc(0));
  const stride = 1 + width * 3;
  expect(raw.length).toBe(stride * height);
  const rows = Array.from({ length: height }, (_, y) => raw.subarray(y * stride, (y + 1) * stride));
  return { width, height, depth: ihdr.readUInt8(8), colourType: ihdr.readUInt8(9), rows };
}

/** 4×3 pixels, 0xRRGGBB, all different. */
const PIXELS = [
  [0xff0000, 0x00ff00, 0x0000ff, 0xffffff],
  [0x000000, 0x123456, 0x808080, 0xfedcba],
  [0x010203, 0xa0b0c0, 0x00ffff, 0xff00ff],
];
/** The same, as the bytes of an RGB PNG row: R, G, B. */
const RGB_ROWS = PIXELS.map((row) => Buffer.from(row.flatMap((p) => [p >>> 16, (p >>> 8) & 0xff, p & 0xff])));

describe('xwdToPng', () => {
  it('turns a 32-bit LSB-first ZPixmap into an 8-bit RGB PNG, pixel for pixel', () => {
    const png = parsePng(
      xwdToPng(
        xwd({ pixels: PIXELS.map((row) => row.map((p) => (p | 0xff000000) >>> 0)), colours: 3, pad: 4 }),
      ),
    );
    expect(png).toMatchObject({ width: 4, height: 3, depth: 8, colourType: 2 });
    for (const [y, row] of png.rows.entries()) {
      expect(row[0]).toBe(0); // filter: none
      expect(row.subarray(1)).toEqual(RGB_ROWS[y]);
    }
  });

  it('reads 24-bit MSB-first pixels the same', () => {
    const png = parsePng(xwdToPng(xwd({ pixels: PIXELS, bitsPerPixel: 24, msbFirst: true })));
    expect(png.rows.map((row) => row.subarray(1))).toEqual(RGB_ROWS);
  });

  it('scales channels wider than 8 bits (a depth-30 visual) to 0..255', () => {
    const masks: [number, number, number] = [0x3ff00000, 0x000ffc00, 0x000003ff];
    const image = decodeXwd(xwd({ pixels: [[0x3ff00000 | (0x200 << 10) | 0]], masks }));
    expect([...image.rgb]).toEqual([255, 128, 0]);
  });

  it.each([
    ['a file shorter than a header', Buffer.alloc(40), /less than an XWD header/],
    ['another file version', xwd({ pixels: PIXELS, version: 6 }), /file version 6, expected 7/],
    ['an XYPixmap', xwd({ pixels: PIXELS, format: 1 }), /pixmap format 1 is not supported/],
    ['a PseudoColor visual', xwd({ pixels: PIXELS, visualClass: 3 }), /visual class 3 is not supported/],
    ['16 bits per pixel', xwd({ pixels: PIXELS, bitsPerPixel: 16 }), /16 bits per pixel are not supported/],
    ['an empty colour mask', xwd({ pixels: PIXELS, masks: [0xff0000, 0, 0xff] }), /colour mask is empty/],
    ['a cut-short image', xwd({ pixels: PIXELS }).subarray(0, 150), /cut short/],
  ])('refuses %s with a clear error', (_, file, message) => {
    expect(() => xwdToPng(file)).toThrow(ImageError);
    expect(() => xwdToPng(file)).toThrow(message);
  });
});

describe('readPng and countColours', () => {
  it('read back what encodePng writes', () => {
    const image = decodeXwd(xwd({ pixels: PIXELS }));
    expect(readPng(encodePng(image))).toEqual(image);
    expect(countColours(image)).toBe(12);
    expect(countColours(image, 2)).toBe(2);
    expect(countColours({ width: 2, height: 1, rgb: Buffer.alloc(6, 7) })).toBe(1);
  });

  it('refuse a damaged PNG', () => {
    const png = xwdToPng(xwd({ pixels: PIXELS }));
    png[20] = (png[20] ?? 0) ^ 1; // inside IHDR
    expect(() => readPng(png)).toThrow(/IHDR chunk is damaged/);
    expect(() => readPng(Buffer.from('GIF89a'))).toThrow(/not a PNG/);
  });

  it('compute the CRC-32 PNG uses', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('IEND'))).toBe(0xae426082);
  });
});
