import {
  type ChunkerParams,
  encodePack,
  type ObjectReader,
  STANDALONE_THRESHOLD,
  UpcFile,
  type UpcManifest,
} from '@upc/image';
import { ApiError, type UpcClient, type Version } from '@upc/protocol';
import PQueue from 'p-queue';
import { withRetry } from './retry.js';

/** Objects as stored (encoded), to send without re-encoding: a local repository or a `.upc` file. */
export interface StoredSource extends ObjectReader {
  readStored(hash: string): Promise<Buffer>;
}

/** Which workspace, and the lease this PC writes it under (read at each commit: it can change). */
export interface LeaseTarget {
  workspaceId: string;
  deviceId: string;
  fencingToken: number;
}

/** A pack is sent once its objects reach this size (the server accepts up to 64 MiB). */
const PACK_BYTES = 8 * 1024 * 1024;
const MISSING_BATCH = 10_000;

export type CommitKind = Version['kind'];

export interface CommitRequest {
  parentId: string | null;
  root: string;
  kind: CommitKind;
  stats: Record<string, number>;
  chunker: ChunkerParams;
  objects: string[];
}

/** The lease was lost: another PC holds it, or HEAD moved under us. */
export class LeaseLostError extends Error {
  override name = 'LeaseLostError';
  constructor(
    message: string,
    readonly holder: string,
  ) {
    super(message);
  }
}

/** Where a session's versions go: a server, or a `.upc` file. */
export interface Remote {
  /** Makes the objects durable remotely (those it already has are skipped). */
  store(source: StoredSource, hashes: string[]): Promise<{ objects: number; bytes: number }>;
  /** Commits a version; its objects are stored. Returns the new version's id. */
  commit(source: StoredSource, request: CommitRequest): Promise<string>;
}

/** A workspace on the server, written under this PC's lease. */
export class ServerRemote implements Remote {
  private readonly uploads = new PQueue({ concurrency: 4 });
  /** The upload under way: stored bytes sent and to send (for progress); null when idle. */
  uploading: { done: number; total: number } | null = null;

  constructor(
    readonly client: UpcClient,
    private readonly target: () => LeaseTarget,
  ) {}

  async store(source: StoredSource, hashes: string[]): Promise<{ objects: number; bytes: number }> {
    const { workspaceId } = this.target();
    let objects = 0;
    let bytes = 0;
    const sends: Promise<void>[] = [];
    let pack: { hash: string; bytes: Buffer }[] = [];
    let packBytes = 0;
    const sendPack = () => {
      const objectsInPack = pack;
      pack = [];
      packBytes = 0;
      const encoded = encodePack(objectsInPack);
      sends.push(
        this.uploads.add(async () => {
          await withRetry(() => this.client.uploadPack(workspaceId, encoded.hash, encoded.bytes));
          this.sent(encoded.bytes.length);
        }),
      );
    };
    for (let i = 0; i < hashes.length; i += MISSING_BATCH) {
      const batch = hashes.slice(i, i + MISSING_BATCH);
      const missing = await withRetry(() => this.client.missingObjects(workspaceId, batch));
      for (const hash of missing) {
        const stored = await source.readStored(hash);
        objects++;
        bytes += stored.length;
        this.uploading = { done: this.uploading?.done ?? 0, total: bytes };
        if (stored.length >= STANDALONE_THRESHOLD) {
          sends.push(
            this.uploads.add(async () => {
              await withRetry(() => this.client.uploadObject(workspaceId, hash, stored));
              this.sent(stored.length);
            }),
          );
          continue;
        }
        pack.push({ hash, bytes: stored });
        packBytes += stored.length;
        if (packBytes >= PACK_BYTES) sendPack();
      }
    }
    if (pack.length === 1) {
      const [only] = pack as [{ hash: string; bytes: Buffer }];
      sends.push(
        this.uploads.add(async () => {
          await withRetry(() => this.client.uploadObject(workspaceId, only.hash, only.bytes));
          this.sent(only.bytes.length);
        }),
      );
    } else if (pack.length > 1) sendPack();
    const results = await Promise.allSettled(sends);
    this.uploading = null;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    return { objects, bytes };
  }

  private sent(bytes: number): void {
    if (this.uploading) this.uploading.done += bytes;
  }

  async commit(_source: StoredSource, request: CommitRequest): Promise<string> {
    const { workspaceId, deviceId, fencingToken } = this.target();
    try {
      const version = await withRetry(() =>
        this.client.commit(workspaceId, {
          parentId: request.parentId,
          rootTree: request.root,
          kind: request.kind,
          deviceId,
          fencingToken,
          stats: request.stats,
          chunker: request.chunker,
          objects: request.objects.slice(0, 100_000),
        }),
      );
      return version.id;
    } catch (error) {
      if (
        error instanceof ApiError &&
        (error.code === 'head_moved' ||
          error.code === 'stale_fencing_token' ||
          error.code === 'lease_not_held')
      ) {
        const holder = (error.problem.holder as { deviceName?: string } | null | undefined)?.deviceName;
        throw new LeaseLostError(error.message, holder ?? 'another PC');
      }
      throw error;
    }
  }
}

/** A `.upc` file: each commit appends a segment, so the file always holds the newest version. */
export class FileRemote implements Remote {
  constructor(
    private readonly file: UpcFile,
    private readonly source: Record<string, string>,
  ) {}

  static async open(path: string, source: Record<string, string>): Promise<FileRemote> {
    return new FileRemote(await UpcFile.open(path, 'r+'), source);
  }

  store(): Promise<{ objects: number; bytes: number }> {
    return Promise.resolve({ objects: 0, bytes: 0 }); // `commit` appends what the file lacks
  }

  async commit(source: StoredSource, request: CommitRequest): Promise<string> {
    const manifest: UpcManifest = {
      v: 1,
      root: request.root,
      chunker: request.chunker,
      createdAt: new Date().toISOString(),
      source: { ...this.source, kind: request.kind },
    };
    await this.file.append(source, manifest);
    return request.root;
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
