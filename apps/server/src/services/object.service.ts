import { Inject, Injectable } from '@nestjs/common';
import {
  OBJECT_RECORD_HEADER_BYTES,
  type StoredObject,
  type StoredPack,
  writeObjectRecordHeader,
} from '@upc/protocol';
import {
  ByteBudget,
  declaredSize,
  decodeObject,
  Encoding,
  encodeObject,
  MAX_OBJECT_SIZE,
  ObjectFormatError,
  type PackEntry,
  PackFormatError,
  readPackIndex,
  sha256Hex,
} from '@upc/image';
import type { Actor } from '../actor.js';
import type { Config } from '../config.js';
import { ApiException, notFound } from '../errors.js';
import { ObjectRepository, type ObjectLocation } from '../repositories/object.repository.js';
import { CONFIG, OBJECT_STORE, UPLOAD_SPOOL, WORKERS } from '../repositories/tokens.js';
import { WorkspaceRepository } from '../repositories/workspace.repository.js';
import type { Upload } from '../middleware/upload-body.js';
import { forEachLimited, type ObjectStore } from '../store/object-store.js';
import { type SpooledUpload, type UploadSpool, UploadTooLargeError } from '../store/upload-spool.js';
import type { WorkerPool } from '../workers/worker-pool.js';
import { AuditService } from './audit.service.js';
import { parseRange, type Range } from './range.js';
import { objectKey, packKey } from './storage-keys.js';
import { WorkspaceService } from './workspace.service.js';

export interface ObjectDownload {
  bytes: Uint8Array;
  size: number;
  range: Range | undefined;
}

/** Packs read at once by one fetch; each read is one ranged GET that may be a whole pack. */
const PACK_READS_IN_FLIGHT = 8;
/** Standalone objects read at once by one fetch. */
const OBJECT_READS_IN_FLIGHT = 16;

const MiB = 1024 * 1024;
/**
 * An upload that holds at most this much (stored and decoded together; a chunk is at most 4 MiB,
 * a pack from the agent about 8) is checked where the request is answered, a few milliseconds;
 * a bigger one in a worker thread, where it does not hold up the answers to everything else.
 */
const CHECK_HERE_BYTES = 12 * MiB;
/** Bytes of uploads held in memory at once while they are checked here. */
const CHECKING_BYTES = 64 * MiB;
/** Enough of a stored object to read the plaintext size its zstd frame header declares. */
const HEADER_BYTES = 32;

/** One record of a fetch answer: the object, and where its header starts in the body. */
interface Placed {
  location: ObjectLocation;
  at: number;
}

/**
 * Content-addressed uploads and downloads. Bytes are verified against their SHA-256 before they
 * are stored, and a row is recorded only after the store has them durably: objects first,
 * versions second.
 */
@Injectable()
export class ObjectService {
  private readonly checking = new ByteBudget(CHECKING_BYTES);

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(OBJECT_STORE) private readonly store: ObjectStore,
    @Inject(UPLOAD_SPOOL) private readonly spool: UploadSpool,
    @Inject(WORKERS) private readonly workers: WorkerPool,
    private readonly objects: ObjectRepository,
    private readonly workspaceRows: WorkspaceRepository,
    private readonly workspaces: WorkspaceService,
    private readonly audit: AuditService,
  ) {}

  async missing(actor: Actor, workspaceId: string, hashes: readonly string[]): Promise<string[]> {
    await this.workspaces.requireAccess(actor, workspaceId);
    const unique = [...new Set(hashes)];
    const present = await this.objects.present(workspaceId, unique);
    return unique.filter((hash) => !present.has(hash));
  }

  /**
   * An object's stored form, streamed to disk as it arrives (never whole in memory) and checked
   * against its id: a raw object by the SHA-256 taken on the way, a compressed one decoded in a
   * worker. Only then is it stored, from the disk, and recorded.
   */
  async uploadObject(actor: Actor, workspaceId: string, hash: string, body: Upload): Promise<StoredObject> {
    const workspace = await this.workspaces.requireAccess(actor, workspaceId);
    const limit = this.config.maxObjectBytes;
    const upload = await this.receive(body, limit, `objects are limited to ${limit} bytes`, true);
    try {
      await this.verifyObject(hash, upload);
      const size = upload.size;
      if (await this.objects.find(workspaceId, hash)) return { hash, size, created: false };
      await this.checkQuota(workspace.id, workspace.quotaBytes, size);
      // The store checks what it stores: the encoded bytes, whose SHA-256 is not the object's id.
      await this.store.putIfAbsent(objectKey(workspaceId, hash), upload, upload.sha256);
      const created = await this.objects.addObject(workspaceId, hash, size);
      if (created) {
        await this.audit.record(actor, {
          action: 'object.upload',
          targetType: 'object',
          targetId: hash,
          workspaceId,
          details: { size },
        });
      }
      return { hash, size, created };
    } finally {
      await upload.dispose();
    }
  }

  /** A pack, streamed to disk as it arrives, its id checked on the way and its objects in a worker. */
  async uploadPack(actor: Actor, workspaceId: string, hash: string, body: Upload): Promise<StoredPack> {
    const workspace = await this.workspaces.requireAccess(actor, workspaceId);
    const limit = this.config.maxPackBytes;
    const upload = await this.receive(body, limit, `packs are limited to ${limit} bytes`, false);
    try {
      if (upload.sha256 !== hash) {
        throw new ApiException('hash_mismatch', `the body's SHA-256 is ${upload.sha256}, not ${hash}`, {
          actual: upload.sha256,
          expected: hash,
        });
      }
      const entries = await this.readPack(upload);
      const size = upload.size;
      if (await this.objects.packExists(workspaceId, hash)) {
        return { hash, size, objects: entries.length, created: false };
      }
      await this.checkQuota(workspace.id, workspace.quotaBytes, size);
      await this.store.putIfAbsent(packKey(workspaceId, hash), upload, hash);
      const created = await this.objects.addPack(workspaceId, { hash, size }, entries);
      if (created) {
        await this.audit.record(actor, {
          action: 'pack.upload',
          targetType: 'pack',
          targetId: hash,
          workspaceId,
          details: { size, objects: entries.length },
        });
      }
      return { hash, size, objects: entries.length, created };
    } finally {
      await upload.dispose();
    }
  }

  /** The body on disk; 413 as soon as it says or turns out to be larger than `limit`. */
  private async receive(body: Upload, limit: number, tooLarge: string, payloadDigest: boolean) {
    if (body.declaredBytes !== undefined && body.declaredBytes > limit) {
      throw new ApiException('payload_too_large', tooLarge);
    }
    try {
      return await this.spool.receive(body.stream, { maxBytes: limit, payloadDigest });
    } catch (error) {
      if (error instanceof UploadTooLargeError) throw new ApiException('payload_too_large', tooLarge);
      throw error;
    }
  }

  /** An object's stored form must decode to plaintext with this id (libs/image object.ts). */
  private async verifyObject(hash: string, upload: SpooledUpload): Promise<void> {
    try {
      if (upload.firstByte === Encoding.Raw) {
        if (upload.size - 1 > MAX_OBJECT_SIZE) {
          throw new ObjectFormatError(`is larger than ${MAX_OBJECT_SIZE} bytes`, hash, 'too_large');
        }
        if (upload.payloadSha256 !== hash) {
          throw new ObjectFormatError(
            `content does not match its hash (it is ${upload.payloadSha256 ?? ''})`,
            hash,
            'mismatch',
          );
        }
        return;
      }
      // Anything else is decoded whole: here when it is small, in a worker otherwise.
      const head = await upload.read(0, Math.min(upload.size, HEADER_BYTES));
      const bytes = upload.size + Math.min(declaredSize(head) ?? 0, MAX_OBJECT_SIZE);
      if (bytes <= CHECK_HERE_BYTES) {
        await this.checking.use(bytes, async () => decodeObject(hash, await upload.read(0, upload.size)));
        return;
      }
      await this.workers.run(async () => ({
        op: 'verifyObject' as const,
        hash,
        stored: await upload.read(0, upload.size),
      }));
    } catch (error) {
      if (!(error instanceof ObjectFormatError)) throw error;
      if (error.kind === 'mismatch')
        throw new ApiException('hash_mismatch', error.message, { expected: hash });
      if (error.kind === 'too_large') throw new ApiException('payload_too_large', error.message);
      throw new ApiException('invalid_object', error.message);
    }
  }

  /** A pack's index, every object in it checked against its id (a big pack in a worker). */
  private async readPack(upload: SpooledUpload): Promise<PackEntry[]> {
    const read = () => upload.read(0, upload.size);
    try {
      if (upload.size <= CHECK_HERE_BYTES) {
        return await this.checking.use(upload.size, async () =>
          readPackIndex(await read(), (id, stored) => decodeObject(id, stored)),
        );
      }
      return await this.workers.run(async () => ({ op: 'verifyPack' as const, stored: await read() }));
    } catch (error) {
      if (error instanceof PackFormatError || error instanceof ObjectFormatError) {
        throw new ApiException('invalid_pack', error.message);
      }
      throw error;
    }
  }

  async download(
    actor: Actor,
    workspaceId: string,
    hash: string,
    rangeHeader?: string,
  ): Promise<ObjectDownload> {
    await this.workspaces.requireAccess(actor, workspaceId);
    const location = await this.objects.find(workspaceId, hash);
    if (!location) throw notFound('object');
    const range = parseRange(rangeHeader, location.size);
    const wanted = range ?? { start: 0, end: location.size - 1 };
    if (location.size === 0) return { bytes: new Uint8Array(0), size: 0, range: undefined };
    const bytes =
      location.packHash === null
        ? await this.store.get(objectKey(workspaceId, hash), wanted)
        : await this.store.get(packKey(workspaceId, location.packHash), {
            start: (location.packOffset ?? 0) + wanted.start,
            end: (location.packOffset ?? 0) + wanted.end,
          });
    return { bytes, size: location.size, range };
  }

  /**
   * Many objects as one body of records (libs/protocol records.ts), in the order asked for, leaving out
   * the objects the workspace does not have and stopping before the body would pass maxFetchBytes (but
   * always with at least one record): see FetchObjectsRequest. One query finds every object; each pack
   * is read once, by one ranged read from its first wanted object to the end of its last.
   */
  async fetch(actor: Actor, workspaceId: string, hashes: readonly string[]): Promise<Uint8Array> {
    await this.workspaces.requireAccess(actor, workspaceId);
    const unique = [...new Set(hashes)];
    const locations = await this.objects.locate(workspaceId, unique);
    const placed: Placed[] = [];
    let total = 0;
    for (const hash of unique) {
      const location = locations.get(hash);
      if (!location) continue;
      const length = OBJECT_RECORD_HEADER_BYTES + location.size;
      if (placed.length > 0 && total + length > this.config.maxFetchBytes) break;
      placed.push({ location, at: total });
      total += length;
    }

    const body = new Uint8Array(total);
    const standalone: Placed[] = [];
    const byPack = new Map<string, Placed[]>();
    for (const record of placed) {
      const { hash, size, packHash } = record.location;
      writeObjectRecordHeader(body, record.at, hash, size);
      if (size === 0) continue;
      if (packHash === null) {
        standalone.push(record);
        continue;
      }
      const members = byPack.get(packHash);
      if (members) members.push(record);
      else byPack.set(packHash, [record]);
    }
    const fill = (record: Placed, bytes: Uint8Array) => {
      if (bytes.length !== record.location.size) {
        throw new Error(
          `the store gave ${bytes.length} bytes for object ${record.location.hash} of ${workspaceId}, ` +
            `its row says ${record.location.size}`,
        );
      }
      body.set(bytes, record.at + OBJECT_RECORD_HEADER_BYTES);
    };

    await Promise.all([
      forEachLimited(standalone, OBJECT_READS_IN_FLIGHT, async (record) => {
        fill(record, await this.store.get(objectKey(workspaceId, record.location.hash)));
      }),
      forEachLimited([...byPack], PACK_READS_IN_FLIGHT, async ([packHash, records]) => {
        const offset = (record: Placed) => record.location.packOffset ?? 0;
        let start = Number.MAX_SAFE_INTEGER;
        let end = 0;
        for (const record of records) {
          start = Math.min(start, offset(record));
          end = Math.max(end, offset(record) + record.location.size - 1);
        }
        const span = await this.store.get(packKey(workspaceId, packHash), { start, end });
        for (const record of records) {
          const from = offset(record) - start;
          fill(record, span.subarray(from, from + record.location.size));
        }
      }),
    ]);
    return body;
  }

  /**
   * Where one of the workspace's objects is stored. For the server's own reads of images (browsing,
   * diffs, restores): the caller has checked access. An object a version names but the store lacks
   * is the server's fault, not the client's, so it is a plain Error (500).
   */
  async locate(workspaceId: string, hash: string): Promise<ObjectLocation> {
    const location = await this.objects.find(workspaceId, hash);
    if (!location) throw new Error(`object ${hash} of workspace ${workspaceId} is not stored`);
    return location;
  }

  /** An object's stored form, as `locate` found it (not yet checked against its id). */
  async readStored(workspaceId: string, location: ObjectLocation): Promise<Uint8Array> {
    const { hash, size, packHash, packOffset } = location;
    const stored =
      size === 0
        ? new Uint8Array(0)
        : packHash === null
          ? await this.store.get(objectKey(workspaceId, hash))
          : await this.store.get(packKey(workspaceId, packHash), {
              start: packOffset ?? 0,
              end: (packOffset ?? 0) + size - 1,
            });
    if (stored.length !== size) {
      throw new Error(
        `the store gave ${stored.length} bytes for object ${hash} of ${workspaceId}, its row says ${size}`,
      );
    }
    return stored;
  }

  /** The plaintext of one of the workspace's objects, checked against its id (see `locate`). */
  async readPlaintext(workspaceId: string, hash: string): Promise<Buffer> {
    return decodeObject(hash, await this.readStored(workspaceId, await this.locate(workspaceId, hash)));
  }

  /**
   * Stores an object the server made itself (a tree of a restore) the way uploads are stored:
   * bytes durable in the store first, then the row. Returns its id.
   */
  async storeGenerated(workspaceId: string, plaintext: Uint8Array, hash?: string): Promise<string> {
    const encoded = await encodeObject(plaintext, hash);
    await this.storeEncoded(workspaceId, encoded.hash, encoded.bytes);
    return encoded.hash;
  }

  /** As storeGenerated, for an object the server encoded already (in a worker). */
  async storeEncoded(workspaceId: string, hash: string, stored: Uint8Array): Promise<void> {
    if (await this.objects.find(workspaceId, hash)) return;
    await this.store.putIfAbsent(objectKey(workspaceId, hash), stored, sha256Hex(stored));
    await this.objects.addObject(workspaceId, hash, stored.length);
  }

  private async checkQuota(workspaceId: string, quota: bigint | null, adding: number): Promise<void> {
    if (quota === null) return;
    const used = (await this.workspaceRows.storedBytes([workspaceId])).get(workspaceId) ?? 0;
    if (BigInt(used + adding) > quota) {
      throw new ApiException('quota_exceeded', `the workspace uses ${used} of its ${quota} bytes`, {
        usedBytes: used,
        quotaBytes: Number(quota),
      });
    }
  }
}
