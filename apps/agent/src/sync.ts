import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  DEFAULT_CHUNKER,
  emptySnapshotStats,
  hashTree,
  type LocalRepository,
  SnapshotCache,
  type SnapshotResult,
  snapshot,
} from '@upc/image';
import { excludeMatcher } from '@upc/policy';
import { folderOpener, isOpaqueFolder } from './namespace.js';
import { newObjects } from './objects.js';
import { type CommitKind, LeaseLostError, type Remote } from './remote.js';
import { isTransient } from './retry.js';
import { sessionPolicy } from './session.js';
import { type AgentHome, type SessionRecord, writeFileAtomic } from './state.js';

/** What the sync daemon reports; `upc status` prints it. */
export interface SyncState {
  state: 'clean' | 'pending' | 'syncing' | 'offline' | 'conflict' | 'signed-out';
  /** Paths changed since the last commit, as far as the watcher has told. */
  pendingChanges: number;
  /** Bytes read from changed files and not yet committed. */
  pendingBytes: number;
  lastSync: string | null;
  lastError: string | null;
  offlineSince: string | null;
}

export interface SyncResult {
  /** The newest version: the one just committed, or the last one if nothing changed. */
  versionId: string | null;
  root: string;
  committed: boolean;
}

/** Decides what to do when the lease turns out lost: try again with a regained lease, or not. */
export type LeaseLostHandler = (error: LeaseLostError) => Promise<'retry' | { holder: string }>;

/**
 * Turns the workspace folder into versions: snapshot (incremental, with the watcher's hints),
 * store the new objects remotely, commit with the last committed version as parent. Runs one sync
 * at a time. The session record is the journal: what it names as committed is durable remotely;
 * everything else is on the local disk (files and objects) until a sync succeeds.
 */
export class Syncer {
  private hints = new Set<string>();
  private fullScan = true;
  private running: Promise<unknown> = Promise.resolve();
  private syncing = false;
  private pendingBytes = 0;
  private lastSync: string | null = null;
  private lastError: string | null = null;
  private offlineSince: string | null = null;
  private signedOut = false;
  private cacheSavedAt = 0;
  /** The root the journal names (written after each snapshot that differs). */
  private journalRoot: string | undefined;
  /** Set when the daemon before this one died: the first commit is then a `recovery` version. */
  recovering = false;
  /** The `recovery` version this daemon committed, if it did. */
  recoveredVersion: string | null = null;
  /**
   * Paths inside the image (`home/.cache/x`) that are never saved: the session policy's `exclude`
   * rules (by default `~/.cache/**`).
   */
  readonly isExcluded: (path: string) => boolean;

  private constructor(
    private readonly home: AgentHome,
    public session: SessionRecord,
    private readonly repo: LocalRepository,
    private readonly remote: Remote,
    private readonly cache: SnapshotCache,
    private readonly onLeaseLost: LeaseLostHandler,
    private readonly log: (message: string) => void,
  ) {
    this.isExcluded = excludeMatcher(sessionPolicy(session), { user: session.server?.username });
  }

  static async open(
    home: AgentHome,
    session: SessionRecord,
    repo: LocalRepository,
    remote: Remote,
    onLeaseLost: LeaseLostHandler,
    log: (message: string) => void,
  ): Promise<Syncer> {
    let cache = new SnapshotCache();
    try {
      cache = SnapshotCache.fromJSON(JSON.parse(await readFile(home.snapshotCacheFile, 'utf8')));
    } catch {
      // No cache yet (or a damaged one): the first snapshot reads every file.
    }
    cache.chunker ??= DEFAULT_CHUNKER;
    return new Syncer(home, session, repo, remote, cache, onLeaseLost, log);
  }

  /** A path (relative to the workspace folder) that may have changed. */
  noteChange(path: string): void {
    if (this.isExcluded(path)) return;
    this.hints.add(path);
  }

  /** Everything must be looked at next time (the watcher may have missed something). */
  noteUnknownChanges(): void {
    this.fullScan = true;
  }

  get dirty(): boolean {
    return this.fullScan || this.hints.size > 0 || this.pendingBytes > 0;
  }

  state(): SyncState {
    let state: SyncState['state'] = this.dirty ? 'pending' : 'clean';
    if (this.syncing) state = 'syncing';
    if (this.offlineSince) state = 'offline';
    if (this.session.conflict) state = 'conflict';
    if (this.signedOut) state = 'signed-out';
    return {
      state,
      pendingChanges: this.hints.size,
      pendingBytes: this.pendingBytes,
      lastSync: this.lastSync,
      lastError: this.lastError,
      offlineSince: this.offlineSince,
    };
  }

  /** Runs one sync after any that is running. `full` looks at every file, not only hinted ones. */
  sync(kind: CommitKind = 'sync', options: { full?: boolean; always?: boolean } = {}): Promise<SyncResult> {
    const run = this.running.then(() => this.syncNow(kind, options));
    this.running = run.catch(() => undefined);
    return run;
  }

  private async syncNow(
    kind: CommitKind,
    options: { full?: boolean; always?: boolean },
  ): Promise<SyncResult> {
    this.syncing = true;
    try {
      const actual = kind === 'sync' && this.recovering ? 'recovery' : kind;
      const result = await this.snapshotAndCommit(actual, options);
      this.recovering = false;
      if (actual === 'recovery' && result.committed) this.recoveredVersion = result.versionId;
      this.lastSync = new Date().toISOString();
      this.lastError = null;
      if (this.offlineSince) this.log(`back online after ${elapsed(this.offlineSince)}`);
      this.offlineSince = null;
      this.signedOut = false;
      return result;
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
      if (isTransient(error)) this.offlineSince ??= new Date().toISOString();
      else if ((error as { status?: number }).status === 401) this.signedOut = true;
      throw error;
    } finally {
      this.syncing = false;
    }
  }

  private async snapshotAndCommit(
    kind: CommitKind,
    options: { full?: boolean; always?: boolean },
  ): Promise<SyncResult> {
    const full = options.full === true || this.fullScan;
    const hints = this.hints;
    this.hints = new Set();
    this.fullScan = false;
    let result: SnapshotResult;
    if (!existsSync(this.session.path)) {
      // The layers were in memory and the PC restarted: what the journal names is all there is.
      result = await this.journaled();
    } else
      try {
        // The layers are the session's to change while this reads them, as the PC's root: every
        // path is opened beneath the layers' folder without following a link (see Folder).
        result = await snapshot(this.session.path, this.repo, {
          cache: this.cache,
          openBeneath: folderOpener(),
          ...(full ? {} : { changed: hints }),
          exclude: this.isExcluded,
          // Isolated, the layers hold the ids of the session's own users; overlay folders may be opaque.
          ...(this.session.namespace
            ? {
                sessionUid: this.session.namespace.uid,
                sessionGid: this.session.namespace.gid,
                isOpaque: isOpaqueFolder,
              }
            : {}),
          onSkip: (path, reason) => {
            this.log(`not saved: ${path}: ${reason}`);
          },
          // Still being written: its last whole state is kept, and it is looked at again next time.
          onUnstable: (path) => {
            this.hints.add(path);
          },
        });
      } catch (error) {
        // Nothing was recorded: look at these paths again next time.
        for (const path of hints) this.hints.add(path);
        this.fullScan ||= full;
        throw error;
      }
    if (existsSync(this.session.path) && result.root !== this.journalRoot) {
      // The snapshot's objects are on disk (the store syncs them): naming its root makes it last.
      await writeFileAtomic(this.home.journalFile, JSON.stringify(result));
      this.journalRoot = result.root;
    }
    this.pendingBytes += result.stats.bytesRead;
    const committed = this.session.committed;
    if (result.root === committed.root && !options.always) {
      this.pendingBytes = 0;
      await this.saveCache(false);
      return { versionId: committed.versionId, root: committed.root, committed: false };
    }
    const objects = await newObjects(this.repo, committed.root || undefined, result.root);
    await this.remote.store(this.repo, objects);
    const request = {
      root: result.root,
      stats: { ...result.stats },
      chunker: result.chunker,
      objects,
    };
    let versionId: string;
    try {
      versionId = await this.remote.commit(this.repo, {
        ...request,
        parentId: committed.versionId,
        kind: this.session.conflict ? 'conflict' : kind,
      });
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      const decision = await this.onLeaseLost(error);
      if (decision !== 'retry') this.enterConflict(decision.holder);
      // The last committed version may have moved on (a commit of ours whose answer was lost).
      const parent = this.session.committed;
      if (!this.session.conflict && parent.root === result.root) {
        this.pendingBytes = 0;
        return { versionId: parent.versionId, root: parent.root, committed: false };
      }
      versionId = await this.remote.commit(this.repo, {
        ...request,
        parentId: parent.versionId,
        kind: this.session.conflict ? 'conflict' : kind,
      });
    }
    if (this.session.conflict) this.session.conflict.lastVersionId = versionId;
    this.session.committed = { versionId, root: result.root };
    await this.home.writeSession(this.session);
    this.pendingBytes = 0;
    this.log(
      `committed ${this.session.conflict ? 'conflict' : kind} version ${versionId} (${objects.length} new objects)`,
    );
    await this.saveCache(false);
    return { versionId, root: result.root, committed: true };
  }

  /** Another PC has the lease: from now on, commits are `conflict` versions that never move HEAD. */
  enterConflict(holder: string): void {
    if (this.session.conflict) return;
    this.session.conflict = { holder, since: new Date().toISOString(), lastVersionId: null };
    this.log(`the lease was taken by ${holder}; changes from here on are kept as conflict versions`);
    this.home.writeSession(this.session).catch((error: unknown) => {
      this.log(`cannot record the conflict: ${(error as Error).message}`);
    });
  }

  /**
   * The last snapshot the journal names, when the session's layers are gone (they were in memory
   * and the PC restarted). Without one, nothing was changed since the last commit.
   */
  private async journaled(): Promise<SnapshotResult> {
    const journal = await readFile(this.home.journalFile, 'utf8')
      .then((text) => JSON.parse(text) as SnapshotResult)
      .catch(() => undefined);
    if (journal && this.repo.has(journal.root)) {
      this.log(`the session's files are gone (${this.session.path}); its journal names ${journal.root}`);
      return journal;
    }
    // No snapshot since the last commit: that commit is everything there is. A session that never
    // committed had an empty workspace, and that is what it leaves.
    let { root } = this.session.committed;
    if (!root) {
      const empty = hashTree({ entries: [] });
      root = await this.repo.write(empty.bytes, empty.hash);
      await this.repo.flush();
    }
    this.log(`the session's files are gone (${this.session.path}); nothing was snapshotted since ${root}`);
    return { root, chunker: this.cache.chunker ?? DEFAULT_CHUNKER, stats: emptySnapshotStats() };
  }

  /** Saves the snapshot cache, at most every few seconds unless `now`. */
  async saveCache(now: boolean): Promise<void> {
    if (!now && Date.now() - this.cacheSavedAt < 5000) return;
    this.cacheSavedAt = Date.now();
    await writeFileAtomic(this.home.snapshotCacheFile, JSON.stringify(this.cache.toJSON()));
  }
}

function elapsed(since: string): string {
  return `${Math.round((Date.now() - Date.parse(since)) / 1000)} s`;
}
