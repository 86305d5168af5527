// @ts-check
/**
 * Session login benchmark (issue 5). Run it with `npm run bench:session`, which builds first.
 *
 * As in agent.bench.js, everything runs against a real server process started here on loopback
 * (the built server with embedded PostgreSQL and the filesystem store in a temporary UPC_DATA_DIR),
 * through the real `upc` command. The PC is an agent home (UPC_HOME) of its own; the sessions are
 * isolated (UPC_ISOLATION=namespace: the run fails if the driver cannot build the namespaces), so
 * it must run on Linux as root.
 *
 * 0. Seed: the PC logs in (empty workspace); inside the session, as the workspace's user, a node
 *    script writes a profile of PROFILE_FILES files totalling PROFILE_BYTES into the home folder;
 *    as the workspace's root, a program goes into /opt/app and /etc gets a new file and a changed
 *    one. Then `upc sync`, `upc device keep-cache on` and `upc logout` (which keeps the encrypted
 *    object cache, so the next login fetches nothing: "warm").
 * 1. RUNS warm logins, each: `upc login --json` (its Table-1 timings and wall time), then at once
 *    `upc exec -- true`, the first command run inside the session. "Login → shell ready" is from
 *    spawning `upc login` to the end of that `upc exec`; the `upc exec` is also timed alone. Then
 *    `upc logout --json` (its wall time) and a check that the session's init and daemon are gone.
 *    Between runs, the floors: `node -e 0`, `upc --version`, a fresh Node process's first request
 *    to the server (`fetch` of /api/v1/health), and one sign-in request from this (warm) process.
 * 2. One cold login on a fresh UPC_HOME (no cache) for comparison, timed the same way.
 * The profile, /opt and /etc are read back inside the session after the seed, in the last warm
 * session and in the cold one, and must match.
 *
 * RUNS comes from UPC_BENCH_RUNS (default 15). Everything lives in one temporary folder removed at
 * the end; every `upc` command, session (its init, killed with SIGKILL if a logout did not end it),
 * daemon and the server (with its PostgreSQL) is stopped whatever happens, also on the deadline and
 * on Ctrl-C. Figures go to stdout as tables and to test-results/bench-session.json; the run exits
 * non-zero if a login was not isolated or not warm, the profile did not come back as written, or a
 * session outlived its logout.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, realpath, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { UpcClient } from '@upc/protocol';
import {
  describeMachine,
  envNumber,
  isAlive,
  killGroup,
  loadAverage,
  log,
  postmasterPid,
  quantile,
  Random,
  round,
  runBench,
  sleep,
  startServerProcess,
  stopPid,
  stopServers,
  table,
  daemonLogTails,
} from './harness.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SERVER_MAIN = join(ROOT, 'apps/server/dist/main.js');
const UPC = join(ROOT, 'apps/agent/bin/upc.js');
const RESULT_FILE = join(ROOT, 'test-results/bench-session.json');

const KiB = 1024;
const MiB = 1024 * KiB;

/** Which sources were measured: the commit, and whether apps/, libs/ or driver/ differ from it. */
function sources() {
  /** @param {string[]} args */
  const git = (args) => {
    try {
      return execFileSync('git', args, {
        cwd: ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      return null;
    }
  };
  const status = git(['status', '--porcelain', '--untracked-files=no', '--', 'apps', 'libs', 'driver']);
  return {
    commit: git(['rev-parse', 'HEAD']),
    changedFiles: status === null ? null : status.split('\n').filter(Boolean).length,
  };
}

const RUNS = Math.max(1, envNumber('UPC_BENCH_RUNS', 15));
const DEADLINE_MS = 10 * 60_000;

const PROFILE_FILES = 300;
const PROFILE_BYTES = 5 * MiB;
const PROFILE_SIZES = { min: 512, max: 64 * KiB };
const FILES_PER_FOLDER = 30;
/** The profile's folder in the user's home. */
const PROFILE_DIR = 'bench-profile';
const USER = 'bench';
/** The paper's Table 1 (uPC player, 2010): login, ms. */
const PAPER = { registryHiveMs: 736, kernelDriverMs: 270, desktopMs: 10, totalMs: 1016 };
const GOAL_SHELL_READY_P50_MS = 100;

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const COMMAND_TIMEOUT_MS = 120_000;
const GONE_TIMEOUT_MS = 5_000;

/**
 * @typedef {{ name: string, home: string, env: Record<string, string> }} Pc
 * @typedef {{ code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string,
 *   ms: number }} Run
 * @typedef {{ totalMs: number, gatherMs: number, fetchMs: number, materializeMs: number,
 *   mountMs: number, desktopMs: number }} LoginTimings
 * @typedef {{ init: number, initStart: string, claim: string, buildMs: number }} Namespace
 * @typedef {{ pc: string, loginWallMs: number, timings: LoginTimings, builderMs: number | null,
 *   execWallMs: number, shellReadyMs: number, logoutWallMs: number, logoutSyncMs: number,
 *   logoutTotalMs: number, fetchedObjects: number, fetchedBytes: number, restoredEntries: number,
 *   restoredBytes: number, rootTree: string | null }} SessionRun
 * @typedef {{ nodeMs: number, versionMs: number, firstRequestMs: number, signInMs: number }} Floor
 * @typedef {{ n: number, p50: number, p90: number, min: number, max: number }} Stats
 */

/** `upc` and other commands running now. */
const children = new Set(/** @type {import('node:child_process').ChildProcess[]} */ ([]));
/** Every agent home made here, so that cleanup can find their sessions and daemons. */
const pcs = /** @type {Pc[]} */ ([]);
let workDir = /** @type {string | undefined} */ (undefined);
/** Where the PCs' agent homes are. */
let pcDir = /** @type {string | undefined} */ (undefined);
/** @type {import('./harness.js').ServerProcess | undefined} */
let server;
let serverUrl = '';
let password = '';
let aborted = false;

function checkAborted() {
  if (aborted) throw new Error('aborted');
}

/**
 * @param {(number | null)[]} values
 * @returns {Stats}
 */
function stats(values) {
  const sorted = values.filter((v) => v !== null).sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    min: sorted[0] ?? NaN,
    max: sorted.at(-1) ?? NaN,
  };
}

// ---------------------------------------------------------------------------------------------
// Processes

/**
 * Runs a program in a process group of its own (so that cleanup can end it with whatever it
 * started) and times it from spawn to exit.
 * @param {string[]} argv
 * @param {{ env?: Record<string, string>, input?: string }} [options]
 * @returns {Promise<Run>}
 */
function run(argv, options = {}) {
  checkAborted();
  const [program, ...args] = /** @type {[string, ...string[]]} */ (argv);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(program, args, {
      env: options.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    children.add(child);
    const timer = setTimeout(() => {
      if (child.pid !== undefined) killGroup(child.pid);
    }, COMMAND_TIMEOUT_MS);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += String(chunk)));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += String(chunk)));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const ms = performance.now() - started;
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, ms });
    });
    child.stdin.on('error', () => undefined); // a program that exits without reading its input
    child.stdin.end(options.input ?? '');
  });
}

/** @param {string} name */
async function newPc(name) {
  if (!pcDir) throw new Error('no work folder');
  const home = join(pcDir, `pc-${name}`);
  await mkdir(home, { recursive: true, mode: 0o700 });
  /** @type {Pc} */
  const pc = {
    name,
    home,
    env: { UPC_HOME: home, UPC_DEVICE_NAME: `bench-${name}`, UPC_ISOLATION: 'namespace' },
  };
  pcs.push(pc);
  return pc;
}

/**
 * `upc ARGS` for a PC, timed from spawn to exit.
 * @param {Pc} pc
 * @param {string[]} args
 * @param {string} [input]
 */
function upc(pc, args, input) {
  return run([process.execPath, UPC, ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: pc.home, UPC_SERVER: serverUrl, ...pc.env },
    input,
  });
}

/**
 * `upc ARGS`, which must succeed.
 * @param {Pc} pc
 * @param {string[]} args
 * @param {string} [input]
 */
async function upcOk(pc, args, input) {
  const result = await upc(pc, args, input);
  if (result.code !== 0) {
    throw new Error(
      `upc ${args.join(' ')} on ${pc.name} exited ${String(result.code ?? result.signal)}: ${result.stderr}${result.stdout}`,
    );
  }
  return result;
}

/**
 * `upc ARGS --json`, which must succeed; its output parsed.
 * @param {Pc} pc
 * @param {string[]} args
 * @param {string} [input]
 */
async function upcJson(pc, args, input) {
  const result = await upcOk(pc, [...args, '--json'], input);
  return { ms: result.ms, body: /** @type {Record<string, any>} */ (JSON.parse(result.stdout)) };
}

/**
 * What the PC's session files say: its namespaces (session.json) and its daemon (daemon.json).
 * @param {Pc} pc
 */
async function sessionOf(pc) {
  /** @param {string} name */
  const read = async (name) => {
    try {
      return /** @type {Record<string, any>} */ (
        JSON.parse(await readFile(join(pc.home, 'session', name), 'utf8'))
      );
    } catch {
      return undefined;
    }
  };
  const session = await read('session.json');
  const daemon = await read('daemon.json');
  return {
    root:
      typeof session?.committed?.root === 'string' ? /** @type {string} */ (session.committed.root) : null,
    namespace: /** @type {Namespace | undefined} */ (session?.namespace),
    daemon: typeof daemon?.pid === 'number' ? /** @type {number} */ (daemon.pid) : undefined,
  };
}

/**
 * A live process's start time (field 22 of /proc/PID/stat), as the driver records it; undefined
 * once it has ended (a zombie has ended).
 * @param {number} pid
 */
async function startTimeOf(pid) {
  const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8').catch(() => '');
  if (stat === '') return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[0] === 'Z' || fields[0] === 'X' ? undefined : fields[19];
}

/** @param {Namespace} ns whether the session's init is still the process that was recorded */
const initRunning = async (ns) => (await startTimeOf(ns.init)) === ns.initStart;

/** @param {number} pid whether it is a session daemon of this run, still running */
async function daemonRunning(pid) {
  if ((await startTimeOf(pid)) === undefined) return false;
  const cmdline = await readFile(`/proc/${String(pid)}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('daemon.js') && pcDir !== undefined && cmdline.includes(pcDir);
}

/**
 * Whether the session's init and daemon have ended, waiting up to GONE_TIMEOUT_MS for them.
 * @param {{ namespace: Namespace | undefined, daemon: number | undefined }} session
 */
async function ended(session) {
  const deadline = Date.now() + GONE_TIMEOUT_MS;
  for (;;) {
    const left = [];
    if (session.namespace && (await initRunning(session.namespace))) left.push(session.namespace.init);
    if (session.daemon !== undefined && (await daemonRunning(session.daemon))) left.push(session.daemon);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(50);
  }
}

/**
 * Ends whatever is left of a PC's session without its server: SIGKILL to its init (every process
 * inside goes with it, and its mounts with its namespaces) and to its daemon; then what the driver
 * would release at logout: its id-range claim and staging folder, if they are this session's.
 * @param {Pc} pc
 */
async function killSession(pc) {
  const { namespace, daemon } = await sessionOf(pc);
  if (namespace && (await initRunning(namespace))) {
    try {
      process.kill(namespace.init, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (daemon !== undefined && (await daemonRunning(daemon))) {
    try {
      process.kill(daemon, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (!namespace) return;
  for (let waited = 0; waited < GONE_TIMEOUT_MS && (await initRunning(namespace)); waited += 50) {
    await sleep(50);
  }
  const claim = await readFile(namespace.claim, 'utf8').catch(() => '');
  /** @type {{ sessionDir?: string }} */
  let record = {};
  try {
    record = JSON.parse(claim);
  } catch {
    return;
  }
  if (pcDir === undefined || !record.sessionDir?.startsWith(pc.home)) return;
  const stage = join(
    namespace.claim,
    '..',
    '..',
    'stage',
    namespace.claim.slice(namespace.claim.lastIndexOf('-') + 1),
  );
  await rm(stage, { recursive: true, force: true });
  await rm(namespace.claim, { force: true });
}

// ---------------------------------------------------------------------------------------------
// The profile, written and read back inside the session

/** Writes files under ~/DIR: argv is DIR, a seed, then one size per file. */
const WRITE_PROFILE = `
const { createCipheriv, createHash } = require('node:crypto');
const { mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const [dir, seed, ...sizes] = process.argv.slice(1);
sizes.forEach((size, i) => {
  const folder = join(process.env.HOME, dir, 'd' + String(Math.floor(i / ${String(FILES_PER_FOLDER)})).padStart(2, '0'));
  mkdirSync(folder, { recursive: true });
  const key = createHash('sha256').update(seed + ':' + String(i)).digest();
  const content = createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(Number(size)));
  writeFileSync(join(folder, 'f' + String(i).padStart(4, '0') + '.bin'), content);
});
`;

/** Prints what the session holds: the profile (count, bytes, digest), /opt/app and /etc's changes. */
const READ_PROFILE = `
const { createHash } = require('node:crypto');
const { readdirSync, readFileSync, statSync } = require('node:fs');
const { join } = require('node:path');
const digest = createHash('sha256');
let files = 0;
let bytes = 0;
const walk = (root, dir, each) => {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stats = statSync(path);
    if (stats.isDirectory()) walk(root, path, each);
    else each(path.slice(root.length), stats, readFileSync(path));
  }
};
const home = join(process.env.HOME, process.argv[1]);
walk(home, home, (path, stats, content) => {
  files++;
  bytes += content.length;
  digest.update(path + '\\0' + String(content.length) + '\\0').update(createHash('sha256').update(content).digest());
});
const opt = [];
walk('/opt/app', '/opt/app', (path, stats, content) => {
  opt.push([path, (stats.mode & 0o7777).toString(8), createHash('sha256').update(content).digest('hex')]);
});
const conf = readFileSync('/etc/upc-bench.conf', 'utf8');
const hosts = readFileSync('/etc/hosts', 'utf8').includes('upc-bench.internal');
console.log(JSON.stringify({ files, bytes, digest: digest.digest('hex'), opt, conf, hosts }));
`;

/** As the workspace's root: a program in /opt/app, a new file in /etc and a changed one. */
const INSTALL = [
  'set -e',
  'mkdir -p /opt/app/bin /opt/app/share',
  'cp /bin/ls /opt/app/bin/ls',
  "printf '#!/bin/sh\\necho hello from /opt/app\\n' > /opt/app/bin/hello",
  'chmod 755 /opt/app/bin/hello',
  'head -c 262144 /dev/urandom > /opt/app/share/data.bin',
  "echo 'greeting=hello' > /etc/upc-bench.conf",
  "echo '127.0.0.1 upc-bench.internal' >> /etc/hosts",
].join('\n');

/** The profile's file sizes: PROFILE_FILES sizes, uniform in their logarithm, adding up to PROFILE_BYTES. */
function profileSizes() {
  const random = new Random('upc-bench-session', 'profile');
  const raw = Array.from({ length: PROFILE_FILES }, () =>
    random.logUniform(PROFILE_SIZES.min, PROFILE_SIZES.max),
  );
  const scale = PROFILE_BYTES / raw.reduce((a, b) => a + b, 0);
  const sizes = raw.map((size) => Math.max(1, Math.floor(size * scale)));
  sizes[0] = (sizes[0] ?? 0) + PROFILE_BYTES - sizes.reduce((a, b) => a + b, 0);
  return sizes;
}

/**
 * What the session holds, read inside it as the user; and that the program in /opt runs.
 * @param {Pc} pc
 */
async function readBack(pc) {
  const read = await upcOk(pc, ['exec', '--', 'node', '-e', READ_PROFILE, PROFILE_DIR]);
  const hello = await upcOk(pc, ['exec', '--', '/opt/app/bin/hello']);
  return { ...JSON.parse(read.stdout), hello: hello.stdout.trim() };
}

// ---------------------------------------------------------------------------------------------
// Logins

/**
 * `upc login --json`, at once `upc exec -- true`, then `upc logout --json`; checks that the
 * session was isolated and that it ended.
 * @param {Pc} pc
 * @param {string[]} problems
 * @param {(pc: Pc) => Promise<void>} [beforeLogout] runs in the session, after the timed part
 * @returns {Promise<SessionRun>}
 */
async function session(pc, problems, beforeLogout) {
  const started = performance.now();
  const login = await upcJson(pc, ['login', '--user', USER, '--password-stdin'], `${password}\n`);
  const exec = await upcOk(pc, ['exec', '--', 'true']);
  const shellReady = performance.now() - started;
  if (login.body.isolation !== 'namespace') {
    throw new Error(`the login on ${pc.name} was not isolated (isolation: ${String(login.body.isolation)})`);
  }
  const current = await sessionOf(pc);
  if (!current.namespace) throw new Error(`the session on ${pc.name} has no namespaces in session.json`);
  if (beforeLogout) await beforeLogout(pc);
  const logout = await upcJson(pc, ['logout']);
  const left = await ended(current);
  if (left.length > 0) problems.push(`${pc.name}: still running after logout: ${left.join(', ')}`);
  const t = /** @type {LoginTimings} */ (login.body.timings);
  return {
    pc: pc.name,
    loginWallMs: round(login.ms),
    timings: {
      totalMs: t.totalMs,
      gatherMs: t.gatherMs,
      fetchMs: t.fetchMs,
      materializeMs: t.materializeMs,
      mountMs: t.mountMs,
      desktopMs: t.desktopMs,
    },
    builderMs: typeof current.namespace.buildMs === 'number' ? current.namespace.buildMs : null,
    rootTree: current.root,
    execWallMs: round(exec.ms),
    shellReadyMs: round(shellReady),
    logoutWallMs: round(logout.ms),
    logoutSyncMs: logout.body.timings.syncMs,
    logoutTotalMs: logout.body.timings.totalMs,
    fetchedObjects: login.body.fetched.objects,
    fetchedBytes: login.body.fetched.bytes,
    restoredEntries: login.body.restored.entries,
    restoredBytes: login.body.restored.bytes,
  };
}

// ---------------------------------------------------------------------------------------------
// Logins through the resident service (upc service), as a login manager makes them

/**
 * One request on a Unix socket, JSON both ways.
 * @param {string} socketPath
 * @param {'GET' | 'POST'} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<{ status: number, body: Record<string, any> }>}
 */
function ask(socketPath, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, timeout: COMMAND_TIMEOUT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk) => (text += String(chunk)));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer from ${socketPath}`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/**
 * Starts `upc service ARGS` for the PC and waits until its spares (builder, daemon) are ready.
 * @param {Pc} pc
 * @param {string[]} [args]
 */
async function startService(pc, args = []) {
  checkAborted();
  const child = spawn(process.execPath, [UPC, 'service', ...args], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: pc.home, UPC_SERVER: serverUrl, ...pc.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.add(child);
  let said = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => (said += String(chunk)));
  child.stderr.setEncoding('utf8').on('data', (chunk) => (said += String(chunk)));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const socket = join(pc.home, 'service.sock');
  await sparesReady(socket, () => said);
  return {
    socket,
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(STOP_TIMEOUT_MS)]);
      children.delete(child);
    },
  };
}

/**
 * Waits until the service's spares are ready, as they are for a login after the PC sat idle.
 * @param {string} socket
 * @param {() => string} [said] what the service printed, for the error
 */
async function sparesReady(socket, said = () => '') {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    checkAborted();
    const status = await ask(socket, 'GET', '/status').catch(() => undefined);
    if (status?.body.spares?.builder === 'waiting' && status.body.spares.daemon === 'waiting') return;
    if (Date.now() > deadline) throw new Error(`upc service did not get ready: ${said()}`);
    await sleep(50);
  }
}

/**
 * A login through the service's socket from this (resident) process, then at once the user's first
 * program, `true`, through the login's `enter` command: what a login manager does. Then
 * `upc logout --json`; checks that the session ended.
 * @param {Pc} pc
 * @param {string} socket
 * @param {string[]} problems
 */
async function serviceSession(pc, socket, problems) {
  // Someone logs in a while after the last logout, not at once: the spares are loaded by then.
  await sparesReady(socket);
  await sleep(1000);
  const started = performance.now();
  const login = await ask(socket, 'POST', '/login', {
    server: serverUrl,
    user: USER,
    password,
    deviceName: pc.env.UPC_DEVICE_NAME,
  });
  const answered = performance.now() - started;
  if (login.status !== 200) throw new Error(`the service's login failed: ${JSON.stringify(login.body)}`);
  const enter = /** @type {{ file: string, args: string[], env: Record<string, string> }} */ (
    login.body.enter
  );
  const first = await run([enter.file, ...enter.args, 'true'], { env: enter.env });
  const shellReady = performance.now() - started;
  if (first.code !== 0)
    throw new Error(`the first program in the session exited ${String(first.code)}: ${first.stderr}`);
  const current = await sessionOf(pc);
  const logout = await upcJson(pc, ['logout']);
  const left = await ended(current);
  if (left.length > 0) problems.push(`${pc.name} (service): still running after logout: ${left.join(', ')}`);
  const t = /** @type {LoginTimings} */ (login.body.timings);
  return {
    answeredMs: round(answered),
    enterMs: round(first.ms),
    shellReadyMs: round(shellReady),
    timings: t,
    builderMs: typeof current.namespace?.buildMs === 'number' ? current.namespace.buildMs : null,
    fetchedObjects: /** @type {number} */ (login.body.fetched.objects),
    headStart: login.body.headStart === true,
    logoutWallMs: round(logout.ms),
  };
}

/**
 * The floors: starting Node, starting the CLI, a fresh process's first request to the server, and
 * a sign-in request from this warm process.
 * @returns {Promise<Floor>}
 */
async function floor() {
  const node = await run([process.execPath, '-e', '0']);
  const version = await run([process.execPath, UPC, '--version']);
  const first = await run([
    process.execPath,
    '--input-type=module',
    '-e',
    'const res = await fetch(process.argv[1]); await res.text(); process.exit(res.ok ? 0 : 1);',
    `${serverUrl}/api/v1/health`,
  ]);
  for (const [what, result] of /** @type {const} */ ([
    ['node -e 0', node],
    ['upc --version', version],
    ['the first request', first],
  ])) {
    if (result.code !== 0) throw new Error(`${what} exited ${String(result.code)}: ${result.stderr}`);
  }
  const client = new UpcClient({ baseUrl: serverUrl });
  const t = performance.now();
  await client.login(USER, password);
  const signIn = performance.now() - t;
  await client.logout().catch(() => undefined);
  return {
    nodeMs: round(node.ms),
    versionMs: round(version.ms),
    firstRequestMs: round(first.ms),
    signInMs: round(signIn),
  };
}

async function runSessions() {
  const loadAverageAtStart = loadAverage();
  for (const file of [SERVER_MAIN, UPC]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run "npm run build" first`);
  }
  if (process.platform !== 'linux' || process.getuid?.() !== 0) {
    throw new Error('isolated sessions need Linux and root: run this bench as root on Linux');
  }
  workDir = await mkdtemp(join(tmpdir(), 'upc-bench-session-'));
  // The PCs' agent homes where an agent keeps its own (the default UPC_HOME is ~/.upc), not in
  // /tmp: on the VM this was measured on, creating files under /tmp is about ten times slower than
  // elsewhere on the same disk (docs/benchmarks.md). UPC_BENCH_DIR picks another place.
  pcDir = await mkdtemp(join(process.env.UPC_BENCH_DIR ?? homedir(), '.upc-bench-session-'));
  // As root the embedded PostgreSQL runs as `postgres`, which must traverse into the data folder.
  await chmod(workDir, 0o711);
  const dataDir = join(workDir, 'server');
  await mkdir(dataDir, { mode: 0o711 });
  const adminPassword = randomBytes(18).toString('base64url');
  password = randomBytes(18).toString('base64url');
  server = await startServerProcess({
    root: ROOT,
    dataDir,
    adminPassword,
    timeoutMs: START_TIMEOUT_MS,
    stopTimeoutMs: STOP_TIMEOUT_MS,
    onAbortCheck: checkAborted,
  });
  serverUrl = server.url;
  log(`server ready in ${String(server.readyMs)} ms at ${serverUrl}`);
  const admin = new UpcClient({ baseUrl: serverUrl });
  await admin.login('admin', adminPassword);
  await admin.createUser({ username: USER, password, role: 'user' });
  await admin.logout().catch(() => undefined);
  /** @type {string[]} */
  const problems = [];

  // 0. Seed
  const pc = await newPc('warm');
  const seedLogin = await upcJson(pc, ['login', '--user', USER, '--password-stdin'], `${password}\n`);
  if (seedLogin.body.isolation !== 'namespace') {
    throw new Error(`the seed's login was not isolated (isolation: ${String(seedLogin.body.isolation)})`);
  }
  const sizes = profileSizes();
  log(`seed: writing ${String(sizes.length)} files, ${String(PROFILE_BYTES / MiB)} MiB inside the session`);
  const written = await upcOk(pc, [
    'exec',
    '--',
    'node',
    '-e',
    WRITE_PROFILE,
    PROFILE_DIR,
    'upc-bench-session',
    ...sizes.map(String),
  ]);
  const installed = await upcOk(pc, ['exec', '--admin', '--', 'sh', '-c', INSTALL]);
  const expected = await readBack(pc);
  if (expected.files !== PROFILE_FILES || expected.bytes !== PROFILE_BYTES) {
    throw new Error(
      `the seed wrote ${String(expected.files)} files, ${String(expected.bytes)} bytes, not ${String(PROFILE_FILES)}, ${String(PROFILE_BYTES)}`,
    );
  }
  const synced = await upcJson(pc, ['sync']);
  await upcOk(pc, ['device', 'keep-cache', 'on']);
  const seedSession = await sessionOf(pc);
  const seedLogout = await upcJson(pc, ['logout']);
  const seedLeft = await ended(seedSession);
  if (seedLeft.length > 0) problems.push(`seed: still running after logout: ${seedLeft.join(', ')}`);
  log(
    `seed: written in ${String(Math.round(written.ms))} ms, /opt and /etc in ${String(Math.round(installed.ms))} ms, ` +
      `upc sync ${String(Math.round(synced.ms))} ms, logout ${String(Math.round(seedLogout.ms))} ms`,
  );

  /** @param {Record<string, unknown>} got @param {string} what */
  const compare = (got, what) => {
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      problems.push(`${what}: the session does not hold what the seed wrote: ${JSON.stringify(got)}`);
    }
  };

  // 1. Warm logins, with the floors between them
  /** @type {SessionRun[]} */
  const warm = [];
  /** @type {Floor[]} */
  const floors = [];
  for (let i = 1; i <= RUNS; i++) {
    const last = i === RUNS;
    const result = await session(
      pc,
      problems,
      last
        ? async (current) => {
            compare(await readBack(current), `warm login ${String(i)}`);
          }
        : undefined,
    );
    if (result.fetchedObjects > 0) {
      problems.push(`warm login ${String(i)} fetched ${String(result.fetchedObjects)} objects: not warm`);
    }
    warm.push(result);
    floors.push(await floor());
    log(
      `warm ${String(i)}/${String(RUNS)}: login ${String(result.loginWallMs)} ms (reports ${String(result.timings.totalMs)}), ` +
        `exec ${String(result.execWallMs)} ms, shell ready ${String(result.shellReadyMs)} ms, logout ${String(result.logoutWallMs)} ms`,
    );
  }

  // 1b. Warm logins through the resident service, with its head start (the default) and without
  /**
   * @param {string[]} args
   * @param {string} label
   */
  const serviceRuns = async (args, label) => {
    const service = await startService(pc, args);
    /** @type {Awaited<ReturnType<typeof serviceSession>>[]} */
    const results = [];
    try {
      for (let i = 1; i <= RUNS; i++) {
        const result = await serviceSession(pc, service.socket, problems);
        if (result.fetchedObjects > 0) {
          problems.push(
            `service login ${String(i)} (${label}) fetched ${String(result.fetchedObjects)} objects: not warm`,
          );
        }
        results.push(result);
        log(
          `service ${label} ${String(i)}/${String(RUNS)}: answered ${String(result.answeredMs)} ms (reports ${String(result.timings.totalMs)}), ` +
            `first program ${String(result.enterMs)} ms, shell ready ${String(result.shellReadyMs)} ms` +
            (result.headStart ? ' (head start)' : ''),
        );
      }
    } finally {
      await service.stop();
    }
    return results;
  };
  const viaService = await serviceRuns([], 'with head start');
  const withoutHeadStart = await serviceRuns(['--no-head-start'], 'without head start');
  if (viaService.filter((r) => r.headStart).length < RUNS - 1)
    problems.push('the service restored ahead of the server for fewer than all but its first login');

  // 2. One cold login on a fresh PC
  const coldPc = await newPc('cold');
  const cold = await session(coldPc, problems, async (current) => {
    compare(await readBack(current), 'cold login');
  });
  log(`cold: login ${String(cold.loginWallMs)} ms, shell ready ${String(cold.shellReadyMs)} ms`);
  const restored = new Set(
    [...warm, cold].map((r) => `${String(r.restoredEntries)}/${String(r.restoredBytes)}`),
  );
  if (restored.size > 1)
    problems.push(`logins restored different amounts (entries/bytes): ${[...restored].join(', ')}`);

  /** @param {(run: SessionRun) => number | null} get */
  const phase = (get) => ({ warm: stats(warm.map(get)), cold: get(cold) });
  const summary = {
    gatherMs: phase((r) => r.timings.gatherMs),
    fetchMs: phase((r) => r.timings.fetchMs),
    materializeMs: phase((r) => r.timings.materializeMs),
    fetchAndMaterializeMs: phase((r) => round(r.timings.fetchMs + r.timings.materializeMs)),
    mountMs: phase((r) => r.timings.mountMs),
    builderMs: phase((r) => r.builderMs),
    desktopMs: phase((r) => r.timings.desktopMs),
    totalMs: phase((r) => r.timings.totalMs),
    loginWallMs: phase((r) => r.loginWallMs),
    execWallMs: phase((r) => r.execWallMs),
    shellReadyMs: phase((r) => r.shellReadyMs),
    logoutWallMs: phase((r) => r.logoutWallMs),
  };
  const floorSummary = {
    nodeMs: stats(floors.map((f) => f.nodeMs)),
    versionMs: stats(floors.map((f) => f.versionMs)),
    firstRequestMs: stats(floors.map((f) => f.firstRequestMs)),
    signInMs: stats(floors.map((f) => f.signInMs)),
  };
  /**
   * @param {Awaited<ReturnType<typeof serviceSession>>[]} runs
   */
  const serviceSummaryOf = (runs) => {
    /** @param {(run: Awaited<ReturnType<typeof serviceSession>>) => number | null} get */
    const servicePhase = (get) => stats(runs.map(get));
    return {
      gatherMs: servicePhase((r) => r.timings.gatherMs),
      fetchMs: servicePhase((r) => r.timings.fetchMs),
      materializeMs: servicePhase((r) => r.timings.materializeMs),
      mountMs: servicePhase((r) => r.timings.mountMs),
      builderMs: servicePhase((r) => r.builderMs),
      desktopMs: servicePhase((r) => r.timings.desktopMs),
      totalMs: servicePhase((r) => r.timings.totalMs),
      answeredMs: servicePhase((r) => r.answeredMs),
      enterMs: servicePhase((r) => r.enterMs),
      shellReadyMs: servicePhase((r) => r.shellReadyMs),
      logoutWallMs: servicePhase((r) => r.logoutWallMs),
      headStarts: runs.filter((r) => r.headStart).length,
    };
  };
  const serviceSummary = serviceSummaryOf(viaService);
  const shellReadyP50 = serviceSummary.shellReadyMs.p50;
  return {
    date: new Date().toISOString(),
    machine: describeMachine(loadAverageAtStart),
    sources: sources(),
    setup:
      'real server process (embedded PostgreSQL + filesystem store) and real upc processes on loopback; ' +
      'sessions isolated (UPC_ISOLATION=namespace)',
    profile: {
      homeFiles: expected.files,
      homeBytes: expected.bytes,
      opt: expected.opt.length,
      etc: ['/etc/upc-bench.conf (new)', '/etc/hosts (changed)'],
      restoredEntries: cold.restoredEntries,
      restoredBytes: cold.restoredBytes,
      coldFetchedObjects: cold.fetchedObjects,
      coldFetchedBytes: cold.fetchedBytes,
    },
    seed: {
      writeWallMs: round(written.ms),
      installWallMs: round(installed.ms),
      syncWallMs: round(synced.ms),
      logoutWallMs: round(seedLogout.ms),
      serverReadyMs: server.readyMs,
    },
    paper: PAPER,
    goal: {
      what: `warm login → shell ready, p50 ≤ ${String(GOAL_SHELL_READY_P50_MS)} ms (through the PC's service, as a login manager logs in)`,
      p50Ms: shellReadyP50,
      met: shellReadyP50 <= GOAL_SHELL_READY_P50_MS,
      commandsP50Ms: summary.shellReadyMs.warm.p50,
    },
    summary,
    service: serviceSummary,
    serviceWithoutHeadStart: serviceSummaryOf(withoutHeadStart),
    floors: floorSummary,
    runs: { warm, service: viaService, serviceWithoutHeadStart: withoutHeadStart, cold, floors },
    problems,
  };
}

/** @param {Awaited<ReturnType<typeof runSessions>>} report */
function print(report) {
  const { machine, profile, summary, floors, service } = report;
  const ms = (/** @type {number | null} */ v) => (v === null || Number.isNaN(v) ? '-' : Math.round(v));
  /**
   * @param {string} label
   * @param {string} paper
   * @param {{ warm: Stats, cold: number | null }} p
   */
  const row = (label, paper, p) => [
    label,
    paper,
    ms(p.warm.p50),
    ms(p.warm.p90),
    ms(p.warm.min),
    ms(p.warm.max),
    ms(p.cold),
  ];
  /** @param {string} label @param {Stats} s */
  const floorRow = (label, s) => [label, ms(s.p50), ms(s.p90), ms(s.min), ms(s.max)];
  const lines = [
    '',
    `uPC session login benchmark — ${String(machine.cpus)} × ${machine.cpuModel}, ${machine.os}, Node ${machine.node} ` +
      `(1-min load average ${String(machine.loadAverageAtStart)} at start, ${String(machine.loadAverageAtEnd)} at end)`,
    `profile: ${String(profile.homeFiles)} files, ${(profile.homeBytes / MiB).toFixed(1)} MiB in the home folder, ` +
      `${String(profile.opt)} files in /opt/app, 2 in /etc; a login restores ${String(profile.restoredEntries)} entries, ` +
      `${(profile.restoredBytes / MiB).toFixed(1)} MiB (cold: ${String(profile.coldFetchedObjects)} objects fetched)`,
    `sources: commit ${report.sources.commit ?? '?'}` +
      (report.sources.changedFiles
        ? ` with ${String(report.sources.changedFiles)} files changed under apps/, libs/, driver/`
        : ''),
    '',
    `Login, isolated (${String(summary.totalMs.warm.n)} warm logins and 1 cold; ms)`,
    table(
      [
        ['phase', 'paper 2010', 'warm p50', 'p90', 'min', 'max', 'cold'],
        row('gather: sign-in, PC, lease, HEAD', '-', summary.gatherMs),
        row('fetch + materialize', '736 registry hive loading', summary.fetchAndMaterializeMs),
        row('  fetch', '', summary.fetchMs),
        row('  materialize', '', summary.materializeMs),
        row('mount: snapshot cache, namespaces', '270 kernel driver', summary.mountMs),
        row('  the builder (namespaces)', '', summary.builderMs),
        row('desktop: sync daemon answering', '10 desktop', summary.desktopMs),
        row('total, as upc login reports it', '1,016 total', summary.totalMs),
        row('upc login, wall time', '-', summary.loginWallMs),
        row('upc exec -- true, wall time', '-', summary.execWallMs),
        row('login → shell ready', '-', summary.shellReadyMs),
        row('upc logout, wall time', '-', summary.logoutWallMs),
      ],
      2,
    ),
    '',
    `Login through the PC's service, from a resident process (${String(service.totalMs.n)} warm logins each; ms). ` +
      `With its head start, ${String(service.headStarts)} were restored while the server answered`,
    table(
      [
        ['phase', 'p50', 'p90', 'min', 'max', 'without head start: p50', 'p90'],
        .../** @type {[string, keyof typeof service][]} */ ([
          ['gather', 'gatherMs'],
          ['fetch', 'fetchMs'],
          ['materialize', 'materializeMs'],
          ['mount', 'mountMs'],
          ['  the builder (namespaces)', 'builderMs'],
          ['desktop: sync daemon answering', 'desktopMs'],
          ['total, as the login reports it', 'totalMs'],
          ['login answered', 'answeredMs'],
          ['first program (`true`) in the session', 'enterMs'],
          ['login → shell ready', 'shellReadyMs'],
          ['upc logout, wall time', 'logoutWallMs'],
        ]).map(([label, key]) => {
          const withIt = /** @type {Stats} */ (service[key]);
          const without = /** @type {Stats} */ (report.serviceWithoutHeadStart[key]);
          return [...floorRow(label, withIt), ms(without.p50), ms(without.p90)];
        }),
      ],
      1,
    ),
    '',
    `Goal: ${report.goal.what}: ${report.goal.met ? 'met' : 'not met'} (p50 ${String(ms(report.goal.p50Ms))} ms; ` +
      `through the upc commands ${String(ms(report.goal.commandsP50Ms))} ms)`,
    '',
    `Floors (${String(floors.nodeMs.n)} each; ms)`,
    table(
      [
        ['what', 'p50', 'p90', 'min', 'max'],
        floorRow('node -e 0', floors.nodeMs),
        floorRow('upc --version', floors.versionMs),
        floorRow('fresh node process: start + one fetch', floors.firstRequestMs),
        floorRow('sign-in request from a warm process', floors.signInMs),
      ],
      1,
    ),
    '',
    `JSON: ${RESULT_FILE}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

/** Ends every command and session, then the server and its PostgreSQL; removes the folder. */
async function cleanup() {
  for (const child of children) if (child.pid !== undefined) killGroup(child.pid);
  for (const pc of pcs) await killSession(pc).catch(() => undefined);
  // Layers kept in memory live outside the PC's folder (AgentHome.memoryLayersDir).
  for (const pc of pcs) {
    const real = await realpath(pc.home).catch(() => pc.home);
    const id = createHash('sha256').update(real).digest('hex').slice(0, 16);
    await rm(join('/dev/shm', `upc-layers-${id}`), { recursive: true, force: true });
  }
  server = undefined;
  await stopServers();
  if (workDir) {
    const postmaster = await postmasterPid(join(workDir, 'server'));
    if (postmaster !== undefined && isAlive(postmaster)) await stopPid(postmaster);
    await rm(workDir, { recursive: true, force: true, maxRetries: 3 });
  }
  if (pcDir) {
    await rm(pcDir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/**
 * `runSessions`, with what the server and the daemons last said added to a failure's message.
 * @returns {ReturnType<typeof runSessions>}
 */
async function runExplained() {
  try {
    return await runSessions();
  } catch (error) {
    if (aborted) throw error;
    const lines = [error instanceof Error ? error.message : String(error)];
    if (server) {
      lines.push(
        `server (${server.exit ? `exited: ${String(server.exit.code ?? server.exit.signal)}` : 'running'}), last lines:`,
        server.tail(),
      );
    }
    lines.push(...(await daemonLogTails(pcs)));
    throw new Error(lines.join('\n'));
  }
}

await runBench({
  deadlineMs: DEADLINE_MS,
  deadlineText: `${String(DEADLINE_MS / 60_000)} minutes`,
  resultFile: RESULT_FILE,
  run: runExplained,
  print,
  cleanup,
  onAbort: () => {
    aborted = true;
  },
});
