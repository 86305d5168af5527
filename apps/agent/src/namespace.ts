import type { ChildProcess } from 'node:child_process';
import { fchownSync, lchownSync, lstatSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  DriverError,
  enter,
  hasOpenBeneath,
  isOpaqueAt,
  isolationAvailable,
  isRunning,
  openBeneath,
  perform,
  type PreparedBuilder,
  startSession,
  stopSession,
} from '@upc/driver';
import {
  closeDirectory,
  decodeTree,
  entry,
  Folder,
  type LocalRepository,
  type OpenBeneath,
  self,
} from '@upc/image';
import { layers, type Policy } from '@upc/policy';
import { AgentError, EXIT } from './exit-codes.js';
import { ensureIdentity, findUser } from './identity.js';
import type { AgentHome, NamespaceRecord, SessionRecord } from './state.js';

/**
 * The session's isolation (issue 5): on Linux, as root, the driver builds the session's own
 * namespaces from its policy; `UPC_ISOLATION=none` turns that off (the session is then a folder,
 * as on other platforms), `UPC_ISOLATION=namespace` makes it required.
 */
export function isolationWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  const setting = env.UPC_ISOLATION ?? 'auto';
  if (setting === 'none') return false;
  const available = isolationAvailable();
  if (setting === 'namespace' && !available.ok) {
    throw new AgentError(`UPC_ISOLATION=namespace, but ${available.reason}`, EXIT.usage);
  }
  if (setting !== 'auto' && setting !== 'namespace') {
    throw new AgentError(`UPC_ISOLATION must be auto, namespace or none, not "${setting}"`, EXIT.usage);
  }
  return available.ok;
}

/** The driver's hooks for the overlay's own entries (whiteouts, opaque folders) in restores. */
export const OVERLAY_RESTORE_HOOKS = {
  writeWhiteout: (path: string) => driverCall(perform({ op: 'whiteout', path })),
  setOpaque: (path: string) => driverCall(perform({ op: 'set-opaque', path })),
};

/** The snapshot's hook: whether a folder of an upper layer (open as `fd`) is overlay-opaque. */
export function isOpaqueFolder(fd: number): boolean {
  return isOpaqueAt(fd);
}

let opener: OpenBeneath | undefined | null = null;

/**
 * How the agent opens paths in a session's layers without following links: the driver's
 * openat2 on Linux (5.6 and later), else undefined (`Folder` then walks the path one name at a
 * time, as safely but with more calls).
 */
export function folderOpener(): OpenBeneath | undefined {
  if (opener === null) opener = process.platform === 'linux' && hasOpenBeneath() ? openBeneath : undefined;
  return opener;
}

function driverCall(result: ReturnType<typeof perform>): Promise<void> {
  return result.ok ? Promise.resolve() : Promise.reject(new Error(result.message));
}

/** Where a layer is in the session folder (`cow/etc` → workspace/cow/etc). */
function layerDir(session: { path: string }, name: string): string {
  return join(session.path, ...name.split('/'));
}

/**
 * The user's ids inside the workspace as its image records them (its `/etc/passwd`), read from the
 * image before it is restored: files the image says are the user's are restored as theirs.
 */
export async function identityInImage(
  repo: LocalRepository,
  root: string,
  policy: Policy,
  user: string,
): Promise<{ uid: number; gid: number } | undefined> {
  const etc = layers(policy, { user }).find((layer) => layer.path === '/etc');
  if (!etc) return undefined;
  let tree = root;
  const parts = [...etc.name.split('/'), 'passwd'];
  for (const [i, name] of parts.entries()) {
    const entry = decodeTree(await repo.read(tree), tree).entries.find((e) => e.name === name);
    if (!entry) return undefined;
    if (i < parts.length - 1) {
      if (entry.type !== 'dir') return undefined;
      tree = entry.tree;
    } else {
      if (entry.type !== 'file') return undefined;
      const chunks = await Promise.all(entry.chunks.map((chunk) => repo.read(chunk)));
      return findUser(Buffer.concat(chunks).toString('utf8'), user);
    }
  }
  return undefined;
}

/**
 * Starts the session's namespaces over its restored layers: the user's identity in the image (made
 * on a first session), their home folder theirs, then the driver's build.
 */
export async function openNamespace(
  home: AgentHome,
  session: Pick<SessionRecord, 'path'>,
  policy: Policy,
  user: string,
  builder?: PreparedBuilder,
): Promise<NamespaceRecord> {
  return (await beginNamespace(home, session, policy, user, builder)).opened;
}

/**
 * Starts building the session's namespaces: resolves once the builder has its plan (the user's
 * identity found, the home claimed), with the record to come. The caller can go on restoring
 * folders that are bind-mounted meanwhile.
 */
export async function beginNamespace(
  home: AgentHome,
  session: Pick<SessionRecord, 'path'>,
  policy: Policy,
  user: string,
  builder?: PreparedBuilder,
): Promise<{ opened: Promise<NamespaceRecord> }> {
  const saved = layers(policy, { user });
  const homeLayer = saved.find((layer) => layer.name === 'home');
  if (!homeLayer) throw new AgentError("the policy must forward the user's home");
  const etc = saved.find((layer) => layer.path === '/etc');
  const identity = await ensureIdentity(user, homeLayer.path, etc ? layerDir(session, etc.name) : undefined, {
    openBeneath: folderOpener(),
  });
  claimHome(layerDir(session, 'home'), identity.uid, identity.gid);
  const { hostAccess } = await home.readDevicePreferences();
  // The plan is sent before startSession's first wait: the builder works from here on.
  const opened = startSession(
    {
      policy,
      user,
      ...(hostAccess ? { access: hostAccess } : {}),
      agentHome: home.dir,
      // The layers' folder: the workspace and the overlays' work folders (one filesystem).
      sessionDir: dirname(session.path),
      hostname: `upc-${user.replace(/[^A-Za-z0-9.-]/g, '-')}`.slice(0, 63),
    },
    builder,
  ).then(
    (driver): NamespaceRecord => {
      for (const warning of driver.warnings) process.stderr.write(`upc: ${warning}\n`);
      return {
        ...driver,
        uid: identity.uid,
        gid: identity.gid,
        user,
        home: identity.home,
        shell: identity.shell,
      };
    },
    (error: unknown) => {
      if (error instanceof DriverError) throw new AgentError(`cannot start the session: ${error.message}`);
      throw error;
    },
  );
  opened.catch(() => undefined); // the caller awaits it
  return { opened };
}

/**
 * The home folder belongs to the user. An image made without isolation recorded its home as
 * root's: the whole folder is then handed to the user once, walked through descriptors (never
 * following a link: a link is given to the user, not what it points at).
 */
export function claimHome(dir: string, uid: number, gid: number): void {
  const top = lstatSync(dir);
  if (!top.isDirectory()) throw new AgentError(`the workspace's home ${dir} is not a folder`);
  if (top.uid === uid && top.gid === gid) return;
  const home = Folder.open(dir, folderOpener());
  const walk = (relative: string): void => {
    const folder = home.directory(relative);
    try {
      if (folder.fd >= 0) fchownSync(folder.fd, uid, gid);
      else lchownSync(folder.path, uid, gid);
      for (const name of readdirSync(self(folder))) {
        const path = entry(folder, name);
        if (lstatSync(path).isDirectory()) walk(relative === '' ? name : `${relative}/${name}`);
        else lchownSync(path, uid, gid);
      }
    } finally {
      closeDirectory(folder);
    }
  };
  try {
    walk('');
  } finally {
    home.close();
  }
}

/** The session's namespaces running, rebuilt if they are gone (a reboot, a killed init). */
export async function ensureNamespace(
  home: AgentHome,
  session: SessionRecord,
  policy: Policy,
): Promise<NamespaceRecord | undefined> {
  const current = session.namespace;
  if (!current || isRunning(current)) return current;
  const rebuilt = await openNamespace(home, session, policy, current.user);
  session.namespace = rebuilt;
  await home.writeSession(session);
  return rebuilt;
}

/** Ends every process of the session; its mounts go with it. */
export async function closeNamespace(session: Pick<SessionRecord, 'namespace'>): Promise<void> {
  if (session.namespace) await stopSession(session.namespace);
}

/** What a program in the session sees: the session's own variables and the terminal's. */
export function sessionEnvironment(
  ns: NamespaceRecord,
  admin: boolean,
  session: SessionRecord,
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: ns.home,
    USER: admin ? 'root' : ns.user,
    LOGNAME: admin ? 'root' : ns.user,
    SHELL: ns.shell,
    UPC_SESSION: session.id,
    UPC_WORKSPACE: session.workspace.name,
  };
  for (const [key, value] of Object.entries(process.env)) {
    if (
      value !== undefined &&
      (key === 'TERM' || key === 'COLORTERM' || key === 'LANG' || key.startsWith('LC_'))
    ) {
      env[key] = value;
    }
  }
  if (ns.desktop) env.DISPLAY = `:${String(ns.desktop.display)}`;
  return env;
}

/** Starts a program inside the session, as the user or (`admin`) as the workspace's root. */
export function runInNamespace(
  ns: NamespaceRecord,
  session: SessionRecord,
  argv: string[],
  options: {
    admin: boolean;
    stdio?: 'inherit' | 'pipe' | 'ignore';
    env?: Record<string, string>;
    detached?: boolean;
  },
): ChildProcess {
  const env = { ...sessionEnvironment(ns, options.admin, session), ...options.env };
  return enter(ns, {
    argv,
    uid: options.admin ? 0 : ns.uid,
    gid: options.admin ? 0 : ns.gid,
    cwd: ns.home,
    env,
    ...(options.stdio ? { stdio: options.stdio } : {}),
    ...(options.detached ? { detached: true } : {}),
  });
}
