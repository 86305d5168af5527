// @ts-check
/**
 * Agent benchmark (issue 4). Run it with `npm run bench:agent`, which builds first.
 *
 * Everything runs against a real server process started here on loopback, as in server.bench.js:
 * the built server (`apps/server/dist/main.js`) with embedded PostgreSQL and the filesystem object
 * store in a temporary UPC_DATA_DIR. Each "PC" is an agent home (UPC_HOME) of its own, driven
 * through the real `upc` command (`apps/agent/bin/upc.js`), whose daemons are real processes.
 *
 * 0. Seed: a PC logs in (empty workspace), writes FILES files totalling BYTES into the session's
 *    home folder while its daemon runs (many small files of 1–64 KiB in nested folders, and one in
 *    200 a large file of 1–32 MiB; random, so incompressible), runs `upc sync` and logs out.
 * 1. Login → ready, from `upc login --json`: its Table-1 timings (gather, fetch, materialize,
 *    mount, desktop) and the command's wall time; then, outside the command, when the daemon's
 *    watcher is ready (its log) and when the daemon is first idle (its status: the first full
 *    scan done). Cold: RUNS logins, each on a fresh UPC_HOME, each followed by a logout (which
 *    wipes). Warm: one PC with `upc device keep-cache on` logs in and out once to fill its
 *    encrypted cache, then RUNS more logins, each after a logout that kept the cache.
 * 2. Change → durable, in the last warm session: CHANGES small files (100 B – 4 KiB) written one at
 *    a time into a new folder, (a) paced every PACE_MS regardless of the agent, then (b) SEQUENTIAL
 *    more, each written once the previous one is durable (the session's journal names a newer
 *    version). After both, every version committed meanwhile is read from the server
 *    (listVersions), its tree walked to the folder, and each file mapped to the first version
 *    that holds it. "Durable" is that version's createdAt: the server's clock (PostgreSQL now(),
 *    the start of the transaction that inserts the version and moves HEAD, committed a few ms
 *    later); a second figure is when the agent knew (the daemon's "committed" log line, written
 *    after the commit's answer and the session journal's fsync). Both against the file's write
 *    start (Date.now() just before writeFile); same machine, same clock.
 * 3. Logout after changes: in that session, `upc device keep-cache off` (the default, a full wipe),
 *    CHANGED_BEFORE_LOGOUT small files rewritten and a new LOGOUT_NEW_FILE_BYTES file, then
 *    `upc logout --json` at once: its timings and wall time. Every other logout is reported too.
 *
 * Sizes come from UPC_BENCH_FILES, UPC_BENCH_BYTES, UPC_BENCH_RUNS, UPC_BENCH_CHANGES,
 * UPC_BENCH_SEQUENTIAL and UPC_BENCH_PACE_MS for quick runs. Everything lives in one temporary
 * folder removed at the end; every daemon, `upc` command and the server (with its PostgreSQL) is
 * stopped whatever happens, also on the deadline and on Ctrl-C. Figures go to stdout as tables and
 * to test-results/bench-agent.json; the run exits non-zero if a restore did not give back the
 * workspace's bytes, a change never reached the server or a daemon outlived its logout. When a
 * step fails, the error carries the server's and the daemons' last log lines.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearInterval, setInterval } from 'node:timers';
import { decodeObject, decodeTree } from '@upc/image';
import { UpcClient } from '@upc/protocol';
import {
  describeMachine,
  envNumber,
  httpGet,
  isAlive,
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
const RESULT_FILE = join(ROOT, 'test-results/bench-agent.json');

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

const FILES = envNumber('UPC_BENCH_FILES', 20_000);
const BYTES = envNumber('UPC_BENCH_BYTES', GiB);
const RUNS = Math.max(1, envNumber('UPC_BENCH_RUNS', 3));
const CHANGES = envNumber('UPC_BENCH_CHANGES', 1000);
const SEQUENTIAL = envNumber('UPC_BENCH_SEQUENTIAL', 1000);
const PACE_MS = Math.max(1, envNumber('UPC_BENCH_PACE_MS', 30));
const DEADLINE_MS = 20 * 60_000;

/** One file in LARGE_EVERY is large. */
const LARGE_EVERY = 200;
const SMALL_SIZES = { min: 1 * KiB, max: 64 * KiB };
const LARGE_SIZES = { min: 1 * MiB, max: 32 * MiB };
const CHANGE_SIZES = { min: 100, max: 4 * KiB };
const FILES_PER_FOLDER = 100;
const FOLDERS_PER_GROUP = 10;
const CHANGE_FOLDER = 'bench-changes';
const CHANGED_BEFORE_LOGOUT = 100;
const LOGOUT_NEW_FILE_BYTES = 16 * MiB;
const GOAL_P99_MS = 1000;
const USER = 'bench';

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const SETTLE_TIMEOUT_MS = 120_000;
const DURABLE_TIMEOUT_MS = 30_000;
const WRITE_CONCURRENCY = 8;
/** USER_HZ, the unit of /proc/<pid>/stat times. */
const CLOCK_TICKS = 100;

/**
 * @typedef {import('./harness.js').ServerProcess} ServerProcess
 * @typedef {{ name: string, home: string, files: string, env: Record<string, string> }} Pc
 * @typedef {{ code: number | null, stdout: string, stderr: string, ms: number,
 *   cpuS: { user: number, system: number } }} UpcRun
 * @typedef {{ path: string, size: number }} PlannedFile
 * @typedef {{ totalMs: number, gatherMs: number, fetchMs: number, materializeMs: number,
 *   mountMs: number, desktopMs: number }} LoginTimings
 * @typedef {{ pc: string, wallMs: number, timings: LoginTimings, fetchedObjects: number,
 *   fetchedBytes: number, restoredEntries: number, restoredBytes: number,
 *   cpuS: { upcUser: number, upcSystem: number, server: number | null, postgres: number | null },
 *   servingMs: number | null, watchingMs: number | null, idleMs: number | null }} LoginRun
 * @typedef {{ pc: string, what: string, wallMs: number, syncMs: number, totalMs: number,
 *   version: string | null }} LogoutRun
 * @typedef {{ name: string, count: number, writtenFrom: number, p50Ms: number, p90Ms: number,
 *   p99Ms: number, maxMs: number, minMs: number, meanMs: number, agentP50Ms: number | null,
 *   agentP99Ms: number | null, agentMaxMs: number | null, versions: number, filesPerVersion: number,
 *   runMs: number, missing: number, daemonCpuPercent: number | null,
 *   serverCpuPercent: number | null }} ChangeResult
 */

/** @type {ServerProcess | undefined} */
let server;
/** `upc` commands running now. */
const children = new Set(/** @type {import('node:child_process').ChildProcess[]} */ ([]));
/** Every agent home made here, so that cleanup can find their daemons. */
const pcs = /** @type {Pc[]} */ ([]);
/** Daemon pids seen, stopped at the end if still there. */
const daemons = new Set(/** @type {number[]} */ ([]));
let workDir = /** @type {string | undefined} */ (undefined);
let aborted = false;

function checkAborted() {
  if (aborted) throw new Error('aborted');
}

/** @param {number[]} values */
const median = (values) =>
  quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  );

// ---------------------------------------------------------------------------------------------
// The server (startServerProcess in harness.js)

/** @param {string} dataDir @param {string} adminPassword */
async function startServer(dataDir, adminPassword) {
  server = await startServerProcess({
    root: ROOT,
    dataDir,
    adminPassword,
    timeoutMs: START_TIMEOUT_MS,
    stopTimeoutMs: STOP_TIMEOUT_MS,
    onAbortCheck: checkAborted,
  });
  return { url: server.url, readyMs: server.readyMs };
}

const serverTail = () => server?.tail() ?? '';

/**
 * SIGINT and wait; then SIGKILL to whatever is left of its group and its PostgreSQL (also a server
 * still starting).
 */
async function stopServer() {
  server = undefined;
  await stopServers();
}

/**
 * Whether the process runs: an exited one its parent has not reaped yet (a zombie; a daemon's
 * parent is init, which may take its time) does not.
 * @param {number} pid
 */
async function isRunning(pid) {
  if (!isAlive(pid)) return false;
  const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8').catch(() => '');
  return stat === '' || stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/**
 * User and system CPU seconds a process has used so far (Linux), or null.
 * @param {number | undefined} pid
 */
async function cpuTimes(pid) {
  if (pid === undefined) return null;
  try {
    const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
  } catch {
    return null;
  }
}

/**
 * User + system CPU seconds a process has used so far (Linux), or null.
 * @param {number | undefined} pid
 */
async function cpuSeconds(pid) {
  const times = await cpuTimes(pid);
  return times === null ? null : times.user + times.system;
}

/**
 * CPU seconds used so far by the server's Node process and by its PostgreSQL (the postmaster, the
 * children it reaped, and its live backends), or null where unknown.
 */
async function serverCpu() {
  const current = server;
  if (!current) return { server: null, postgres: null };
  const postmaster = current.postmaster;
  /** @type {number | null} */
  let postgres = null;
  if (postmaster !== undefined) {
    postgres = 0;
    for (const name of await readdir('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
      if (stat === '') continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(name);
      if (pid === postmaster) {
        // utime, stime, cutime, cstime
        postgres +=
          (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
      } else if (Number(fields[1]) === postmaster) {
        postgres += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
      }
    }
  }
  return { server: await cpuSeconds(current.pid), postgres };
}

// ---------------------------------------------------------------------------------------------
// PCs and the `upc` command

/** @param {string} name */
async function newPc(name) {
  if (!workDir) throw new Error('no work folder');
  const home = join(workDir, `pc-${name}`);
  await mkdir(home, { recursive: true, mode: 0o700 });
  /** @type {Pc} */
  const pc = {
    name,
    home,
    files: join(home, 'session', 'workspace', 'home'),
    // The session as a folder (issue 4's measure: what the home folder holds); bench:session
    // measures isolated sessions.
    env: { UPC_HOME: home, UPC_DEVICE_NAME: `bench-${name}`, UPC_ISOLATION: 'none' },
  };
  pcs.push(pc);
  return pc;
}

/**
 * Runs `upc ARGS` for a PC and times it from spawn to exit.
 * @param {Pc} pc
 * @param {string[]} args
 * @param {string} [input]
 * @returns {Promise<UpcRun>}
 */
function upc(pc, args, input = '') {
  checkAborted();
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [UPC, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: pc.home, UPC_SERVER: serverUrl, ...pc.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    children.add(child);
    // Its CPU time, sampled while it runs (it is gone from /proc once it has exited).
    const sampler = setInterval(() => {
      void cpuTimes(child.pid).then((times) => {
        if (times !== null && times.user + times.system >= cpu.user + cpu.system) cpu = times;
      });
    }, 100);
    let cpu = { user: 0, system: 0 };
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (stdout += String(chunk)));
    child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += String(chunk)));
    child.once('error', reject);
    child.once('close', (code) => {
      clearInterval(sampler);
      children.delete(child);
      resolve({ code, stdout, stderr, ms: performance.now() - started, cpuS: cpu });
    });
    child.stdin.on('error', () => undefined); // a program that exits without reading its input
    child.stdin.end(input);
  });
}

/**
 * `upc ARGS --json`, which must succeed; its output parsed.
 * @param {Pc} pc
 * @param {string[]} args
 * @param {string} [input]
 */
async function upcJson(pc, args, input) {
  const result = await upc(pc, [...args, '--json'], input);
  if (result.code !== 0) {
    throw new Error(
      `upc ${args.join(' ')} on ${pc.name} exited ${String(result.code)}: ${result.stderr}${result.stdout}`,
    );
  }
  return {
    ms: result.ms,
    cpuS: result.cpuS,
    body: /** @type {Record<string, any>} */ (JSON.parse(result.stdout)),
  };
}

/** @param {Pc} pc @param {string[]} args */
async function upcOk(pc, args) {
  const result = await upc(pc, args);
  if (result.code !== 0) {
    throw new Error(`upc ${args.join(' ')} on ${pc.name} exited ${String(result.code)}: ${result.stderr}`);
  }
  return result;
}

let serverUrl = '';
let password = '';

/** @param {Pc} pc */
async function daemonPid(pc) {
  try {
    const { pid } = /** @type {{ pid: number }} */ (
      JSON.parse(await readFile(join(pc.home, 'session', 'daemon.json'), 'utf8'))
    );
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * Logs in and waits until the daemon's watcher is ready and its first full scan done.
 * @param {Pc} pc
 * @returns {Promise<LoginRun>}
 */
async function login(pc) {
  const startedAt = Date.now();
  const cpuBefore = await serverCpu();
  const { ms, cpuS, body } = await upcJson(
    pc,
    ['login', '--user', USER, '--password-stdin'],
    `${password}\n`,
  );
  const cpuAfter = await serverCpu();
  const pid = await daemonPid(pc);
  if (pid !== undefined) daemons.add(pid);
  const settled = await settle(pc, startedAt);
  const t = /** @type {LoginTimings} */ (body.timings);
  return {
    pc: pc.name,
    wallMs: round(ms),
    timings: {
      totalMs: t.totalMs,
      gatherMs: t.gatherMs,
      fetchMs: t.fetchMs,
      materializeMs: t.materializeMs,
      mountMs: t.mountMs,
      desktopMs: t.desktopMs,
    },
    fetchedObjects: body.fetched.objects,
    fetchedBytes: body.fetched.bytes,
    restoredEntries: body.restored.entries,
    restoredBytes: body.restored.bytes,
    cpuS: {
      upcUser: round(cpuS.user),
      upcSystem: round(cpuS.system),
      server: diff(cpuBefore.server, cpuAfter.server),
      postgres: diff(cpuBefore.postgres, cpuAfter.postgres),
    },
    ...settled,
  };
}

/** @param {number | null} a @param {number | null} b */
const diff = (a, b) => (a === null || b === null ? null : round(b - a));

/**
 * After a login begun at `startedAt` (epoch ms): when the daemon logged "serving" (it answers the
 * CLI) and "watching" (its watcher is ready), and when its status was first clean (the full scan
 * that follows done).
 * @param {Pc} pc
 * @param {number} startedAt
 */
async function settle(pc, startedAt) {
  const logFile = join(pc.home, 'session', 'daemon.log');
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  /** @type {number | null} */
  let watchingMs = null;
  /** @type {number | null} */
  let servingMs = null;
  /** @param {string | undefined} line */
  const at = (line) => (line ? Date.parse(line.slice(0, line.indexOf(' '))) - startedAt : null);
  while (Date.now() < deadline) {
    checkAborted();
    const lines = (await readFile(logFile, 'utf8').catch(() => '')).split('\n');
    watchingMs = at(lines.find((l) => / watching /.test(l)));
    servingMs = at(lines.find((l) => /^\S+ daemon \d+ serving /.test(l)));
    if (watchingMs !== null) break;
    await sleep(50);
  }
  if (watchingMs === null) throw new Error(`the daemon of ${pc.name} never said "watching"`);
  const socketPath = join(pc.home, 'session', 'daemon.sock');
  while (Date.now() < deadline) {
    checkAborted();
    const answer = await httpGet({ socketPath, path: '/status' });
    if (answer.status === 200) {
      const status = /** @type {{ state: string, pendingChanges: number }} */ (JSON.parse(answer.body));
      if (status.state === 'clean' && status.pendingChanges === 0) {
        return { servingMs, watchingMs, idleMs: Date.now() - startedAt };
      }
    }
    await sleep(50);
  }
  throw new Error(`the daemon of ${pc.name} was not idle within ${String(SETTLE_TIMEOUT_MS)} ms`);
}

/**
 * @param {Pc} pc
 * @param {string} what
 * @returns {Promise<LogoutRun>}
 */
async function logout(pc, what) {
  const { ms, body } = await upcJson(pc, ['logout']);
  return {
    pc: pc.name,
    what,
    wallMs: round(ms),
    syncMs: body.timings.syncMs,
    totalMs: body.timings.totalMs,
    version: body.version ?? null,
  };
}

// ---------------------------------------------------------------------------------------------
// The workspace

/**
 * The seed's files: one in LARGE_EVERY large, the others small in nested folders, their sizes
 * scaled so that they add up to `bytes`.
 * @param {number} files
 * @param {number} bytes
 * @returns {PlannedFile[]}
 */
function plan(files, bytes) {
  const random = new Random('upc-bench-agent', 'plan');
  const largeCount = files >= LARGE_EVERY ? Math.round(files / LARGE_EVERY) : 0;
  const smallCount = files - largeCount;
  let small = Array.from({ length: smallCount }, () => random.logUniform(SMALL_SIZES.min, SMALL_SIZES.max));
  let smallBytes = small.reduce((a, b) => a + b, 0);
  // A small total (quick runs): small files keep at most 30 % of it.
  const smallBudget = largeCount > 0 ? bytes * 0.3 : bytes;
  if (smallBytes > smallBudget || largeCount === 0) {
    const scale = smallBudget / smallBytes;
    small = small.map((size) => Math.max(1, Math.floor(size * scale)));
    smallBytes = small.reduce((a, b) => a + b, 0);
  }
  const weights = Array.from({ length: largeCount }, () =>
    random.logUniform(LARGE_SIZES.min, LARGE_SIZES.max),
  );
  const weightSum = weights.reduce((a, b) => a + b, 0);
  const largeBytes = Math.max(0, bytes - smallBytes);
  const large = weights.map((w) => Math.floor((w / weightSum) * largeBytes));
  if (large.length > 0) large[0] = (large[0] ?? 0) + largeBytes - large.reduce((a, b) => a + b, 0);
  /** @type {PlannedFile[]} */
  const planned = [];
  small.forEach((size, i) => {
    const folder = Math.floor(i / FILES_PER_FOLDER);
    const group = Math.floor(folder / FOLDERS_PER_GROUP);
    planned.push({
      path: join(
        'data',
        `g${String(group).padStart(3, '0')}`,
        `f${String(folder % FOLDERS_PER_GROUP).padStart(2, '0')}`,
        `s${String(i).padStart(6, '0')}.bin`,
      ),
      size,
    });
  });
  large.forEach((size, i) => {
    planned.push({ path: join('large', `l${String(i).padStart(4, '0')}.bin`), size });
  });
  return planned;
}

/**
 * Writes the planned files under `root`, WRITE_CONCURRENCY at a time.
 * @param {string} root
 * @param {PlannedFile[]} files
 */
async function writeFiles(root, files) {
  const random = new Random('upc-bench-agent', 'content');
  const folders = new Set(files.map((f) => join(root, f.path, '..')));
  for (const folder of folders) await mkdir(folder, { recursive: true });
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      checkAborted();
      const file = /** @type {PlannedFile} */ (files[next++]);
      await writeFile(join(root, file.path), random.bytes(file.size));
    }
  };
  await Promise.all(Array.from({ length: WRITE_CONCURRENCY }, worker));
}

// ---------------------------------------------------------------------------------------------
// Change → durable

/**
 * The versions of the workspace created at or after `since` (epoch ms), oldest first.
 * @param {UpcClient} client
 * @param {string} workspaceId
 * @param {number} since
 */
async function versionsSince(client, workspaceId, since) {
  /** @type {Map<string, import('@upc/protocol').Version>} */
  const found = new Map();
  /** @type {string | undefined} */
  let before;
  for (;;) {
    const page = await client.listVersions(workspaceId, { limit: 500, before });
    let added = 0;
    for (const version of page) {
      if (!found.has(version.id)) {
        found.set(version.id, version);
        added++;
      }
    }
    const oldest = page.at(-1);
    if (!oldest || added === 0 || Date.parse(oldest.createdAt) < since) break;
    // One ms later, so that versions sharing the oldest's millisecond are not skipped.
    before = new Date(Date.parse(oldest.createdAt) + 1).toISOString();
  }
  return [...found.values()]
    .filter((v) => Date.parse(v.createdAt) >= since)
    .sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt));
}

/**
 * The names in the folder at `path` of a version's root tree (empty if it has no such folder).
 * @param {UpcClient} client
 * @param {string} workspaceId
 * @param {string} root
 * @param {string[]} path
 * @param {Map<string, import('@upc/image').Tree>} trees read so far, by id
 */
async function namesAt(client, workspaceId, root, path, trees) {
  let hash = root;
  for (let depth = 0; ; depth++) {
    let tree = trees.get(hash);
    if (!tree) {
      const stored = await client.downloadObject(workspaceId, hash);
      tree = decodeTree(await decodeObject(hash, stored), hash);
      trees.set(hash, tree);
    }
    if (depth === path.length) return tree.entries.map((e) => e.name);
    const entry = tree.entries.find((e) => e.name === path[depth]);
    if (entry?.type !== 'dir') return [];
    hash = entry.tree;
  }
}

/**
 * The daemon's "committed … version ID" lines: version id → epoch ms.
 * @param {Pc} pc
 */
async function committedTimes(pc) {
  const text = await readFile(join(pc.home, 'session', 'daemon.log'), 'utf8');
  /** @type {Map<string, number>} */
  const times = new Map();
  for (const line of text.split('\n')) {
    const match = /^(\S+) committed \S+ version (\S+)/.exec(line);
    if (match?.[1] && match[2]) times.set(match[2], Date.parse(match[1]));
  }
  return times;
}

/** @param {Pc} pc the version the session's journal names as committed */
async function journalVersion(pc) {
  const session = /** @type {{ committed: { versionId: string | null } }} */ (
    JSON.parse(await readFile(join(pc.home, 'session', 'session.json'), 'utf8'))
  );
  return session.committed.versionId;
}

/**
 * Writes `count` small files into the change folder, one at a time: every `paceMs`, or (paceMs
 * null) each once the previous one is durable. Returns each file's name and write start.
 * @param {Pc} pc
 * @param {number} first index of the first file
 * @param {number} count
 * @param {number | null} paceMs
 */
async function writeChanges(pc, first, count, paceMs) {
  const random = new Random('upc-bench-agent', `changes-${String(first)}`);
  const folder = join(pc.files, CHANGE_FOLDER);
  /** @type {{ name: string, at: number }[]} */
  const written = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    checkAborted();
    if (paceMs !== null) {
      const wait = started + i * paceMs - performance.now();
      if (wait > 0) await sleep(wait);
    }
    const name = `c${String(first + i).padStart(6, '0')}.bin`;
    const content = random.bytes(random.logUniform(CHANGE_SIZES.min, CHANGE_SIZES.max));
    const before = paceMs === null ? await journalVersion(pc) : null;
    const at = Date.now();
    await writeFile(join(folder, name), content);
    written.push({ name, at });
    if (paceMs === null) {
      const deadline = Date.now() + DURABLE_TIMEOUT_MS;
      while ((await journalVersion(pc)) === before) {
        checkAborted();
        if (Date.now() > deadline)
          throw new Error(`${name} was not durable within ${String(DURABLE_TIMEOUT_MS)} ms`);
        await sleep(2);
      }
    }
  }
  return { written, runMs: performance.now() - started };
}

/**
 * Maps each written file to the first version holding it and summarizes the delays.
 * @param {string} name
 * @param {{ name: string, at: number }[]} written
 * @param {import('@upc/protocol').Version[]} versions oldest first
 * @param {Map<string, string[]>} namesByVersion
 * @param {Map<string, number>} agentTimes
 * @param {{ runMs: number, daemonCpuPercent: number | null, serverCpuPercent: number | null }} extra
 * @returns {ChangeResult}
 */
function summarize(name, written, versions, namesByVersion, agentTimes, extra) {
  /** @type {Map<string, { created: number, agent: number | undefined, id: string }>} */
  const firstSeen = new Map();
  for (const version of versions) {
    for (const file of namesByVersion.get(version.id) ?? []) {
      if (!firstSeen.has(file)) {
        firstSeen.set(file, {
          created: Date.parse(version.createdAt),
          agent: agentTimes.get(version.id),
          id: version.id,
        });
      }
    }
  }
  const delays = [];
  const agentDelays = [];
  const usedVersions = new Set();
  let missing = 0;
  for (const file of written) {
    const seen = firstSeen.get(file.name);
    if (!seen) {
      missing++;
      continue;
    }
    usedVersions.add(seen.id);
    delays.push(seen.created - file.at);
    if (seen.agent !== undefined) agentDelays.push(seen.agent - file.at);
  }
  delays.sort((a, b) => a - b);
  agentDelays.sort((a, b) => a - b);
  const pick = (/** @type {number[]} */ sorted, /** @type {number} */ q) =>
    sorted.length === 0 ? null : quantile(sorted, q);
  return {
    name,
    count: written.length,
    writtenFrom: written[0]?.at ?? 0,
    p50Ms: quantile(delays, 0.5),
    p90Ms: quantile(delays, 0.9),
    p99Ms: quantile(delays, 0.99),
    maxMs: delays.at(-1) ?? NaN,
    minMs: delays[0] ?? NaN,
    meanMs: round(delays.reduce((a, b) => a + b, 0) / Math.max(1, delays.length)),
    agentP50Ms: pick(agentDelays, 0.5),
    agentP99Ms: pick(agentDelays, 0.99),
    agentMaxMs: agentDelays.at(-1) ?? null,
    versions: usedVersions.size,
    filesPerVersion: round(delays.length / Math.max(1, usedVersions.size)),
    runMs: round(extra.runMs),
    missing,
    daemonCpuPercent: extra.daemonCpuPercent,
    serverCpuPercent: extra.serverCpuPercent,
  };
}

/**
 * CPU used by the daemon and the server (not its PostgreSQL) while `work` runs, as % of one core.
 * @template T
 * @param {number | undefined} daemon
 * @param {() => Promise<T & { runMs: number }>} work
 */
async function withCpu(daemon, work) {
  const serverPid = server?.pid;
  const before = { daemon: await cpuSeconds(daemon), server: await cpuSeconds(serverPid) };
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const after = { daemon: await cpuSeconds(daemon), server: await cpuSeconds(serverPid) };
  const percent = (/** @type {number | null} */ a, /** @type {number | null} */ b) =>
    a === null || b === null ? null : Math.round(((b - a) / seconds) * 100);
  return {
    ...result,
    daemonCpuPercent: percent(before.daemon, after.daemon),
    serverCpuPercent: percent(before.server, after.server),
  };
}

/**
 * The change test in `pc`'s session: paced writes, then sequential ones; then the mapping.
 * @param {Pc} pc
 * @param {UpcClient} client
 * @param {string} workspaceId
 */
async function changeTest(pc, client, workspaceId) {
  await mkdir(join(pc.files, CHANGE_FOLDER));
  await upcOk(pc, ['sync']);
  const since = Date.now();
  const daemon = await daemonPid(pc);
  log(`change → durable: ${String(CHANGES)} files every ${String(PACE_MS)} ms`);
  const paced = await withCpu(daemon, () => writeChanges(pc, 0, CHANGES, PACE_MS));
  await upcOk(pc, ['sync']);
  log(`change → durable: ${String(SEQUENTIAL)} files, each once the previous is durable`);
  const sequential = await withCpu(daemon, () => writeChanges(pc, CHANGES, SEQUENTIAL, null));
  await upcOk(pc, ['sync']);

  const versions = await versionsSince(client, workspaceId, since - 1000);
  /** @type {Map<string, import('@upc/image').Tree>} */
  const trees = new Map();
  /** @type {Map<string, string[]>} */
  const namesByVersion = new Map();
  for (const version of versions) {
    checkAborted();
    namesByVersion.set(
      version.id,
      await namesAt(client, workspaceId, version.rootTree, ['home', CHANGE_FOLDER], trees),
    );
  }
  const agentTimes = await committedTimes(pc);
  return {
    versionsRead: versions.length,
    paced: summarize(
      `every ${String(PACE_MS)} ms`,
      paced.written,
      versions,
      namesByVersion,
      agentTimes,
      paced,
    ),
    sequential: summarize(
      'each after the previous is durable',
      sequential.written,
      versions,
      namesByVersion,
      agentTimes,
      sequential,
    ),
  };
}

// ---------------------------------------------------------------------------------------------

/** @param {LoginRun[]} runs the median of each figure */
function medianLogin(runs) {
  /** @param {(run: LoginRun) => number | null} get */
  const m = (get) => median(runs.map(get).filter((v) => v !== null));
  return {
    runs: runs.length,
    wallMs: m((r) => r.wallMs),
    totalMs: m((r) => r.timings.totalMs),
    gatherMs: m((r) => r.timings.gatherMs),
    fetchMs: m((r) => r.timings.fetchMs),
    materializeMs: m((r) => r.timings.materializeMs),
    mountMs: m((r) => r.timings.mountMs),
    desktopMs: m((r) => r.timings.desktopMs),
    servingMs: m((r) => r.servingMs),
    watchingMs: m((r) => r.watchingMs),
    idleMs: m((r) => r.idleMs),
  };
}

async function run() {
  const loadAverageAtStart = loadAverage();
  for (const file of [SERVER_MAIN, UPC]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run "npm run build" first`);
  }
  workDir = await mkdtemp(join(tmpdir(), 'upc-bench-agent-'));
  // As root the embedded PostgreSQL runs as `postgres`, which must traverse into the data folder.
  if (process.getuid?.() === 0) await chmod(workDir, 0o711);
  const dataDir = join(workDir, 'server');
  await mkdir(dataDir, { mode: 0o711 });
  const adminPassword = randomBytes(18).toString('base64url');
  password = randomBytes(18).toString('base64url');
  const started = await startServer(dataDir, adminPassword);
  serverUrl = started.url;
  log(`server ready in ${String(started.readyMs)} ms at ${serverUrl}`);
  const admin = new UpcClient({ baseUrl: serverUrl });
  await admin.login('admin', adminPassword);
  await admin.createUser({ username: USER, password, role: 'user' });
  const client = new UpcClient({ baseUrl: serverUrl });
  await client.login(USER, password);

  // 0. Seed
  const files = plan(FILES, BYTES);
  const totalBytes = files.reduce((sum, f) => sum + f.size, 0);
  const seed = await newPc('seed');
  await login(seed);
  log(`seed: writing ${String(files.length)} files, ${String(Math.round(totalBytes / MiB))} MiB`);
  const t = performance.now();
  await writeFiles(seed.files, files);
  const writeMs = performance.now() - t;
  log(`seed: written in ${String(Math.round(writeMs))} ms; upc sync`);
  const seedSync = await upcJson(seed, ['sync']);
  log(`seed: synced in ${String(Math.round(seedSync.ms))} ms; logout`);
  const seedLogout = await logout(seed, 'seed, after upc sync');
  const workspace = (await client.listWorkspaces()).find((w) => w.name === 'default');
  if (!workspace?.headVersionId) throw new Error('the seed left no workspace version');
  const problems = [];

  /** @param {LoginRun} run @param {string} what */
  const checkRestore = (run, what) => {
    if (run.restoredBytes !== totalBytes) {
      problems.push(`${what}: restored ${String(run.restoredBytes)} bytes, expected ${String(totalBytes)}`);
    }
  };

  // 1. Cold logins
  /** @type {LoginRun[]} */
  const cold = [];
  /** @type {LogoutRun[]} */
  const logouts = [seedLogout];
  for (let i = 1; i <= RUNS; i++) {
    const pc = await newPc(`cold-${String(i)}`);
    log(`cold login ${String(i)}/${String(RUNS)}`);
    const result = await login(pc);
    checkRestore(result, `cold login ${String(i)}`);
    cold.push(result);
    log(`  ${String(result.timings.totalMs)} ms; logout`);
    logouts.push(await logout(pc, 'no changes, cache off (wipe)'));
  }

  // 1. Warm logins
  const warmPc = await newPc('warm');
  await upcOk(warmPc, ['device', 'keep-cache', 'on']);
  log('warm: first login (fills the cache at logout)');
  const prime = await login(warmPc);
  checkRestore(prime, 'warm PC first login');
  logouts.push(await logout(warmPc, 'no changes, cache on (first save)'));
  /** @type {LoginRun[]} */
  const warm = [];
  for (let i = 1; i <= RUNS; i++) {
    log(`warm login ${String(i)}/${String(RUNS)}`);
    const result = await login(warmPc);
    checkRestore(result, `warm login ${String(i)}`);
    warm.push(result);
    log(`  ${String(result.timings.totalMs)} ms`);
    if (i < RUNS) logouts.push(await logout(warmPc, 'no changes, cache on (kept)'));
  }

  // 2. Change → durable, in the last warm session
  const changes = await changeTest(warmPc, client, workspace.id);
  for (const result of [changes.paced, changes.sequential]) {
    if (result.missing > 0) problems.push(`${result.name}: ${String(result.missing)} files in no version`);
  }

  // 3. Logout after changes, cache off
  await upcOk(warmPc, ['device', 'keep-cache', 'off']);
  const random = new Random('upc-bench-agent', 'before-logout');
  const smallFiles = files.filter((f) => f.path.startsWith('data'));
  for (let i = 0; i < CHANGED_BEFORE_LOGOUT && smallFiles.length > 0; i++) {
    const file = /** @type {PlannedFile} */ (smallFiles[(i * 97) % smallFiles.length]);
    await writeFile(join(warmPc.files, file.path), random.bytes(file.size));
  }
  await writeFile(join(warmPc.files, 'logout-new.bin'), random.bytes(LOGOUT_NEW_FILE_BYTES));
  const afterChanges = await logout(
    warmPc,
    `after changes (${String(CHANGED_BEFORE_LOGOUT)} small files rewritten, ${String(LOGOUT_NEW_FILE_BYTES / MiB)} MiB new), cache off (wipe)`,
  );
  logouts.push(afterChanges);
  const leftovers = [];
  for (const pid of daemons) if (await isRunning(pid)) leftovers.push(pid);
  if (leftovers.length > 0) problems.push(`daemons still running after logout: ${leftovers.join(', ')}`);
  await client.logout().catch(() => undefined);

  return {
    date: new Date().toISOString(),
    machine: describeMachine(loadAverageAtStart),
    setup: 'real server process (embedded PostgreSQL + filesystem store) and real upc processes on loopback',
    workspace: {
      files: files.length,
      bytes: totalBytes,
      smallFiles: files.filter((f) => f.path.startsWith('data')).length,
      largeFiles: files.filter((f) => f.path.startsWith('large')).length,
      largeBytes: files.filter((f) => f.path.startsWith('large')).reduce((sum, f) => sum + f.size, 0),
    },
    seed: {
      writeMs: round(writeMs),
      syncWallMs: round(seedSync.ms),
      serverReadyMs: started.readyMs,
    },
    login: { cold, warm, warmFirst: prime, coldMedian: medianLogin(cold), warmMedian: medianLogin(warm) },
    changes: { ...changes, goalP99Ms: GOAL_P99_MS, paceMs: PACE_MS },
    logout: { afterChanges, all: logouts },
    problems,
  };
}

/** @param {Awaited<ReturnType<typeof run>>} report */
function print(report) {
  const { machine, workspace } = report;
  const c = report.login.coldMedian;
  const w = report.login.warmMedian;
  const ms = (/** @type {number | null} */ v) => (v === null || Number.isNaN(v) ? '-' : Math.round(v));
  const changeRow = (/** @type {ChangeResult} */ r) => [
    r.name,
    r.count,
    ms(r.p50Ms),
    ms(r.p90Ms),
    ms(r.p99Ms),
    ms(r.maxMs),
    ms(r.agentP50Ms),
    ms(r.agentP99Ms),
    r.versions,
    r.filesPerVersion,
    r.daemonCpuPercent === null ? '-' : `${String(r.daemonCpuPercent)} %`,
    r.serverCpuPercent === null ? '-' : `${String(r.serverCpuPercent)} %`,
  ];
  const lines = [
    '',
    `uPC agent benchmark — ${String(machine.cpus)} × ${machine.cpuModel}, ${machine.os}, Node ${machine.node} ` +
      `(1-min load average ${String(machine.loadAverageAtStart)} at start, ${String(machine.loadAverageAtEnd)} at end)`,
    `workspace: ${String(workspace.files)} files, ${(workspace.bytes / MiB).toFixed(1)} MiB ` +
      `(${String(workspace.largeFiles)} large files, ${(workspace.largeBytes / MiB).toFixed(1)} MiB); ` +
      `seed written in ${String(Math.round(report.seed.writeMs))} ms, upc sync ${String(Math.round(report.seed.syncWallMs))} ms`,
    '',
    `Login → ready (median of ${String(c.runs)} cold and ${String(w.runs)} warm; ms)`,
    table(
      [
        [
          'login',
          'total',
          'gather',
          'fetch',
          'materialize',
          'mount',
          'desktop',
          'command',
          'watching',
          'idle',
        ],
        ...[
          ['cold', c],
          ['warm', w],
        ].map(([name, m]) => {
          const x = /** @type {ReturnType<typeof medianLogin>} */ (m);
          return [
            name,
            ms(x.totalMs),
            ms(x.gatherMs),
            ms(x.fetchMs),
            ms(x.materializeMs),
            ms(x.mountMs),
            ms(x.desktopMs),
            ms(x.wallMs),
            ms(x.watchingMs),
            ms(x.idleMs),
          ];
        }),
      ],
      1,
    ),
    '',
    'Each login (ms)',
    table(
      [
        [
          'login',
          'total',
          'gather',
          'fetch',
          'materialize',
          'mount',
          'desktop',
          'command',
          'serving',
          'objects fetched',
          'MiB fetched',
          'CPU s: upc user',
          'upc sys',
          'server',
          'postgres',
        ],
        ...[
          ...report.login.cold.map((r) => /** @type {const} */ ([r.pc, r])),
          /** @type {const} */ (['warm, first (cold)', report.login.warmFirst]),
          ...report.login.warm.map((r, i) => /** @type {const} */ ([`warm-${String(i + 1)}`, r])),
        ].map(([label, r]) => [
          label,
          ms(r.timings.totalMs),
          ms(r.timings.gatherMs),
          ms(r.timings.fetchMs),
          ms(r.timings.materializeMs),
          ms(r.timings.mountMs),
          ms(r.timings.desktopMs),
          ms(r.wallMs),
          ms(r.servingMs),
          r.fetchedObjects,
          (r.fetchedBytes / MiB).toFixed(1),
          r.cpuS.upcUser,
          r.cpuS.upcSystem,
          r.cpuS.server ?? '-',
          r.cpuS.postgres ?? '-',
        ]),
      ],
      1,
    ),
    '',
    `Change → durable (write start → version createdAt on the server; "agent" = the daemon's commit log line; goal p99 ≤ ${String(GOAL_P99_MS)} ms)`,
    table(
      [
        [
          'writes',
          'files',
          'p50',
          'p90',
          'p99',
          'max',
          'agent p50',
          'agent p99',
          'versions',
          'files/version',
          'daemon CPU',
          'server CPU',
        ],
        changeRow(report.changes.paced),
        changeRow(report.changes.sequential),
      ],
      1,
    ),
    '',
    'Logout (ms)',
    table(
      [
        ['pc', 'what', 'sync', 'total', 'command'],
        ...report.logout.all.map((r) => [r.pc, r.what, ms(r.syncMs), ms(r.totalMs), ms(r.wallMs)]),
      ],
      2,
    ),
    '',
    `JSON: ${RESULT_FILE}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

/** Stops every `upc` command and daemon, then the server and its PostgreSQL; removes the folder. */
async function cleanup() {
  for (const child of children) child.kill('SIGKILL');
  for (const pc of pcs) {
    const pid = await daemonPid(pc);
    if (pid !== undefined) daemons.add(pid);
  }
  for (const pid of daemons) {
    const cmdline = await readFile(`/proc/${String(pid)}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes('daemon.js')) continue; // gone, or the pid is someone else's now
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await stopServer();
  if (workDir) {
    const postmaster = await postmasterPid(join(workDir, 'server'));
    if (postmaster !== undefined && isAlive(postmaster)) await stopPid(postmaster);
    await rm(workDir, { recursive: true, force: true, maxRetries: 3 });
  }
}

/**
 * `run`, with what the server and the daemons last said added to a failure's message.
 * @returns {ReturnType<typeof run>}
 */
async function runExplained() {
  try {
    return await run();
  } catch (error) {
    if (aborted) throw error;
    const lines = [error instanceof Error ? error.message : String(error)];
    if (server) {
      lines.push(
        `server (${server.exit ? `exited: ${String(server.exit.code ?? server.exit.signal)}` : 'running'}), last lines:`,
        serverTail(),
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
