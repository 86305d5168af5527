import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  applyHostAccess,
  defaultHostAccess,
  type HostAccess,
  layers,
  pathRules,
  type Policy,
  ruleFor,
} from '@upc/policy';
import {
  claimedSessionDirs,
  claimIds,
  type IdClaim,
  recordInit,
  registryDir,
  releaseIds,
  startTimeOf,
} from './ids.js';
import { type BuildReport, parseReport, READY_LINE, type SessionPlan } from './plan.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** The native helper, built by `npm ci` (scripts/build-helper.mjs). */
export const HELPER = process.env.UPC_NS_HELPER ?? join(HERE, '..', '..', 'build', 'upc-ns');
const BUILDER = join(HERE, 'builder.js');

/** Host secrets no session sees, whatever its policy (see driver/SECURITY.md). */
export const HOST_SECRETS: readonly string[] = [
  '/etc/shadow',
  '/etc/shadow-',
  '/etc/gshadow',
  '/etc/gshadow-',
  '/etc/ssh/ssh_host_*_key',
  '/etc/ssl/private',
];

export class DriverError extends Error {}

/** Whether sessions can be isolated here, and if not, why. */
export function isolationAvailable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'namespaces are a Linux feature' };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'the agent is not running as root' };
  if (!existsSync(HELPER))
    return { ok: false, reason: `the native helper ${HELPER} is not built (npm ci builds it with gcc)` };
  return { ok: true };
}

export interface SessionSpec {
  policy: Policy;
  /** The user's name: `<user>` and `~` in the policy. */
  user: string;
  /** The agent's state folder (hidden from the session). */
  agentHome: string;
  /** The session's folder: `workspace/` holds the layers, named as `layers()` names them. */
  sessionDir: string;
  hostname: string;
  /** What this PC lets the workspace do with its own folders (default: `defaultHostAccess`). */
  access?: HostAccess;
}

/** The policy as this PC applies it, and the rules it left out (each with its reason). */
export function hostView(spec: Pick<SessionSpec, 'policy' | 'access'>): {
  policy: Policy;
  refused: string[];
} {
  return applyHostAccess(spec.policy, spec.access ?? defaultHostAccess('linux'));
}

/** A running session's namespaces, as the agent records them. */
export interface NamespaceSession {
  /** The session's init (pid 1 inside), as the host numbers it, and its start time. */
  init: number;
  initStart: string;
  idBase: number;
  idCount: number;
  /** The id-range claim to release at logout. */
  claim: string;
  warnings: string[];
  /** Time the builder took (mounts and namespaces), ms. */
  buildMs: number;
}

/** The builder's plan for a session: which layer goes where, what starts empty, what is hidden. */
export function planSession(
  spec: SessionSpec,
  ids: { slot: number; base: number; count: number },
): SessionPlan {
  const options = { user: spec.user };
  const { policy } = hostView(spec);
  const access = spec.access ?? defaultHostAccess('linux');
  const home = ruleFor(policy, spec.agentHome, options);
  if (home?.kind === 'forward' || home?.kind === 'cow') {
    throw new DriverError(
      `the agent's state folder ${spec.agentHome} is inside "${home.kind} ${home.path}": a session's root could read ` +
        'it there; keep UPC_HOME outside the saved folders (the default is /root/.upc)',
    );
  }
  const saved = layers(policy, options);
  const rules = pathRules(policy, options);
  const scaffolds: SessionPlan['scaffolds'] = [];
  for (const layer of saved) {
    // The user's home gets a mount point in an otherwise empty /home: this PC may have no such
    // folder, and other people's homes are none of the session's business.
    const parent = dirname(layer.path);
    if (layer.name !== 'home' || parent === '/') continue;
    if (rules.some((rule) => rule.path === parent)) continue;
    scaffolds.push({ target: parent, mountPoints: [layer.path] });
  }
  return {
    helper: HELPER,
    idBase: ids.base,
    idCount: ids.count,
    hostname: spec.hostname,
    sessionDir: spec.sessionDir,
    // Outside every rule's path, so no mount of the session covers it while it is being built.
    stageDir: join(registryDir(), 'stage', String(ids.slot)),
    layers: saved.map((layer, index) => ({
      kind: layer.kind,
      target: layer.path,
      dir: join('workspace', layer.name),
      ...(layer.kind === 'cow' ? { work: join('overlay', String(index)) } : {}),
    })),
    ephemeral: rules.filter((r) => r.kind === 'ephemeral').map((r) => r.path),
    host: rules.filter((r) => r.kind === 'host').map((r) => r.path),
    // Writable where a host rule and a folder the PC lets sessions write to meet.
    writable: rules
      .filter((r) => r.kind === 'host')
      .flatMap((r) =>
        access.writable.flatMap((w) => (under(w, r.path) ? [w] : under(r.path, w) ? [r.path] : [])),
      ),
    scaffolds,
    masks: [...HOST_SECRETS, spec.agentHome, registryDir(), ...claimedSessionDirs()],
  };
}

/**
 * A session builder started ahead of time: its process starts (and loads what it needs) while the
 * agent signs in and restores; `startSession` hands it the plan. Cancel it if no session follows.
 */
export interface PreparedBuilder {
  readonly report: Promise<BuildReport>;
  /**
   * `loading` its code, `waiting` for a plan, `used` (sent one), or `ended` without one (a spare
   * kept for long may have died).
   */
  state(): 'loading' | 'waiting' | 'used' | 'ended';
  send(plan: SessionPlan): void;
  cancel(): void;
}

export function prepareBuilder(): PreparedBuilder {
  // unshare(1): the builder's every thread is in the new mount namespace from its first step.
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', process.execPath, BUILDER], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin.on('error', () => undefined); // a cancelled builder may be gone already
  const report = new Promise<BuildReport>((resolve, reject) => {
    child.once('error', (error) => {
      reject(new DriverError(`cannot start the session builder: ${error.message}`));
    });
    child.once('close', (code) => {
      if (code !== 0) {
        reject(new DriverError(err.trim() || `the session builder failed (exit ${String(code)})`));
        return;
      }
      try {
        resolve(parseReport(JSON.parse(out.slice(out.indexOf('\n') + 1))));
      } catch {
        reject(new DriverError(`the session builder said something unexpected: ${out.slice(0, 200)}`));
      }
    });
  });
  report.catch(() => undefined); // awaited by startSession; a cancelled one is nobody's concern
  let sent = false;
  return {
    report,
    state: () => {
      if (sent) return 'used';
      if (child.exitCode !== null || child.signalCode !== null) return 'ended';
      return out.startsWith(`${READY_LINE}\n`) ? 'waiting' : 'loading';
    },
    send: (plan) => {
      sent = true;
      child.stdin.end(JSON.stringify(plan));
    },
    cancel: () => {
      child.kill('SIGKILL');
    },
  };
}

/**
 * Builds the session's namespaces: claims an id range, runs the builder in a mount namespace of
 * its own, and returns the session's init once it is up. The layers must already be in place.
 */
export async function startSession(
  spec: SessionSpec,
  builder: PreparedBuilder = prepareBuilder(),
): Promise<NamespaceSession> {
  const available = isolationAvailable();
  if (!available.ok) {
    builder.cancel();
    throw new DriverError(`cannot isolate the session: ${available.reason}`);
  }
  let claim: IdClaim;
  try {
    claim = claimIds(spec.sessionDir);
  } catch (error) {
    builder.cancel();
    throw error;
  }
  try {
    const plan = planSession(spec, claim);
    mkdirSync(plan.stageDir, { recursive: true, mode: 0o700 });
    for (const layer of plan.layers) {
      mkdirSync(join(spec.sessionDir, layer.dir), { recursive: true, mode: 0o755 });
      if (layer.work) mkdirSync(join(spec.sessionDir, layer.work), { recursive: true, mode: 0o700 });
    }
    builder.send(plan);
    const report = await builder.report;
    const initStart = startTimeOf(report.init);
    if (initStart === undefined) throw new DriverError('the session ended as soon as it started');
    recordInit(claim, spec.sessionDir, { pid: report.init, start: initStart });
    return {
      init: report.init,
      initStart,
      idBase: claim.base,
      idCount: claim.count,
      claim: claim.file,
      warnings: [...hostView(spec).refused, ...report.warnings],
      buildMs: report.ms,
    };
  } catch (error) {
    builder.cancel();
    rmSync(stageOf(claim.file), { recursive: true, force: true });
    releaseIds(claim.file);
    throw error;
  }
}

/** Whether the session's init is still the process it was. */
export function isRunning(session: NamespaceSession): boolean {
  return startTimeOf(session.init) === session.initStart;
}

export interface EnterOptions {
  argv: string[];
  uid: number;
  gid: number;
  cwd: string;
  env: Record<string, string>;
  stdio?: 'inherit' | 'pipe' | 'ignore';
  /** A long-lived program (a desktop's): a process group of its own, not tied to the caller. */
  detached?: boolean;
}

/**
 * The command that runs a program inside the session (as `uid`:`gid`, ids inside): the native
 * helper and its arguments, the program's argv to be appended. A resident caller (a login
 * manager's session start) runs it without loading any of the agent.
 */
export function enterCommand(
  session: NamespaceSession,
  options: Pick<EnterOptions, 'uid' | 'gid' | 'cwd'>,
): { file: string; args: string[] } {
  return {
    file: HELPER,
    args: ['enter', String(session.init), String(options.uid), String(options.gid), options.cwd, '--'],
  };
}

/** Runs a program inside the session (as `uid`:`gid`, ids inside); the caller waits for it. */
export function enter(session: NamespaceSession, options: EnterOptions): ChildProcess {
  if (!isRunning(session)) throw new DriverError('the session is not running');
  const command = enterCommand(session, options);
  return spawn(command.file, [...command.args, ...options.argv], {
    stdio: options.stdio ?? 'inherit',
    env: options.env,
    detached: options.detached === true,
  });
}

/**
 * Ends the session: every process in it is asked to end, then killed after `graceMs`; its mounts
 * go with its namespaces (they were never on the host's). Releases its id range.
 */
export async function stopSession(session: NamespaceSession, graceMs = 3000): Promise<void> {
  if (isRunning(session)) {
    process.kill(session.init, 'SIGTERM');
    const deadline = Date.now() + graceMs + 1000;
    while (isRunning(session) && Date.now() < deadline) await sleep(20);
    if (isRunning(session)) process.kill(session.init, 'SIGKILL');
    while (isRunning(session)) await sleep(10);
  }
  rmSync(stageOf(session.claim), { recursive: true, force: true });
  releaseIds(session.claim);
}

/** Whether `path` is `folder` or inside it (normalised absolute paths). */
function under(path: string, folder: string): boolean {
  return path === folder || path.startsWith(folder === '/' ? '/' : `${folder}/`);
}

/** The staging folder of a claim (empty on the host: only the builder mounted anything there). */
function stageOf(claim: string): string {
  return join(registryDir(), 'stage', claim.slice(claim.lastIndexOf('-') + 1));
}
