import { randomBytes } from 'node:crypto';
import { mkdir, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import {
  DEFAULT_CHUNKER,
  exportUpc,
  LocalRepository,
  materialize,
  ObjectFormatError,
  primeSnapshotCache,
  reachableObjects,
  UpcFile,
  UpcFileError,
} from '@upc/image';
import { defaultPolicy } from '@upc/policy';
import { ApiError, type UpcClient } from '@upc/protocol';
import { openWorkspace } from './account.js';
import { AgentError, EXIT } from './exit-codes.js';
import { holderOf } from './lease.js';
import { fetchFromServer } from './objects.js';
import { Progress } from './progress.js';
import { ServerRemote } from './remote.js';
import { checkLayers } from './layer-check.js';
import { DEFAULT_WORKSPACE, homeOf, LAYER_RESTORE, PLATFORM, startDaemon } from './session.js';
import { type AgentHome, newSessionId, type SessionRecord, writeFileAtomic } from './state.js';
import { AGENT_VERSION } from './index.js';
import { platform, release } from 'node:os';

/** A scratch object store under the agent's home, removed when `use` ends. */
async function withScratchRepository<T>(
  home: AgentHome,
  use: (repo: LocalRepository) => Promise<T>,
): Promise<T> {
  const dir = join(home.dir, `scratch-${randomBytes(4).toString('hex')}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const repo = await LocalRepository.open(dir);
  try {
    return await use(repo);
  } finally {
    repo.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes a workspace's version (HEAD by default) into a `.upc` file that needs no server. */
export async function exportImage(
  home: AgentHome,
  options: {
    connect: () => Promise<UpcClient>;
    workspace: string | undefined;
    version: string | undefined;
    out: string;
    quiet: boolean;
  },
): Promise<{ file: string; workspace: string; version: string; objects: number; bytes: number }> {
  const out = resolve(options.out);
  if (
    await stat(out).then(
      () => true,
      () => false,
    )
  ) {
    throw new AgentError(`${out} exists; choose another --out`, EXIT.usage);
  }
  const { client, workspace } = await openWorkspace(home, options.connect, options.workspace);
  const versionId = options.version ?? workspace.headVersionId;
  if (!versionId) throw new AgentError(`workspace "${workspace.name}" has no versions yet`);
  const version = await client.getVersion(workspace.id, versionId);
  return withScratchRepository(home, async (repo) => {
    await fetchFromServer(client, workspace.id, repo, version.rootTree, options.quiet);
    const written = await exportUpc(
      repo,
      {
        v: 1,
        root: version.rootTree,
        chunker: version.chunker ?? DEFAULT_CHUNKER,
        createdAt: new Date().toISOString(),
        source: { workspace: workspace.name, version: version.id, kind: version.kind },
      },
      out,
    );
    return { file: out, workspace: workspace.name, version: version.id, ...written };
  });
}

/**
 * Brings a `.upc` file in as the workspace's new HEAD (a `checkpoint` version on top of the
 * current one, so nothing is lost), under a lease taken for the purpose.
 */
export async function importImage(
  home: AgentHome,
  options: {
    connect: () => Promise<UpcClient>;
    file: string;
    workspace: string | undefined;
    deviceName: string;
    quiet: boolean;
  },
): Promise<{ workspace: string; version: string; uploaded: number }> {
  const file = await openUpc(options.file, 'r');
  try {
    const verifying = new Progress('verifying', 'items', process.stderr, options.quiet);
    await file
      .verify((n) => {
        verifying.update(n, n);
      })
      .catch((error: unknown) => {
        throw damaged(options.file, error, 'nothing was imported');
      });
    verifying.done();
    const session = await home.readSession();
    const name = options.workspace ?? file.manifest.source?.workspace ?? DEFAULT_WORKSPACE;
    if (session?.workspace.name === name && session.mode === 'server') {
      throw new AgentError(
        `workspace "${name}" is open in this PC's session; log out first, or import into another workspace`,
      );
    }
    const client = await options.connect();
    const { workspace } = await openWorkspace(home, () => Promise.resolve(client), name, { create: true });
    const device = await client.registerDevice({
      machineId: home.machineId(),
      name: options.deviceName,
      os: `${platform()} ${release()}`,
      agentVersion: AGENT_VERSION,
    });
    let lease;
    try {
      lease = await client.acquireLease(workspace.id, device.id);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'lease_held') {
        const holder = holderOf(error);
        throw new AgentError(
          `workspace "${name}" is in use on ${holder ? `"${holder.name}" since ${holder.since}` : 'another PC'}; import it once that session ends`,
          EXIT.inUse,
        );
      }
      throw error;
    }
    try {
      const objects: string[] = [];
      for await (const hash of reachableObjects(file, file.manifest.root)) objects.push(hash);
      const target = { workspaceId: workspace.id, deviceId: device.id, fencingToken: lease.fencingToken };
      const remote = new ServerRemote(client, () => target);
      const stored = await remote.store(file, objects);
      const version = await remote.commit(file, {
        parentId: workspace.headVersionId,
        root: file.manifest.root,
        kind: 'checkpoint',
        stats: { importedObjects: objects.length },
        chunker: file.manifest.chunker,
        objects: objects.slice(0, 100_000),
      });
      return { workspace: name, version, uploaded: stored.objects };
    } finally {
      await client.releaseLease(workspace.id, device.id, lease.fencingToken).catch(() => undefined);
    }
  } finally {
    await file.close();
  }
}

/** An object of a `.upc` file that is missing or does not check out, said with the file's name. */
function damaged(path: string, error: unknown, consequence: string): unknown {
  if (!(error instanceof ObjectFormatError || error instanceof UpcFileError)) return error;
  return new AgentError(`${path} is damaged (${error.message}); ${consequence}`);
}

async function openUpc(path: string, flags: 'r' | 'r+'): Promise<UpcFile> {
  try {
    return await UpcFile.open(path, flags);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new AgentError(`${path}: no such file`, EXIT.usage);
    if (error instanceof UpcFileError) throw new AgentError(error.message);
    throw error;
  }
}

/** Starts a session from a `.upc` file: no server, no lease; each sync appends to the file. */
export async function runFile(
  home: AgentHome,
  path: string,
  options: { quiet: boolean },
): Promise<{ session: string; file: string; path: string; home: string; root: string }> {
  const existing = await home.readSession();
  if (existing) {
    throw new AgentError(
      `this PC already has a session (workspace "${existing.workspace.name}"); run upc logout first`,
      EXIT.inUse,
    );
  }
  const absolute = resolve(path);
  const file = await openUpc(absolute, 'r');
  try {
    await home.wipeSession(); // what a start cut short left behind (no session record)
    await mkdir(home.sessionDir, { recursive: true, mode: 0o700 });
    const repo = await LocalRepository.open(home.objectsDir);
    const progress = new Progress('loading', 'items', process.stderr, options.quiet);
    const manifest = await file
      .importInto(repo, (n) => {
        progress.update(n, n);
      })
      .catch((error: unknown) => {
        throw damaged(path, error, 'no session was opened');
      });
    progress.done();
    await checkLayers(repo, manifest.root, defaultPolicy(PLATFORM));
    await materialize(repo, manifest.root, home.workspaceDir, { ...LAYER_RESTORE, exclusive: true });
    await mkdir(join(home.workspaceDir, 'home'), { recursive: true, mode: 0o700 });
    const cache = await primeSnapshotCache(repo, manifest.root, home.workspaceDir, {
      chunker: manifest.chunker,
    });
    await writeFileAtomic(home.snapshotCacheFile, JSON.stringify(cache.toJSON()));
    repo.close();
    const session: SessionRecord = {
      v: 1,
      id: newSessionId(),
      mode: 'file',
      startedAt: new Date().toISOString(),
      workspace: { id: manifest.root, name: manifest.source?.workspace ?? basename(absolute, '.upc') },
      path: home.workspaceDir,
      committed: { versionId: manifest.root, root: manifest.root },
      file: absolute,
    };
    await home.writeSession(session);
    await startDaemon(home, false);
    return {
      session: session.id,
      file: absolute,
      path: session.path,
      home: homeOf(session),
      root: manifest.root,
    };
  } catch (error) {
    await home.wipeSession();
    throw error;
  } finally {
    await file.close();
  }
}
