import { randomBytes } from 'node:crypto';
import { readdirSync, renameSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import {
  closeDirectory,
  decodeTree,
  type Directory,
  type Entry,
  entry,
  Folder,
  hashTree,
  LocalRepository,
  materialize,
  mkdirBeneath,
  removeBeneath,
  self,
} from '@upc/image';
import { UpcClient, type Version } from '@upc/protocol';
import { AgentError, EXIT } from './exit-codes.js';
import { fetchFromServer } from './objects.js';
import { openWorkspace } from './account.js';
import { closeNamespace, folderOpener, openNamespace, OVERLAY_RESTORE_HOOKS } from './namespace.js';
import { callDaemon, ensureDaemon, LAYER_RESTORE, sessionPolicy } from './session.js';
import type { AgentHome, SessionRecord } from './state.js';

export interface HistoryRow {
  id: string;
  kind: Version['kind'];
  /** The PC's name. */
  device: string | null;
  deviceId: string | null;
  time: string;
  parentId: string | null;
  head: boolean;
  stats: Record<string, number>;
}

export async function history(
  home: AgentHome,
  options: { connect: () => Promise<UpcClient>; workspace: string | undefined; limit: number },
): Promise<HistoryRow[]> {
  const { client, workspace } = await openWorkspace(home, options.connect, options.workspace);
  const [versions, devices] = await Promise.all([
    client.listVersions(workspace.id, { limit: options.limit }),
    client.listDevices(),
  ]);
  const names = new Map(devices.map((d) => [d.id, d.name]));
  return versions.map((v) => ({
    id: v.id,
    kind: v.kind,
    device: v.deviceId ? (names.get(v.deviceId) ?? v.deviceId) : null,
    deviceId: v.deviceId,
    time: v.createdAt,
    parentId: v.parentId,
    head: v.id === workspace.headVersionId,
    stats: v.stats,
  }));
}

/** A version named by its id or a unique prefix of one. */
async function findVersion(client: UpcClient, workspaceId: string, wanted: string): Promise<Version> {
  if (!/^[0-9a-f-]{4,36}$/.test(wanted)) throw new AgentError(`"${wanted}" is not a version id`, EXIT.usage);
  if (wanted.length === 36) return client.getVersion(workspaceId, wanted);
  const matches = (await client.listVersions(workspaceId, { limit: 500 })).filter((v) =>
    v.id.startsWith(wanted),
  );
  if (matches.length === 1 && matches[0]) return matches[0];
  throw new AgentError(
    matches.length === 0
      ? `no version starts with ${wanted} (see upc history)`
      : `${wanted} matches ${matches.length} versions; give more of the id`,
    EXIT.usage,
  );
}

/** Runs `work` on the session's layers folder, opened to be reached only through descriptors. */
function inLayers(session: SessionRecord, work: (layers: Folder, top: Directory) => void): void {
  const layers = Folder.open(session.path, folderOpener());
  const top = layers.directory('');
  try {
    work(layers, top);
  } finally {
    closeDirectory(top);
    layers.close();
  }
}

/** A path under the workspace's home, as tree path parts; nothing that could leave it. */
function homePath(path: string): string[] {
  const normal = posix.normalize(path.replaceAll('\\', '/'));
  if (posix.isAbsolute(normal) || normal === '..' || normal.startsWith('../') || normal === '.') {
    throw new AgentError(`--path must be a path inside your home folder, not ${path}`, EXIT.usage);
  }
  return ['home', ...normal.split('/').filter((p) => p !== '')];
}

async function entryAt(repo: LocalRepository, root: string, parts: string[]): Promise<Entry | undefined> {
  let tree = root;
  for (const [i, name] of parts.entries()) {
    const entry = decodeTree(await repo.read(tree), tree).entries.find((e) => e.name === name);
    if (!entry || i === parts.length - 1) return entry;
    if (entry.type !== 'dir') return undefined;
    tree = entry.tree;
  }
  return undefined;
}

/**
 * Rolls the session's workspace (or one path in it) back to a version: the version's files replace
 * the current ones in the session folder, and the result is committed as a new `checkpoint`
 * version, so nothing in between is lost from history.
 */
export async function restore(
  home: AgentHome,
  wanted: string,
  path: string | undefined,
): Promise<{ from: string; path: string | null; versionId: string | null }> {
  const session: SessionRecord = await home.requireSession();
  if (!session.server)
    throw new AgentError('restore works on server workspaces; this session is a .upc file');
  const parts = path === undefined ? undefined : homePath(path);
  const client = new UpcClient({ baseUrl: session.server.url, token: session.server.token });
  const version = await findVersion(client, session.workspace.id, wanted);
  await ensureDaemon(home);
  const before = await callDaemon(home, 'POST', '/sync');
  if (before.status !== 200) {
    throw new AgentError(
      `cannot restore while changes are not saved: ${before.body.error ?? ''}`,
      EXIT.unreachable,
    );
  }

  const repo = await LocalRepository.open(home.objectsDir);
  // Beside the layers (on their filesystem, memory or disk), so the restored files are renamed in.
  const staging = join(dirname(session.path), `restore-${randomBytes(4).toString('hex')}`);
  const ns = session.namespace;
  const options = {
    ...LAYER_RESTORE,
    exclusive: true, // a folder of the agent's own, beside the layers, out of the session's sight
    ...(ns ? { sessionUid: ns.uid, sessionGid: ns.gid, ...OVERLAY_RESTORE_HOOKS } : {}),
  };
  await callDaemon(home, 'POST', '/pause');
  let swapped = false;
  try {
    await fetchFromServer(client, session.workspace.id, repo, version.rootTree, false);
    if (parts === undefined) {
      await materialize(repo, version.rootTree, staging, options);
      if (ns) {
        // The session's mounts hold the layer folders being replaced: its programs end, and the
        // session starts again over the restored layers.
        process.stderr.write('upc: restoring the whole workspace ends the programs running in the session\n');
        await closeNamespace(session);
      }
      // The layers are the session's: emptied and refilled through descriptors, never by a name.
      inLayers(session, (layers, top) => {
        for (const name of readdirSync(self(top))) removeBeneath(layers, name);
        for (const name of readdirSync(staging)) renameSync(join(staging, name), entry(top, name));
        mkdirBeneath(layers, 'home', { mode: 0o700 });
      });
      if (ns) {
        session.namespace = await openNamespace(home, session, sessionPolicy(session), ns.user);
        await home.writeSession(session);
        await callDaemon(home, 'POST', '/reload');
      }
    } else {
      const found = await entryAt(repo, version.rootTree, parts);
      if (found) {
        // A one-entry tree holding just that file, folder or link, restored beside the workspace.
        const { hash, bytes } = hashTree({ entries: [found] });
        await repo.write(bytes, hash);
        await repo.flush();
        await materialize(repo, hash, staging, options);
      }
      // The session may be changing its folders as this runs: the path is reached through
      // descriptors opened without following links, so whatever it made a link leads nowhere.
      const parent = parts.slice(0, -1).join('/');
      const name = parts[parts.length - 1] ?? '';
      inLayers(session, (layers) => {
        removeBeneath(layers, parts.join('/'));
        if (!found) return; // it did not exist then: rolling it back removes it
        mkdirBeneath(layers, parent, { mode: 0o755, ...(ns ? { owner: { uid: ns.uid, gid: ns.gid } } : {}) });
        const dir = layers.directory(parent);
        try {
          renameSync(join(staging, found.name), entry(dir, name));
        } finally {
          closeDirectory(dir);
        }
      });
    }
    swapped = true;
  } finally {
    repo.close();
    await rm(staging, { recursive: true, force: true });
    if (!swapped) await callDaemon(home, 'POST', '/resume'); // failed: sync what there is
  }
  const after = await callDaemon(home, 'POST', '/resume', { commit: 'checkpoint' });
  if (after.status !== 200) {
    throw new AgentError(
      `restored on this PC, but not yet saved: ${after.body.error ?? ''}; it is sent when the server is back`,
      EXIT.unreachable,
    );
  }
  return { from: version.id, path: path ?? null, versionId: after.body.versionId ?? null };
}
