/**
 * The body of `POST /workspaces/:id/objects/fetch` (FetchObjectsRequest): a sequence of records, each
 *
 *     id       32 bytes   the object's SHA-256, raw (the hex `Hash` as bytes)
 *     length    4 bytes   big-endian unsigned: how many bytes follow
 *     bytes    length     the object's stored form, exactly as `GET objects/:hash` serves it
 *
 * back to back, with nothing before, between or after them. An empty body is zero records.
 */
export const OBJECT_RECORD_ID_BYTES = 32;
export const OBJECT_RECORD_HEADER_BYTES = OBJECT_RECORD_ID_BYTES + 4;
/** The 4-byte length field's largest value. */
export const MAX_OBJECT_RECORD_BYTES = 0xffff_ffff;

export interface ObjectRecord {
  /** Lower-case hex SHA-256, like `Hash`. */
  hash: string;
  bytes: Uint8Array;
}

/** A body that does not follow the record format (cut short), or a record that cannot be written in it. */
export class ObjectRecordFormatError extends Error {
  override name = 'ObjectRecordFormatError';
}

const HEX = /^[0-9a-f]{64}$/;

/** Writes one record's id and length at `offset` of `target`; its `length` bytes go right after. */
export function writeObjectRecordHeader(
  target: Uint8Array,
  offset: number,
  hash: string,
  length: number,
): void {
  if (!HEX.test(hash)) throw new ObjectRecordFormatError(`not a SHA-256 in lower-case hex: ${hash}`);
  if (!Number.isSafeInteger(length) || length < 0 || length > MAX_OBJECT_RECORD_BYTES) {
    throw new ObjectRecordFormatError(`a record holds 0 to ${MAX_OBJECT_RECORD_BYTES} bytes, not ${length}`);
  }
  if (offset < 0 || offset + OBJECT_RECORD_HEADER_BYTES > target.length) {
    throw new RangeError(`no room for a record header at ${offset} of ${target.length} bytes`);
  }
  for (let i = 0; i < OBJECT_RECORD_ID_BYTES; i++) {
    target[offset + i] = Number.parseInt(hash.slice(2 * i, 2 * i + 2), 16);
  }
  new DataView(target.buffer, target.byteOffset, target.byteLength).setUint32(
    offset + OBJECT_RECORD_ID_BYTES,
    length,
  );
}

/** The records as one body, in the order given. */
export function encodeObjectRecords(records: readonly ObjectRecord[]): Uint8Array {
  const total = records.reduce((sum, record) => sum + OBJECT_RECORD_HEADER_BYTES + record.bytes.length, 0);
  const body = new Uint8Array(total);
  let offset = 0;
  for (const record of records) {
    writeObjectRecordHeader(body, offset, record.hash, record.bytes.length);
    body.set(record.bytes, offset + OBJECT_RECORD_HEADER_BYTES);
    offset += OBJECT_RECORD_HEADER_BYTES + record.bytes.length;
  }
  return body;
}

/**
 * The records of a body, in order. Strict: a body that ends inside a record's header or its bytes
 * throws ObjectRecordFormatError rather than yielding a short object. Each record's `bytes` is a view
 * into `body`, not a copy.
 */
export function parseObjectRecords(body: Uint8Array): ObjectRecord[] {
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const records: ObjectRecord[] = [];
  let offset = 0;
  while (offset < body.length) {
    if (body.length - offset < OBJECT_RECORD_HEADER_BYTES) {
      throw new ObjectRecordFormatError(
        `truncated record ${records.length} at byte ${offset}: ${body.length - offset} bytes left, ` +
          `a record header is ${OBJECT_RECORD_HEADER_BYTES}`,
      );
    }
    const hash = Array.from(body.subarray(offset, offset + OBJECT_RECORD_ID_BYTES), (byte) =>
      byte.toString(16).padStart(2, '0'),
    ).join('');
    const length = view.getUint32(offset + OBJECT_RECORD_ID_BYTES);
    const start = offset + OBJECT_RECORD_HEADER_BYTES;
    if (body.length - start < length) {
      throw new ObjectRecordFormatError(
        `truncated record ${records.length} (${hash}): it announces ${length} bytes, ` +
          `${body.length - start} are left`,
      );
    }
    records.push({ hash, bytes: body.subarray(start, start + length) });
    offset = start + length;
  }
  return records;
}
