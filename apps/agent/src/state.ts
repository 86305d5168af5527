import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Folder, removeBeneath } from '@upc/image';
import { z } from 'zod';
import { AgentError } from './exit-codes.js';

/**
 * The agent's state folder (`UPC_HOME`): this PC's identity, and at most one session.
 *
 *   device.json              this PC's machine id (made once)
 *   cache/<user id>/         the encrypted object cache a device may keep between sessions
 *   session/session.json     the session: server, token, workspace, lease, last committed version
 *   session/workspace/       the workspace's saved layers, restored (the user works here)
 *   session/objects/         the local object store: what was fetched and what was snapshotted
 *   session/snapshot.json    the snapshot cache, so a restarted daemon reads only what changed
 *   session/daemon.json      the running daemon's pid and socket; absent after a clean stop
 *   session/daemon.log       what the daemon did
 *
 * A session's layers may instead be kept in memory (`memoryLayersDir`, a folder of /dev/shm that is
 * root's alone): `session.json`'s `path` says where they are; see `layers.ts`.
 */
export class AgentHome {
  /** The home's one spelling (absolute, links resolved): names derived from it must not vary. */
  readonly dir: string;

  constructor(dir: string) {
    const absolute = resolve(dir);
    let real = absolute;
    try {
      real = realpathSync(absolute);
    } catch {
      // not made yet: the first command makes it where it was named
    }
    this.dir = real;
  }

  get deviceFile(): string {
    return join(this.dir, 'device.json');
  }
  get sessionDir(): string {
    return join(this.dir, 'session');
  }
  get sessionFile(): string {
    return join(this.sessionDir, 'session.json');
  }
  get workspaceDir(): string {
    return join(this.sessionDir, 'workspace');
  }
  get objectsDir(): string {
    return join(this.sessionDir, 'objects');
  }
  get snapshotCacheFile(): string {
    return join(this.sessionDir, 'snapshot.json');
  }
  get daemonFile(): string {
    return join(this.sessionDir, 'daemon.json');
  }
  get daemonLog(): string {
    return join(this.sessionDir, 'daemon.log');
  }
  /**
   * Where a session's layers go when they are kept in memory: named after this home, so a wipe
   * finds them with no session record (a login cut short).
   */
  get memoryLayersDir(): string {
    return join('/dev/shm', `upc-layers-${createHash('sha256').update(this.dir).digest('hex').slice(0, 16)}`);
  }
  /** The journal: the last snapshot of the layers stored in `objects/`, committed or not. */
  get journalFile(): string {
    return join(this.sessionDir, 'journal.json');
  }
  cacheDir(userId: string): string {
    return join(this.dir, 'cache', userId);
  }
  get settingsFile(): string {
    return join(this.dir, 'settings.json');
  }

  /**
   * The daemon's socket. Unix socket paths are limited to ~108 bytes, so long homes use the temp
   * folder; Windows uses a named pipe.
   */
  get socketPath(): string {
    return this.socketIn(this.sessionDir, 'daemon');
  }

  /** The resident service's socket (`upc service`), in the agent's home. */
  get serviceSocket(): string {
    return this.socketIn(this.dir, 'service');
  }

  /** The resident service's log, also the one of the spare daemons it keeps. */
  get serviceLog(): string {
    return join(this.dir, 'service.log');
  }

  /** A socket in `folder`, or in the temporary folder when the path is too long for one. */
  private socketIn(folder: string, name: string): string {
    const id = createHash('sha256').update(this.dir).digest('hex').slice(0, 16);
    if (process.platform === 'win32') return `\\\\.\\pipe\\upc-${name}-${id}`; // a named pipe
    const local = join(folder, `${name}.sock`);
    if (Buffer.byteLength(local) < 100) return local;
    return join(tmpdir(), `upc-${name}-${id}.sock`);
  }

  /** This PC's stable machine id, made on first use. */
  machineId(): string {
    try {
      return DeviceRecord.parse(JSON.parse(readFileSync(this.deviceFile, 'utf8'))).machineId;
    } catch {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const machineId = randomUUID();
      // Written synchronously and only if absent: two first commands racing keep the first id.
      try {
        writeFileExclusive(this.deviceFile, JSON.stringify({ machineId }) + '\n');
        return machineId;
      } catch {
        return DeviceRecord.parse(JSON.parse(readFileSync(this.deviceFile, 'utf8'))).machineId;
      }
    }
  }

  async readSession(): Promise<SessionRecord | undefined> {
    let text: string;
    try {
      text = await readFile(this.sessionFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const parsed = SessionRecord.safeParse(JSON.parse(text));
    if (!parsed.success) {
      throw new AgentError(`${this.sessionFile} is damaged (${parsed.error.issues[0]?.message ?? ''})`);
    }
    return parsed.data;
  }

  async requireSession(): Promise<SessionRecord> {
    const session = await this.readSession();
    if (!session) throw new AgentError('no session on this PC; run upc login first', 1);
    return session;
  }

  writeSession(session: SessionRecord): Promise<void> {
    return writeFileAtomic(this.sessionFile, JSON.stringify(session, null, 2) + '\n');
  }

  async readDevicePreferences(): Promise<DevicePreferences> {
    try {
      return DevicePreferences.parse(JSON.parse(await readFile(this.settingsFile, 'utf8')));
    } catch {
      return DevicePreferences.parse({});
    }
  }

  writeDevicePreferences(preferences: DevicePreferences): Promise<void> {
    return writeFileAtomic(this.settingsFile, JSON.stringify(preferences, null, 2) + '\n');
  }

  /**
   * Removes the session's files. The layers are the session's to change, so they are removed
   * without following any link they hold (each folder emptied through a descriptor of its own).
   */
  async wipeSession(): Promise<void> {
    // The layers the session record names, wherever they are (in memory, they are outside it).
    const layers = await readFile(this.sessionFile, 'utf8')
      .then((text) => dirname((JSON.parse(text) as { path?: unknown }).path as string))
      .catch(() => undefined);
    if (layers?.startsWith('/dev/shm/upc-layers-')) removeTree(layers);
    removeTree(this.sessionDir);
    if (process.platform === 'linux') removeTree(this.memoryLayersDir);
  }
}

/** Removes the folder at `path` and all it holds, never following a link (see `removeBeneath`). */
export function removeTree(path: string): void {
  let parent: Folder;
  try {
    parent = Folder.open(dirname(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    removeBeneath(parent, basename(path));
  } finally {
    parent.close();
  }
}

const DeviceRecord = z.object({ machineId: z.string().min(1) });

/** What this PC keeps between sessions (set with `upc device`). */
export const DevicePreferences = z.object({
  /** Keep the object cache, encrypted with a key only the user's session gets, for a fast re-login. */
  keepCache: z.boolean().default(false),
  /**
   * Where sessions' layers are restored: `memory` (a folder of /dev/shm), `disk` (the agent's
   * home), or `auto`: memory when /dev/shm has room for four times the image (see `layers.ts`).
   */
  layers: z.enum(['auto', 'memory', 'disk']).default('auto'),
  /**
   * Which of this PC's folders a workspace may show copy-on-write (`cow`) or pass through (`host`),
   * and which passed-through ones a session may write to (@upc/policy's `HostAccess`; set with
   * `upc device host-folders`). Absent: the platform's default (what its default policy shows,
   * none of it writable).
   */
  hostAccess: z
    .object({
      cow: z.array(z.string()).max(256),
      host: z.array(z.string()).max(256),
      writable: z.array(z.string()).max(256),
    })
    .optional(),
});
export type DevicePreferences = z.infer<typeof DevicePreferences>;

/** The last version this PC committed (or restored): what a snapshot is compared against. */
const Committed = z.object({ versionId: z.string().nullable(), root: z.string() });

export const SessionRecord = z.object({
  v: z.literal(1),
  id: z.string(),
  /** `server`: a workspace on a server; `file`: a `.upc` file worked on with no server. */
  mode: z.enum(['server', 'file']),
  startedAt: z.string(),
  workspace: z.object({ id: z.string(), name: z.string() }),
  path: z.string(),
  committed: Committed,
  server: z
    .object({
      url: z.string(),
      token: z.string(),
      userId: z.string(),
      username: z.string(),
      deviceId: z.string(),
      fencingToken: z.number().int(),
      /** The lease's time to live as granted at login; the daemon renews at a third of it. */
      leaseTtlMs: z.number().int().positive().optional(),
    })
    .optional(),
  file: z.string().optional(),
  /**
   * The workspace's effective policy when the session began (a libs/policy document): what the
   * daemon keeps out of the image. Absent for `.upc` files and older sessions: this PC's default.
   */
  policy: z.record(z.string(), z.unknown()).optional(),
  /** The session's namespaces (Linux, as root): absent when the session is a plain folder. */
  namespace: z.lazy(() => NamespaceRecord).optional(),
  /**
   * Set once another PC took the lease: from then on this PC's changes are committed as `conflict`
   * versions chained from `committed`, never moving HEAD.
   */
  conflict: z
    .object({ holder: z.string(), since: z.string(), lastVersionId: z.string().nullable() })
    .optional(),
});
export type SessionRecord = z.infer<typeof SessionRecord>;

/** A session's namespaces as the driver started them, and the user inside them. */
export const NamespaceRecord = z.object({
  init: z.number().int().positive(),
  initStart: z.string(),
  idBase: z.number().int().positive(),
  idCount: z.number().int().positive(),
  claim: z.string(),
  warnings: z.array(z.string()),
  buildMs: z.number(),
  /** The user inside the workspace: ids, name, home and shell. */
  uid: z.number().int().nonnegative(),
  gid: z.number().int().nonnegative(),
  user: z.string(),
  home: z.string(),
  shell: z.string(),
  /** The session's desktop, once `upc desktop` started it. */
  desktop: z.looseObject({ kind: z.string(), display: z.number().int() }).optional(),
});
export type NamespaceRecord = z.infer<typeof NamespaceRecord>;

export function newSessionId(): string {
  return randomUUID();
}

/**
 * Writes a file so that a crash leaves either the old or the new content, never a mix. `durable`
 * false skips the wait for the disk, for a file that means nothing after a restart.
 */
export async function writeFileAtomic(path: string, content: string, durable = true): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
  const handle = await open(temporary, 'w', 0o600);
  try {
    await handle.writeFile(content);
    if (durable) await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}

function writeFileExclusive(path: string, content: string): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(path, content, { flag: 'wx', mode: 0o600 }); // 'wx' fails if the file exists
}
