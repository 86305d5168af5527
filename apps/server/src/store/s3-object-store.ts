import {
  CreateBucketCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';

import {
  assertValidKey,
  assertValidPrefix,
  assertValidRange,
  bodySize,
  forEachLimited,
  ObjectNotFoundError,
  type ByteRange,
  type ObjectBody,
  type ObjectStore,
} from './object-store.js';

export interface S3StoreOptions {
  endpoint?: string;
  region: string;
  bucket: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
}

const DELETE_BATCH = 1000; // the DeleteObjects limit
const HEAD_CONCURRENCY = 16;
const PUT_ATTEMPTS = 3;

export function createS3Client(options: S3StoreOptions): S3Client {
  const { endpoint, region, forcePathStyle, accessKeyId, secretAccessKey } = options;
  return new S3Client({
    region,
    forcePathStyle,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(accessKeyId === undefined || secretAccessKey === undefined
      ? {}
      : { credentials: { accessKeyId, secretAccessKey } }),
    // Since 3.729 the SDK adds CRC32 checksums (aws-chunked trailers for streams) to every upload;
    // simple S3 implementations reject or mangle those. Integrity comes from ChecksumSHA256 instead.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function httpStatus(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}

/** Creates the bucket unless it exists already. */
export async function ensureBucket(options: S3StoreOptions): Promise<void> {
  const client = createS3Client(options);
  try {
    try {
      await client.send(new HeadBucketCommand({ Bucket: options.bucket }));
      return;
    } catch (error) {
      if (httpStatus(error) !== 404) throw error;
    }
    try {
      await client.send(new CreateBucketCommand({ Bucket: options.bucket }));
    } catch (error) {
      // Lost a race with another creator (e.g. two servers starting together). Some stores say
      // BucketAlreadyExists even to the same account, so settle it by asking whether we can use it.
      const raced =
        error instanceof S3ServiceException &&
        (error.name === 'BucketAlreadyOwnedByYou' || error.name === 'BucketAlreadyExists');
      if (!raced) throw error;
      await client.send(new HeadBucketCommand({ Bucket: options.bucket })).catch(() => {
        throw error;
      });
    }
  } finally {
    client.destroy();
  }
}

export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;
  private readonly bucket: string;

  constructor(options: S3StoreOptions) {
    this.client = createS3Client(options);
    this.bucket = options.bucket;
  }

  /** Closes pooled connections; the store is unusable afterwards. */
  destroy(): void {
    this.client.destroy();
  }

  async putIfAbsent(key: string, body: ObjectBody, sha256Hex: string): Promise<boolean> {
    assertValidKey(key);
    for (let attempt = 1; ; attempt++) {
      // HEAD first: servers without conditional writes (s3rver) ignore If-None-Match and would overwrite.
      if ((await this.size(key)) !== undefined) return false;
      try {
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            // A source is streamed afresh for each attempt.
            Body: body instanceof Uint8Array ? body : body.stream(),
            ContentLength: bodySize(body),
            ChecksumSHA256: Buffer.from(sha256Hex, 'hex').toString('base64'),
            // Closes the race between HEAD and PUT on servers that do support it (AWS, MinIO, R2).
            IfNoneMatch: '*',
          }),
        );
        return true;
      } catch (error) {
        const status = httpStatus(error);
        if (status === 412) return false;
        // 409 ConditionalRequestConflict: a concurrent conditional write of this key is in flight.
        if (status !== 409 || attempt === PUT_ATTEMPTS) throw error;
      }
    }
  }

  async get(key: string, range?: ByteRange): Promise<Uint8Array> {
    assertValidKey(key);
    if (range) assertValidRange(range);
    try {
      const response = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
        }),
      );
      const bytes = (await response.Body?.transformToByteArray()) ?? new Uint8Array();
      // s3rver treats "bytes=0-0" as "bytes=0-" and sends everything; never return more than asked for.
      return range ? bytes.subarray(0, range.end - range.start + 1) : bytes;
    } catch (error) {
      const status = httpStatus(error);
      if (status === 404) throw new ObjectNotFoundError(key);
      // 416: the object exists but the range starts at or after its end.
      if (status === 416) return new Uint8Array();
      throw error;
    }
  }

  async size(key: string): Promise<number | undefined> {
    assertValidKey(key);
    try {
      const response = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return response.ContentLength ?? 0;
    } catch (error) {
      if (httpStatus(error) === 404) return undefined;
      throw error;
    }
  }

  async hasMany(keys: readonly string[]): Promise<Set<string>> {
    keys.forEach(assertValidKey);
    const present = new Set<string>();
    await forEachLimited(keys, HEAD_CONCURRENCY, async (key) => {
      if ((await this.size(key)) !== undefined) present.add(key);
    });
    return present;
  }

  async deleteMany(keys: readonly string[]): Promise<void> {
    keys.forEach(assertValidKey);
    for (let offset = 0; offset < keys.length; offset += DELETE_BATCH) {
      const batch = keys.slice(offset, offset + DELETE_BATCH);
      const response = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((key) => ({ Key: key })), Quiet: true },
        }),
      );
      const failure = response.Errors?.[0];
      if (failure) {
        throw new Error(
          `failed to delete ${response.Errors?.length ?? 0} objects, e.g. ${failure.Key ?? '?'}: ${failure.Code ?? ''} ${failure.Message ?? ''}`,
        );
      }
    }
  }

  async *listPrefix(prefix: string): AsyncIterable<string> {
    assertValidPrefix(prefix);
    const pages = paginateListObjectsV2(
      { client: this.client },
      { Bucket: this.bucket, ...(prefix === '' ? {} : { Prefix: prefix }) },
    );
    for await (const page of pages) {
      for (const object of page.Contents ?? []) {
        if (object.Key !== undefined) yield object.Key;
      }
    }
  }

  async ping(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }
}
