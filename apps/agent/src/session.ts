import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { lchown, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { platform, release } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_CHUNKER,
  LocalRepository,
  materialize,
  type MaterializeOptions,
  primeSnapshotCache,
} from '@upc/image';
import {
  defaultPolicy,
  type EffectivePolicy,
  effectivePolicy,
  layers,
  type Platform,
  type Policy,
  parsePolicy,
  PolicyError,
  policyDocument,
} from '@upc/policy';
import { enterCommand, prepareBuilder, type PreparedBuilder } from '@upc/driver';
import { ApiError, type PcLoginResponse, UpcClient } from '@upc/protocol';
import { type CachedHead, loadCache, saveCache } from './cache.js';
import { requireLayersRoom, restoreLimits } from './expansion.js';
import { claimLayersRoot, type LayersPlace, workspaceIn } from './layers.js';
import { AgentError, EXIT } from './exit-codes.js';
import { AGENT_VERSION } from './index.js';
import { call as callSocket, DaemonUnreachable } from './ipc.js';
import { checkLayers } from './layer-check.js';
import { holderOf } from './lease.js';
import {
  beginNamespace,
  claimHome,
  closeNamespace,
  folderOpener,
  identityInImage,
  isolationWanted,
  OVERLAY_RESTORE_HOOKS,
  sessionEnvironment,
} from './namespace.js';
import { fetchFromServer, fetchVersion } from './objects.js';
import { Progress } from './progress.js';
import {
  type AgentHome,
  type NamespaceRecord,
  newSessionId,
  type SessionRecord,
  writeFileAtomic,
} from './state.js';

export const DEFAULT_WORKSPACE = 'default';
/**
 * How a workspace's layers are restored for a session (decision 98). Each layer is seen only
 * through the session: isolated, in its own namespaces, where a link resolves with the session's
 * rights; unisolated, by the user's own programs. So links are kept as the image has them (a
 * home's `bin/python -> /usr/bin/python3`, an /etc's `localtime -> /usr/share/zoneinfo/…`), and
 * what keeps them harmless is that nothing of the agent's ever follows one: the restore creates
 * and never follows, and everything after it that reads or writes the layers as the PC's root
 * (the snapshot, the identity update, `upc restore`, the wipe) goes through descriptors.
 */
export const LAYER_RESTORE = { links: 'as-written' } as const;

/** The paper's Table 1: where login time goes. */
export interface LoginTimings {
  totalMs: number;
  /** Authenticate, register the PC, find the workspace, take the lease, read HEAD (one request). */
  gatherMs: number;
  /**
   * The PC's cache opened, and objects not in it fetched and verified. With the service's head
   * start: what was left of it once the server had answered (it runs from the login's start).
   */
  fetchMs: number;
  /**
   * The saved layers written into the session's folder. The forwarded ones are written while the
   * namespaces are built (isolated, the user's ids known), so this includes most of that build.
   */
  materializeMs: number;
  /** What is left of building the namespaces once every file is written, and the session recorded. */
  mountMs: number;
  /**
   * The session started: the daemon's snapshot cache primed, the daemon up and answering. Through
   * the resident service, its daemon on record (the service then primes, starts it and waits for
   * its answer while the user's programs start).
   */
  desktopMs: number;
}

export interface LoginReport {
  session: string;
  workspace: { id: string; name: string };
  version: string | null;
  path: string;
  /** The user's home: inside the session when it is isolated, else the folder on this PC. */
  home: string;
  /** `namespace`: the session has its own namespaces (upc exec and upc shell run inside them). */
  isolation: 'namespace' | 'none';
  /**
   * Isolated: how a login manager starts the user's programs in the session without the agent,
   * `file` with `args` and then the program's argv, in the environment `env`.
   */
  enter?: { file: string; args: string[]; env: Record<string, string> };
  /** The login was made by this PC's resident service (`upc service`). */
  via?: 'service';
  resumed: boolean;
  /** The layers were made from this PC's cache while the server answered (`upc service`). */
  headStart?: boolean;
  fetched: { objects: number; bytes: number; fileBytes: number };
  restored: { entries: number; bytes: number };
  timings: LoginTimings;
}

export interface LoginOptions {
  server: string;
  user: string;
  password: string;
  workspace: string;
  takeOver: boolean;
  deviceName: string;
  quiet: boolean;
}

/** This PC's platform, as policies name it. */
export const PLATFORM: Platform = process.platform === 'win32' ? 'windows' : 'linux';

/** Whether a stored override is for this PC's platform (one for another platform is left aside). */
export function overrideApplies(override: unknown): boolean {
  const platform = (override as { platform?: unknown } | null)?.platform;
  return override !== null && (platform === PLATFORM || (platform !== 'linux' && platform !== 'windows'));
}

/**
 * The policy a workspace runs with: the platform's default and the workspace's override. Refuses
 * one that is not valid, or that does not forward the user's home: the agent keeps the session's
 * HOME in the image's `home` layer.
 */
export function workspacePolicy(override: unknown, platform: Platform = PLATFORM): EffectivePolicy {
  let policy: EffectivePolicy;
  try {
    policy = effectivePolicy(defaultPolicy(platform), override);
  } catch (error) {
    if (error instanceof PolicyError) throw new AgentError(error.message, EXIT.usage);
    throw error;
  }
  if (!layers(policy).some((layer) => layer.name === 'home' && layer.kind === 'forward')) {
    throw new AgentError(
      `the policy must forward the user's home (forward ${platform === 'linux' ? '/home/<user>' : 'C:\\Users\\<user>'}): the session's HOME is kept there`,
      EXIT.usage,
    );
  }
  return policy;
}

/** The policy a session runs with: the one fixed at login, else this PC's default. */
export function sessionPolicy(session: SessionRecord): Policy {
  return session.policy ? parsePolicy(session.policy) : defaultPolicy(PLATFORM);
}

/** The folder the session's programs use as HOME. */
export function homeOf(session: SessionRecord): string {
  return join(session.path, 'home');
}

/**
 * Logs in: authenticates, takes the lease, restores HEAD into the session folder and starts the
 * sync daemon. A session of the same user and workspace already on this PC is resumed (a fresh
 * token, the daemon restarted if it had died) instead.
 */
export async function login(
  home: AgentHome,
  options: LoginOptions,
  helpers: LoginHelpers = {},
): Promise<LoginReport> {
  const started = performance.now();
  const isolated = isolationWanted();
  const fresh = !(await home.readSession());
  // Isolated, the session builder starts now: its process is ready by the time the layers are.
  let builder = isolated && fresh ? (helpers.builder ?? prepareBuilder)() : undefined;
  const takeBuilder = (): PreparedBuilder | undefined => {
    const taken = builder;
    builder = undefined;
    return taken;
  };
  // Through the service, the user's cached workspace may be restored while the server answers.
  const early: EarlyLayers = {
    layers: fresh ? helpers.headStart?.(options, takeBuilder).catch(() => undefined) : undefined,
  };
  try {
    return await loginWith(home, options, started, { isolated, takeBuilder, early }, helpers);
  } catch (error) {
    takeBuilder()?.cancel();
    const unused = await early.layers;
    if (unused) {
      // Made for a login that did not happen (a wrong password, the lease held elsewhere).
      await discardLayers(unused);
      await home.wipeSession();
    }
    throw error;
  }
}

/**
 * Where a login gets the processes it starts. By default each is spawned by the login itself; the
 * resident service (`upc service`) hands out ones it started ahead of time.
 */
export interface LoginHelpers {
  builder?: () => PreparedBuilder;
  daemon?: () => StartedDaemon;
  /**
   * Given, the login does not wait for the session's daemon to answer: it returns once the session
   * is written and its daemon begun, and hands the daemon's answer to this supervisor (the resident
   * service), which restarts a daemon that fails. What the session writes meanwhile is found by
   * the daemon's first full snapshot, so nothing is lost by not waiting.
   */
  superviseDaemon?: (answer: Promise<DaemonStatus>) => void;
  /**
   * Restores the workspace this PC's cache was last saved at and builds its namespaces (with the
   * builder `takeBuilder` gives, if it takes it), started with the sign-in request and run while
   * the server answers: the service's head start (head-start.ts). The login keeps what it made
   * only if the server's answer names that version, cache key and policy.
   */
  headStart?: (
    options: LoginOptions,
    takeBuilder: () => PreparedBuilder | undefined,
  ) => Promise<PreparedLayers | undefined>;
  /** Told what the server answered to the sign-in, once it has. */
  gathered?: (gather: PcLoginResponse) => void;
}

/** A session's layers restored into their folder, and its namespaces built over them (isolated). */
export interface RestoredLayers {
  place: LayersPlace;
  workspaceDir: string;
  /** The user's ids inside the session, from the image (isolated only). */
  owner: { uid: number; gid: number } | undefined;
  restored: { entries: number; bytes: number };
  namespace: NamespaceRecord | undefined;
}

/** A workspace's layers made ahead of the server's answer (`LoginHelpers.headStart`). */
export interface PreparedLayers extends RestoredLayers {
  workspaceId: string;
  /** The version restored, and the cache key and policy override (`policyKey`) it was made with. */
  root: string;
  cacheKey: string;
  policy: string;
  repo: LocalRepository;
  fileBytes: number;
}

/** The head start's layers, until a login keeps or discards them. */
interface EarlyLayers {
  layers: Promise<PreparedLayers | undefined> | undefined;
}

/** The policy override a workspace is opened with, as prepared layers record it. */
export function policyKey(override: unknown): string {
  return JSON.stringify(override ?? null);
}

/** Whether layers made ahead are the ones the server's answer asks for. */
function preparedFor(layers: PreparedLayers, gather: PcLoginResponse): boolean {
  return (
    layers.workspaceId === gather.workspace.id &&
    layers.root === gather.head?.rootTree &&
    layers.cacheKey === gather.cacheKey &&
    layers.policy === policyKey(gather.workspace.policy)
  );
}

/** Ends what layers made ahead started; their files go with the session folder's wipe. */
async function discardLayers(layers: PreparedLayers): Promise<void> {
  layers.repo.close();
  if (layers.namespace) await closeNamespace(layers).catch(() => undefined);
}

/**
 * Restores version `root` (none: an empty workspace) into a fresh folder of `place` and, given a
 * builder, builds the session's namespaces over it. Isolated with the user known, the forwarded
 * folders are restored while the namespaces are built (a bind mount shows what is written after
 * it); what overlays are made from is written first, whole: an overlay's layers must not change
 * under it. Fails with nothing left running.
 */
export async function restoreWorkspace(
  home: AgentHome,
  repo: LocalRepository,
  root: string | undefined,
  policy: Policy,
  user: string,
  options: {
    builder: PreparedBuilder | undefined;
    place: LayersPlace;
    onProgress?: (bytes: number) => void;
  },
): Promise<RestoredLayers> {
  const { builder, place } = options;
  let opened: Promise<NamespaceRecord | undefined> = Promise.resolve(undefined);
  let restored = { entries: 0, bytes: 0 };
  let workspaceDir: string;
  let owner: RestoredLayers['owner'];
  let restoredAll: Promise<void>;
  try {
    // Each layer a folder, or the image is refused before anything is written.
    if (root) await checkLayers(repo, root, policy, user);
    workspaceDir = workspaceIn(await claimLayersRoot(home, place));
    // Isolated, the files the image says are the user's are restored as theirs (their id inside).
    owner = builder && root ? await identityInImage(repo, root, policy, user) : undefined;
    const restore = async (part: Pick<MaterializeOptions, 'only' | 'adopt'>) => {
      if (!root) return;
      const before = restored.bytes;
      const done = await materialize(repo, root, workspaceDir, {
        ...LAYER_RESTORE,
        limits: restoreLimits(workspaceDir), // what it writes fits the room where it goes
        ...(owner ? { sessionUid: owner.uid, sessionGid: owner.gid } : {}),
        ...(builder ? OVERLAY_RESTORE_HOOKS : {}),
        ...part,
        exclusive: true, // a fresh folder of root's, and no program of the session runs yet
        inMemory: place === 'memory',
        onProgress: ({ bytes }) => {
          options.onProgress?.(before + bytes);
        },
      });
      restored = { entries: restored.entries + done.entries, bytes: before + done.bytes };
    };
    const forwarded = owner ? forwardedRoots(policy, user) : [];
    await restore({ only: (name) => !forwarded.includes(name) });
    // Made now, empty, for the builder to mount (the part below adopts them). One the image lacks
    // stays as the builder would have made it; the home is the user's from the start.
    for (const name of forwarded)
      await mkdir(join(workspaceDir, name), { mode: name === 'home' ? 0o700 : 0o755 });
    if (owner && forwarded.includes('home')) await lchown(join(workspaceDir, 'home'), owner.uid, owner.gid);
    await mkdir(join(workspaceDir, 'home'), { recursive: true, mode: 0o700 });
    // Resolved once the builder has its plan; its work then runs beside the restore below.
    if (builder) opened = (await beginNamespace(home, { path: workspaceDir }, policy, user, builder)).opened;
    restoredAll =
      forwarded.length > 0
        ? restore({ only: (name) => forwarded.includes(name), adopt: forwarded })
        : Promise.resolve();
  } catch (error) {
    builder?.cancel(); // not handed its plan, or its session not started: nothing else runs
    throw error;
  }
  const [files, built] = await Promise.allSettled([restoredAll, opened]);
  const namespace = built.status === 'fulfilled' ? built.value : undefined;
  try {
    if (files.status === 'rejected') throw files.reason;
    if (built.status === 'rejected') throw built.reason;
    // The home's own owner came last, from the image: one made without isolation says root's.
    if (namespace) claimHome(join(workspaceDir, 'home'), namespace.uid, namespace.gid);
  } catch (error) {
    if (namespace) await closeNamespace({ namespace }).catch(() => undefined);
    throw error;
  }
  return { place, workspaceDir, owner, restored, namespace };
}

async function loginWith(
  home: AgentHome,
  options: LoginOptions,
  started: number,
  ahead: { isolated: boolean; takeBuilder: () => PreparedBuilder | undefined; early: EarlyLayers },
  helpers: LoginHelpers,
): Promise<LoginReport> {
  const client = new UpcClient({ baseUrl: options.server });
  let existing = await home.readSession();
  if (existing) {
    await signIn(client, options, () => client.login(options.user, options.password));
    if (sameLogin(existing, options) && !existsSync(existing.path)) {
      // Its layers were in memory and the PC restarted: what it saved (its journal included) is
      // committed and the session ended; this login restores the result.
      process.stderr.write(
        `upc: the PC restarted during your last session here; saving what it kept and starting afresh\n`,
      );
      if (existing.server && client.token) {
        existing.server.token = client.token; // the one it had may have lapsed meanwhile
        await home.writeSession(existing);
      }
      await logout(home, { keepLocal: false, quiet: true });
      existing = undefined;
    }
  }
  if (existing) return resume(home, existing, client, options, started);

  // One request: sign-in, this PC, the workspace (made if new), the lease, HEAD and the cache key.
  const preferences = await home.readDevicePreferences();
  let gather: PcLoginResponse;
  try {
    gather = await signIn(client, options, () =>
      client.pcLogin({
        username: options.user,
        password: options.password,
        device: {
          machineId: home.machineId(),
          name: options.deviceName,
          os: `${platform()} ${release()}`,
          agentVersion: AGENT_VERSION,
        },
        workspace: options.workspace,
        takeOver: options.takeOver,
        cacheKey: preferences.keepCache,
      }),
    );
  } catch (error) {
    if (error instanceof ApiError && error.code === 'lease_held') {
      const holder = holderOf(error);
      throw new AgentError(
        `workspace "${options.workspace}" is in use on ${holder ? `"${holder.name}" since ${holder.since}` : 'another PC'}; ` +
          'log out there, or use --take-over (that PC keeps its unsynced changes as a conflict version)',
        EXIT.inUse,
      );
    }
    throw error;
  }
  const { device, workspace, lease, head } = gather;
  helpers.gathered?.(gather);
  let namespace: SessionRecord['namespace'];
  let daemon: StartedDaemon | undefined;
  try {
    const policy = policyOfWorkspace(workspace.name, workspace.policy);
    const gathered = performance.now();
    // Made while the server answered: kept if it is what the answer names, else made again.
    const prepared = await ahead.early.layers;
    ahead.early.layers = undefined; // this login's to keep or discard now
    const kept = prepared && preparedFor(prepared, gather) ? prepared : undefined;
    namespace = kept?.namespace; // closed below if the login fails from here
    if (!kept) {
      if (prepared) await discardLayers(prepared);
      // What a login cut short left behind (no session record was written) is not anyone's work.
      await home.wipeSession();
      await mkdir(home.sessionDir, { recursive: true, mode: 0o700 });
    }
    // Started now, the daemon loads while the workspace is restored; it waits for session.json.
    daemon = helpers.daemon ? helpers.daemon() : spawnDaemon(home, { early: true });
    let repo: LocalRepository;
    let fetched = { objects: 0, bytes: 0, fileBytes: kept?.fileBytes ?? 0 };
    let fetchedAt = performance.now();
    let layers: RestoredLayers;
    if (kept) {
      repo = kept.repo;
      layers = kept;
    } else {
      repo = await LocalRepository.open(home.objectsDir);
      if (gather.cacheKey) await loadCache(home, device.ownerId, gather.cacheKey, repo);
      // Whether the version fits where its layers go is known from its trees, before any chunk.
      if (head)
        fetched = await fetchFromServer(client, workspace.id, repo, head.rootTree, options.quiet, {
          checkFileBytes: (bytes) => {
            requireLayersRoom(home, preferences.layers, bytes);
          },
        });
      fetchedAt = performance.now();
      const progress = new Progress('restoring', 'bytes', process.stderr, options.quiet);
      const restoring = restoreWorkspace(home, repo, head?.rootTree, policy, options.user, {
        // A builder the head start took went with what it made.
        builder: ahead.isolated ? (ahead.takeBuilder() ?? prepareBuilder()) : undefined,
        // In memory unless this PC says otherwise or the image is big for it (layers.ts).
        place: requireLayersRoom(home, preferences.layers, fetched.fileBytes),
        onProgress: (bytes) => {
          progress.update(bytes, fetched.fileBytes);
        },
      });
      layers = await restoring.finally(() => {
        progress.done();
      });
    }
    namespace = layers.namespace;
    const { workspaceDir, owner, restored } = layers;
    const materialized = performance.now();
    const ownership = owner ? { sessionUid: owner.uid, sessionGid: owner.gid } : {};
    // The daemon's snapshot cache. It takes a file for the image's only if its size and mtime are
    // the image's, so it may run while the session's programs start: a file they change is not
    // taken for the one restored.
    const primed = (async () => {
      await repo.writeHeld(); // the cache's objects, read from memory so far
      const cache = head
        ? await primeSnapshotCache(repo, head.rootTree, workspaceDir, {
            chunker: head.chunker ?? DEFAULT_CHUNKER,
            openBeneath: folderOpener(),
            ...ownership,
          })
        : undefined;
      // Not waited onto the disk: without it after a crash, the daemon reads every file once.
      if (cache) await writeFileAtomic(home.snapshotCacheFile, JSON.stringify(cache.toJSON()), false);
    })().finally(() => {
      repo.close();
    });
    primed.catch(() => undefined); // awaited below, or by the service
    const session: SessionRecord = {
      v: 1,
      id: newSessionId(),
      mode: 'server',
      startedAt: new Date().toISOString(),
      workspace: { id: workspace.id, name: workspace.name },
      path: workspaceDir,
      committed: { versionId: head?.id ?? null, root: head?.rootTree ?? '' },
      policy: { ...policyDocument(policy) },
      ...(namespace ? { namespace } : {}),
      server: {
        url: options.server,
        token: client.token ?? '',
        userId: device.ownerId,
        username: options.user,
        deviceId: device.id,
        fencingToken: lease.fencingToken,
        leaseTtlMs: Date.parse(lease.expiresAt) - Date.parse(lease.renewedAt),
      },
    };
    // A daemon the login started itself begins once the session is written: its store is whole by then.
    if (!helpers.superviseDaemon) await repo.writeHeld();
    await home.writeSession(session);
    const mounted = performance.now();
    // The daemon starts on the session once its snapshot cache is written.
    const begun = daemon;
    const answered = primed.then(
      () => {
        begun.begin();
        return begun.answer();
      },
      (error: unknown) => {
        begun.kill();
        throw error;
      },
    );
    if (helpers.superviseDaemon) {
      // Its pid is on record at once: a command run before it answers waits for it, not for a new one.
      const record = JSON.stringify({ pid: daemon.pid, socket: home.socketPath }) + '\n';
      await writeFileAtomic(home.daemonFile, record, false); // a pid means nothing after a restart
      helpers.superviseDaemon(answered);
    } else {
      // Waited for: once login returns, every change is written through (the daemon is watching).
      await answered;
    }
    const ready = performance.now();
    return {
      session: session.id,
      workspace: session.workspace,
      version: session.committed.versionId,
      path: session.path,
      home: namespace?.home ?? homeOf(session),
      isolation: namespace ? 'namespace' : 'none',
      ...(namespace ? { enter: enterRecipe(namespace, session) } : {}),
      resumed: false,
      ...(kept ? { headStart: true } : {}),
      fetched,
      restored,
      timings: {
        totalMs: ms(ready - started),
        gatherMs: ms(gathered - started),
        fetchMs: ms(fetchedAt - gathered),
        materializeMs: ms(materialized - fetchedAt),
        mountMs: ms(mounted - materialized),
        desktopMs: ms(ready - mounted),
      },
    };
  } catch (error) {
    // Nothing was handed to the user yet: give the workspace back and leave the PC as it was.
    daemon?.kill();
    if (namespace) await closeNamespace({ namespace }).catch(() => undefined);
    await client.releaseLease(workspace.id, device.id, lease.fencingToken).catch(() => undefined);
    await home.wipeSession();
    throw error;
  }
}

/** The workspace's policy for a login, or why the workspace cannot be opened with it. */
export function policyOfWorkspace(name: string, override: unknown): EffectivePolicy {
  try {
    return workspacePolicy(overrideApplies(override) ? override : null);
  } catch (error) {
    if (!(error instanceof AgentError)) throw error;
    throw new AgentError(
      `workspace "${name}" cannot be opened: ${error.message}\n` +
        `(upc policy set FILE --workspace "${name}" replaces it; upc policy reset --workspace "${name}" removes it)`,
    );
  }
}

/**
 * Signs in with `request`; an answer that is not the API's own says the URL is not a uPC server
 * (or one older than this agent, without the request).
 */
async function signIn<T>(client: UpcClient, options: LoginOptions, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    const foreign =
      (error instanceof ApiError && !error.problem.type && error.status !== 401 && error.status !== 429) ||
      error instanceof SyntaxError ||
      (error as { name?: string }).name === 'ZodError';
    if (foreign) {
      throw new AgentError(
        `${options.server} does not answer like a uPC server (${error instanceof ApiError ? `HTTP ${String(error.status)}` : 'not the expected answer'}); check UPC_SERVER or --server`,
        EXIT.unreachable,
      );
    }
    if (error instanceof ApiError && error.status === 404) {
      throw new AgentError(
        `${options.server} is a uPC server older than this agent (it has no /auth/pc-login); update the server`,
        EXIT.unreachable,
      );
    }
    throw error;
  }
}

/** Whether a session on this PC is the one a login asks for (its user and workspace, on a server). */
function sameLogin(session: SessionRecord, options: LoginOptions): boolean {
  return (
    session.mode === 'server' &&
    session.server?.username === options.user &&
    session.workspace.name === options.workspace
  );
}

async function resume(
  home: AgentHome,
  session: SessionRecord,
  client: UpcClient,
  options: LoginOptions,
  started: number,
): Promise<LoginReport> {
  if (!sameLogin(session, options) || !session.server) {
    throw new AgentError(
      `this PC already has a session (${session.server?.username ?? session.file ?? '?'}, workspace "${session.workspace.name}"); run upc logout first`,
      EXIT.inUse,
    );
  }
  session.server.token = client.token ?? session.server.token;
  await home.writeSession(session);
  const gathered = performance.now();
  const status = await ensureDaemon(home);
  await callDaemon(home, 'POST', '/reload').catch(() => undefined);
  const ready = performance.now();
  return {
    session: session.id,
    workspace: session.workspace,
    version: status.version,
    path: session.path,
    home: session.namespace?.home ?? homeOf(session),
    isolation: session.namespace ? 'namespace' : 'none',
    resumed: true,
    fetched: { objects: 0, bytes: 0, fileBytes: 0 },
    restored: { entries: 0, bytes: 0 },
    timings: {
      totalMs: ms(ready - started),
      gatherMs: ms(gathered - started),
      fetchMs: 0,
      materializeMs: 0,
      mountMs: 0,
      desktopMs: ms(ready - gathered),
    },
  };
}

/** The command that starts a program in the isolated session as its user (see `LoginReport`). */
function enterRecipe(ns: NamespaceRecord, session: SessionRecord): NonNullable<LoginReport['enter']> {
  return {
    ...enterCommand(ns, { uid: ns.uid, gid: ns.gid, cwd: ns.home }),
    env: sessionEnvironment(ns, false, session),
  };
}

/**
 * The image's root folders that hold only forwarded layers (`home`, `opt`, `usr-local` by default),
 * none of which an overlay is made from.
 */
function forwardedRoots(policy: Policy, user: string): string[] {
  const saved = layers(policy, { user });
  const rootOf = (name: string) => name.split('/')[0] ?? name;
  const overlaid = new Set(
    saved.filter((layer) => layer.kind !== 'forward').map((layer) => rootOf(layer.name)),
  );
  return [
    ...new Set(saved.filter((layer) => layer.kind === 'forward').map((layer) => rootOf(layer.name))),
  ].filter((name) => !overlaid.has(name));
}

function ms(value: number): number {
  return Math.round(value * 10) / 10;
}

/** What the daemon says about the session (`upc status --json`). */
export interface DaemonStatus {
  pid: number;
  session: string;
  mode: 'server' | 'file';
  workspace: { id: string; name: string };
  version: string | null;
  root: string;
  path: string;
  state: string;
  pendingChanges: number;
  pendingBytes: number;
  lastSync: string | null;
  lastError: string | null;
  offlineSince: string | null;
  conflict?: { holder: string; since: string; lastVersionId: string | null };
  safeToLeave: boolean;
  /** The `recovery` version the daemon committed when it took over from one that died. */
  recovered: string | null;
  /** An upload under way: stored bytes sent and to send. */
  uploading: { done: number; total: number } | null;
  error?: string;
  versionId?: string | null;
  committed?: boolean;
}

/**
 * A request that may take long (sync, stop): while it runs, the daemon's upload progress is shown
 * (a bar on a terminal, plain lines otherwise).
 */
export async function callDaemonWithProgress(
  home: AgentHome,
  path: string,
  body: unknown,
  quiet: boolean,
): Promise<{ status: number; body: DaemonStatus }> {
  const progress = new Progress('uploading', 'bytes', process.stderr, quiet);
  const stop = new AbortController();
  const watch = (async () => {
    for (;;) {
      // Aborted as soon as the answer is in, so the command does not wait out a poll interval.
      await sleep(300, undefined, { signal: stop.signal });
      const status = await callDaemon(home, 'GET', '/status', undefined, 5000).catch(() => undefined);
      const uploading = status?.body.uploading;
      if (uploading && !stop.signal.aborted) progress.update(uploading.done, uploading.total);
    }
  })().catch(() => undefined);
  try {
    return await callDaemon(home, 'POST', path, body);
  } finally {
    stop.abort();
    await watch;
    progress.done();
  }
}

/** A request to the session's daemon; its answers carry the status, plus a result or an error. */
export async function callDaemon(
  home: AgentHome,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs?: number,
): Promise<{ status: number; body: DaemonStatus }> {
  const answer = await callSocket(home.socketPath, method, path, body, timeoutMs);
  return { status: answer.status, body: answer.body as DaemonStatus };
}

const DAEMON = fileURLToPath(new URL('./daemon.js', import.meta.url));

/** The daemon's environment: this command's, without the password it may have been given. */
function daemonEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.UPC_PASSWORD;
  return env;
}

/** A daemon process started; `answer` waits until it serves its socket. */
export interface StartedDaemon {
  /** Its process id (0 if it could not be started). */
  readonly pid: number;
  /** The session is written: a spare daemon starts on it now (an early one finds it alone). */
  begin(): void;
  /**
   * `loading` its code, `waiting` for a session (a spare, loaded), `running`, or `ended`.
   */
  state(): 'loading' | 'waiting' | 'running' | 'ended';
  answer(): Promise<DaemonStatus>;
  /** Ends it (a login that failed after starting it early). */
  kill(): void;
}

/**
 * Spawns the session's daemon. With `early`, it is spawned before the session exists: it loads its
 * code while the login restores, and goes on once session.json appears (a login's last step).
 */
export function spawnDaemon(
  home: AgentHome,
  options: { recover?: boolean; early?: boolean; spare?: boolean } = {},
): StartedDaemon {
  // A spare outlives sessions, so it cannot write to one's folder until it is given one.
  const logFile = options.spare ? home.serviceLog : home.daemonLog;
  const log = openSync(logFile, 'a', 0o600);
  const flags = [
    ...(options.recover ? ['--recover'] : []),
    ...(options.early ? ['--await-session'] : []),
    ...(options.spare ? ['--spare'] : []),
  ];
  const child = spawn(process.execPath, [DAEMON, home.dir, ...flags], {
    detached: true,
    stdio: options.spare ? ['pipe', 'pipe', log] : ['ignore', log, log],
    env: daemonEnvironment(),
  });
  closeSync(log);
  child.stdin?.on('error', () => undefined); // a spare that died is found by answer()
  const started = { exited: false, loaded: false, begun: !options.spare };
  child.once('exit', () => {
    started.exited = true;
  });
  child.stdout?.once('data', () => {
    started.loaded = true;
  });
  child.unref();
  return {
    pid: child.pid ?? 0,
    begin: () => {
      started.begun = true;
      child.stdin?.end('begin\n');
      child.stdout?.destroy(); // the session's daemon now: its pipes must not hold the service
    },
    state: () => {
      if (started.exited) return 'ended';
      if (started.begun) return 'running';
      return started.loaded ? 'waiting' : 'loading';
    },
    kill: () => {
      child.kill('SIGKILL');
    },
    answer: async () => {
      for (let waited = 0; waited < 30_000; waited += 15) {
        if (started.exited) {
          const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-5);
          throw new AgentError(`the session daemon failed to start:\n${tail.join('\n')}`);
        }
        try {
          return (await callDaemon(home, 'GET', '/status', undefined, 5000)).body;
        } catch (error) {
          if (!(error instanceof DaemonUnreachable)) throw error;
        }
        await sleep(15); // each poll is one connect
      }
      throw new AgentError('the session daemon did not start within 30 s; see ' + home.daemonLog);
    },
  };
}

/** Starts the session's daemon and waits until it answers. */
export function startDaemon(home: AgentHome, recover: boolean): Promise<DaemonStatus> {
  return spawnDaemon(home, { recover }).answer();
}

/** Whether the process runs; an exited one not yet reaped by its parent (a zombie) does not. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): signal 0 is all we have
  }
}

/** Whether the session's daemon runs (answering or still starting), from its pid in daemon.json. */
export async function daemonRunning(home: AgentHome): Promise<boolean> {
  const record = await readFile(home.daemonFile, 'utf8')
    .then((text) => JSON.parse(text) as { pid: number })
    .catch(() => undefined);
  return record !== undefined && alive(record.pid);
}

/**
 * The daemon's status, starting it if it is not running. A daemon that died (killed, a crash, a
 * power cut) is replaced by one that first commits what the session's files hold beyond the last
 * committed version as a `recovery` version; this call waits for that.
 */
export async function ensureDaemon(home: AgentHome): Promise<DaemonStatus> {
  try {
    return (await callDaemon(home, 'GET', '/status', undefined, 30_000)).body;
  } catch (error) {
    if (!(error instanceof DaemonUnreachable)) throw error;
  }
  const previous = await readFile(home.daemonFile, 'utf8')
    .then((text) => JSON.parse(text) as { pid: number })
    .catch(() => undefined);
  if (previous && alive(previous.pid)) {
    // Starting up: its socket is not there yet.
    for (let waited = 0; waited < 30_000; waited += 25) {
      await sleep(25);
      try {
        return (await callDaemon(home, 'GET', '/status', undefined, 30_000)).body;
      } catch (error) {
        if (!(error instanceof DaemonUnreachable)) throw error;
      }
    }
  }
  await startDaemon(home, true);
  const recovered = await callDaemon(home, 'POST', '/sync');
  if (recovered.body.recovered) {
    process.stderr.write(
      `upc: the session's previous daemon stopped unexpectedly; its unsaved changes are now version ${recovered.body.recovered} (recovery)\n`,
    );
  }
  return recovered.body;
}

/** A sync the daemon could not make durable, said plainly. */
export function notDurable(status: number, body: DaemonStatus): AgentError {
  if (status === 401) {
    return new AgentError(
      'your sign-in has expired or was revoked; run upc login again (your changes are kept on this PC)',
      EXIT.denied,
    );
  }
  if (status === 503) {
    return new AgentError(
      `not durable yet: the server cannot be reached (${body.error ?? 'no answer'}); your changes are kept on this PC and sent when it is back`,
      EXIT.unreachable,
    );
  }
  return new AgentError(
    `not durable yet: ${body.error ?? 'unknown error'}; your changes are kept on this PC`,
  );
}

/**
 * The version a session ended at, as the cache records it; undefined when the store does not hold
 * all of it (nothing to restore from the cache alone) or it is empty.
 */
async function cachedHead(home: AgentHome, session: SessionRecord): Promise<CachedHead | undefined> {
  const { versionId, root } = session.committed;
  if (root === '') return undefined;
  const repo = await LocalRepository.open(home.objectsDir);
  try {
    const { fileBytes } = await fetchVersion(repo, root, () =>
      Promise.reject(new Error('not in the local store')),
    );
    return { workspaceId: session.workspace.id, versionId, root, fileBytes };
  } catch {
    return undefined;
  } finally {
    repo.close();
  }
}

/** Moves a folder, also from memory to disk (a copy that keeps everything, then a removal). */
async function moveFolder(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
  }
  // cp -a keeps what Node's copy does not: overlay whiteouts (devices), owners, links as they are.
  const copy = spawnSync('cp', ['-a', '--', from, to], { encoding: 'utf8' });
  if (copy.status !== 0) {
    await rm(to, { recursive: true, force: true });
    throw new AgentError(
      `cannot keep the session's files in ${to}: ${copy.stderr.trim() || copy.error?.message || 'cp failed'}`,
    );
  }
  await rm(from, { recursive: true, force: true });
}

export interface LogoutReport {
  session: string;
  workspace: { id: string; name: string };
  version: string | null;
  kind: 'logout' | 'conflict';
  kept: string | null;
  timings: { syncMs: number; totalMs: number };
}

/**
 * Logs out: the daemon makes everything durable and commits a `logout` version; only then is the
 * lease released and the local copy wiped (or kept with `keepLocal`). If the changes cannot be
 * made durable, nothing is wiped and the session goes on.
 */
export async function logout(
  home: AgentHome,
  options: { keepLocal: boolean; quiet?: boolean; waitMs?: number },
): Promise<LogoutReport> {
  const started = performance.now();
  const session = await home.requireSession();
  // The session's programs end first: nothing writes after the final snapshot.
  await closeNamespace(session);
  await ensureDaemon(home);
  const stop = await callDaemonWithProgress(
    home,
    '/stop',
    { logout: true, waitMs: options.waitMs ?? 0 },
    options.quiet === true,
  );
  if (stop.status !== 200) {
    const reason = notDurable(stop.status, stop.body);
    throw new AgentError(
      `cannot log out: ${reason.message}. Nothing was wiped: your files stay in ${session.path} ` +
        'and the session keeps syncing; run upc logout again once that is fixed',
      reason.exitCode,
    );
  }
  const synced = performance.now();
  const daemonPid = stop.body.pid;
  for (let waited = 0; waited < 15_000 && alive(daemonPid); waited += 50) await sleep(50);
  const current = (await home.readSession()) ?? session;
  let kept: string | null = null;
  if (options.keepLocal && !existsSync(current.path)) {
    // In memory and the PC restarted: what they held is in the logout version, nothing to keep here.
    if (options.quiet !== true)
      process.stderr.write(`upc: nothing kept on this PC: the session's files are gone (${current.path})\n`);
  } else if (options.keepLocal) {
    kept = join(
      home.dir,
      'kept',
      `${current.workspace.name}-${new Date().toISOString().replace(/[:.]/g, '-')}`,
    );
    await mkdir(join(kept, '..'), { recursive: true, mode: 0o700 });
    await moveFolder(current.path, kept);
  }
  if (current.mode === 'server' && current.server) {
    const client = new UpcClient({ baseUrl: current.server.url, token: current.server.token });
    const preferences = await home.readDevicePreferences();
    if (preferences.keepCache) {
      const { key } = await client.deviceCacheKey(current.server.deviceId);
      // The version it ends at goes with it: where this session did not end (a conflict, a
      // version of another PC's since), the next login's head start finds it is not HEAD.
      await saveCache(home, current.server.userId, key, await cachedHead(home, current));
    }
    if (!current.conflict) {
      await client
        .releaseLease(current.workspace.id, current.server.deviceId, current.server.fencingToken)
        .catch(() => undefined); // it expires by itself; the logout version is what matters
    }
    await client.logout().catch(() => undefined);
  }
  await home.wipeSession();
  return {
    session: current.id,
    workspace: current.workspace,
    version: stop.body.versionId ?? current.committed.versionId,
    kind: current.conflict ? 'conflict' : 'logout',
    kept,
    timings: { syncMs: ms(synced - started), totalMs: ms(performance.now() - started) },
  };
}
