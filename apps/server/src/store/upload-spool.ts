import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectSource } from './object-store.js';

/** An upload's body was larger than allowed; nothing of it is kept. */
export class UploadTooLargeError extends Error {
  override name = 'UploadTooLargeError';
  constructor(readonly limit: number) {
    super(`the body is larger than ${limit} bytes`);
  }
}

/**
 * An upload received whole into a private file, with the SHA-256 of its bytes (and of its bytes after
 * the first, `payloadSha256`, when asked for) computed on the way. A source for the object store;
 * `dispose` removes the file.
 */
export interface SpooledUpload extends ObjectSource {
  readonly sha256: string;
  readonly payloadSha256: string | undefined;
  /** The first byte (an object's format byte), or undefined when the body is empty. */
  readonly firstByte: number | undefined;
  /** `length` bytes from `offset` (the caller keeps both within `size`). */
  read(offset: number, length: number): Promise<Buffer>;
  dispose(): Promise<void>;
}

/**
 * Where uploads wait while they are checked: a folder of the server's own (0700; files 0600) made at
 * start and removed at shutdown. A body streams to disk with bounded memory, whatever its size or
 * the number of uploads at once, and is counted as it comes, so one over the limit is cut off there.
 */
export class UploadSpool {
  private constructor(private readonly dir: string) {}

  /** A fresh private folder under `parent` (made when missing). */
  static async create(parent: string): Promise<UploadSpool> {
    await mkdir(parent, { recursive: true, mode: 0o700 });
    return new UploadSpool(await mkdtemp(path.join(parent, 'upc-uploads-')));
  }

  /**
   * Receives `body` whole. Rejects with UploadTooLargeError as soon as it passes `maxBytes`; the
   * rest of a refused body is read and dropped, so that the answer can still be sent. The request
   * stream itself is never destroyed here.
   */
  async receive(
    body: Readable,
    options: { maxBytes: number; payloadDigest: boolean },
  ): Promise<SpooledUpload> {
    const file = path.join(this.dir, randomUUID());
    const digest = new Digest(options.maxBytes, options.payloadDigest);
    const cutOff = (error?: Error) => {
      if (!body.readableEnded) digest.destroy(error ?? new Error('the upload ended before its last byte'));
    };
    body.on('error', cutOff);
    body.on('close', cutOff);
    try {
      body.pipe(digest);
      await pipeline(digest, createWriteStream(file, { flags: 'wx', mode: 0o600 }));
    } catch (error) {
      body.unpipe(digest);
      body.resume();
      await unlink(file).catch(() => undefined);
      throw error;
    } finally {
      body.off('error', cutOff);
      body.off('close', cutOff);
    }
    return spooled(file, digest);
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

function spooled(file: string, digest: Digest): SpooledUpload {
  const size = digest.size;
  return {
    size,
    sha256: digest.whole.digest('hex'),
    payloadSha256: digest.payload?.digest('hex'),
    firstByte: digest.firstByte,
    stream: () => createReadStream(file),
    async read(offset, length) {
      const bytes = Buffer.alloc(length);
      const handle = await open(file, 'r');
      try {
        let filled = 0;
        while (filled < length) {
          const { bytesRead } = await handle.read(bytes, filled, length - filled, offset + filled);
          if (bytesRead === 0) throw new Error(`${file} ended at ${offset + filled} of ${size} bytes`);
          filled += bytesRead;
        }
        return bytes;
      } finally {
        await handle.close();
      }
    },
    dispose: () => unlink(file).catch(() => undefined),
  };
}

/** Passes bytes through, hashing and counting them; fails past `maxBytes`. */
class Digest extends Transform {
  readonly whole = createHash('sha256');
  readonly payload: ReturnType<typeof createHash> | undefined;
  size = 0;
  firstByte: number | undefined;

  constructor(
    private readonly maxBytes: number,
    payloadDigest: boolean,
  ) {
    super();
    this.payload = payloadDigest ? createHash('sha256') : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.size + chunk.length > this.maxBytes) {
      done(new UploadTooLargeError(this.maxBytes));
      return;
    }
    this.whole.update(chunk);
    if (this.firstByte === undefined && chunk.length > 0) {
      this.firstByte = chunk[0];
      this.payload?.update(chunk.subarray(1));
    } else {
      this.payload?.update(chunk);
    }
    this.size += chunk.length;
    done(null, chunk);
  }
}
