// @ts-check
/**
 * Server benchmark (issue 2). Run it with `npm run bench`, which builds first.
 *
 * 1. Start time: spawns the built server (`apps/server/dist/main.js`) on a fresh temporary
 *    UPC_DATA_DIR (embedded PostgreSQL + filesystem store) and times spawn → first 200 from
 *    GET /api/v1/health. The first start creates the cluster (cold), the second reuses it (warm).
 *    Each run is stopped with SIGINT; the time to exit and the exit code are reported.
 * 2. Throughput: with the warm server up, autocannon drives GET /api/v1/health and
 *    POST /api/v1/workspaces/:id/objects/missing (100 hashes, 50 of them stored).
 *
 * Everything is on loopback, the whole run is bounded by DEADLINE_MS, and every process started
 * here is stopped even when a step fails: the server with its process group, and its PostgreSQL
 * (which runs in a process group of its own) through the cluster's postmaster.pid.
 * Figures go to stdout as a table and to test-results/bench-server.json.
 */
import { spawn } from 'node:child_process';
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { UpcClient } from '@upc/protocol';
import {
  describeMachine,
  freePort,
  isAlive,
  killGroup,
  loadAverage,
  postmasterPid,
  round,
  runBench,
  sleep,
  stopPid,
  table,
  within,
} from './harness.js';

/**
 * The part of autocannon's API used here (it ships no type declarations).
 * @typedef {{ average: number, p50: number, p99: number, total: number }} Stats
 * @typedef {{ requests: Stats, latency: Stats, non2xx: number, errors: number, timeouts: number }} Result
 * @typedef {{ url: string, method: string, duration: number, connections: number, pipelining: number,
 *   headers?: Record<string, string>, body?: string }} Options
 * @typedef {(options: Options) => PromiseLike<Result> & { stop(): void }} Autocannon
 */
const autocannon = /** @type {Autocannon} */ (createRequire(import.meta.url)('autocannon'));

const ROOT = join(import.meta.dirname, '..', '..');
const SERVER_MAIN = join(ROOT, 'apps/server/dist/main.js');
const RESULT_FILE = join(ROOT, 'test-results/bench-server.json');

const DEADLINE_MS = 85_000;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 10;
const LOAD = { duration: 10, connections: 50, pipelining: 1 };
const HASHES = 100;
const HEALTH_PATH = '/api/v1/health';
/** USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux build that matters. */
const CLOCK_TICKS = 100;

/**
 * @typedef {{ code: number | null, signal: NodeJS.Signals | null }} Exit
 * @typedef {{
 *   child: import('node:child_process').ChildProcess,
 *   pid: number,
 *   port: number,
 *   output: string[],
 *   exit: Exit | undefined,
 *   exited: Promise<Exit>,
 *   postmaster: number | undefined,
 * }} ServerProcess
 * @typedef {{ readyMs: number, serverReportedMs: number | null, stopMs: number, exitCode: number | null,
 *   signal: NodeJS.Signals | null, leftoverProcesses: boolean }} StartStop
 * @typedef {{ name: string, method: string, path: string, requestsPerSecond: number, latencyP50Ms: number,
 *   latencyP99Ms: number, latencyAvgMs: number, requests: number, non2xx: number, errors: number,
 *   timeouts: number, serverCpuPercent: number | null, clientCpuPercent: number }} LoadResult
 */

/** Servers started and not yet stopped. */
const running = new Set(/** @type {ServerProcess[]} */ ([]));
/** Temporary data folders to remove at the end, after stopping any PostgreSQL still running in them. */
const folders = /** @type {string[]} */ ([]);
/** The autocannon run in progress, so that an abort can stop it. */
let currentLoad = /** @type {{ stop(): void } | undefined} */ (undefined);
let aborted = false;

/**
 * The status of GET /api/v1/health, or 0 when nothing answers.
 * @param {number} port
 * @returns {Promise<number>}
 */
function healthStatus(port) {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: HEALTH_PATH, method: 'GET', agent: false, timeout: 2000 },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('timeout', () => {
      req.destroy();
    });
    req.on('error', () => {
      resolve(0);
    });
    req.end();
  });
}

/**
 * The server's environment (startServer adds UPC_DATA_DIR and PORT): the embedded defaults, with
 * no DATABASE_URL or S3_*, on loopback only.
 * @param {string} adminPassword
 */
function serverEnv(adminPassword) {
  /** @type {Record<string, string>} */
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(DATABASE_URL|S3_|TLS_|UPC_|PORT$|HOST$)/.test(key)) continue;
    env[key] = value;
  }
  return {
    ...env,
    HOST: '127.0.0.1',
    UPC_ADMIN_PASSWORD: adminPassword,
    UPC_LOG_LEVEL: 'log',
    NO_COLOR: '1',
  };
}

/**
 * Spawns the server in its own process group and waits for its health check to answer 200.
 * @param {Record<string, string>} env
 * @param {string} dataDir
 * @param {number} port
 * @returns {Promise<{ server: ServerProcess, readyMs: number }>}
 */
async function startServer(env, dataDir, port) {
  if (aborted) throw new Error('aborted');
  const started = performance.now();
  const child = spawn(process.execPath, [SERVER_MAIN], {
    cwd: ROOT,
    env: { ...env, UPC_DATA_DIR: dataDir, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${SERVER_MAIN}`);
  /** @type {ServerProcess} */
  const server = {
    child,
    pid: child.pid,
    port,
    output: [],
    exit: undefined,
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        server.exit = { code, signal };
        resolve(server.exit);
      });
    }),
    postmaster: undefined,
  };
  running.add(server);
  /** @param {string} chunk */
  const keep = (chunk) => {
    server.output.push(...chunk.split('\n').filter((line) => line.trim() !== ''));
    server.output.splice(0, Math.max(0, server.output.length - 200));
  };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);

  while (performance.now() - started < START_TIMEOUT_MS) {
    if (aborted) throw new Error('aborted');
    if (server.exit) {
      throw new Error(
        `the server exited (${describeExit(server.exit)}) before it was ready:\n${tail(server)}`,
      );
    }
    if ((await healthStatus(port)) === 200) {
      const readyMs = performance.now() - started;
      server.postmaster = await postmasterPid(dataDir);
      return { server, readyMs };
    }
    await sleep(POLL_INTERVAL_MS);
  }
  throw new Error(`the server was not healthy within ${START_TIMEOUT_MS} ms:\n${tail(server)}`);
}

/**
 * Sends SIGINT and times the exit; then checks that nothing is left of the server's process group
 * or of its PostgreSQL.
 * @param {ServerProcess} server
 * @param {number} readyMs
 * @returns {Promise<StartStop>}
 */
async function stopServer(server, readyMs) {
  const started = performance.now();
  server.child.kill('SIGINT');
  const exit = await within(server.exited, STOP_TIMEOUT_MS);
  const stopMs = performance.now() - started;
  if (!exit)
    throw new Error(`the server did not exit within ${STOP_TIMEOUT_MS} ms of SIGINT:\n${tail(server)}`);
  const postgresLeft = server.postmaster !== undefined && isAlive(server.postmaster);
  const leftoverProcesses = groupAlive(server.pid) || postgresLeft;
  killGroup(server.pid);
  if (server.postmaster !== undefined && postgresLeft) await stopPid(server.postmaster);
  running.delete(server);
  const reported = server.output
    .map((line) => /ready in (\d+) ms/.exec(line))
    .find((match) => match !== null);
  return {
    readyMs: round(readyMs),
    serverReportedMs: reported?.[1] === undefined ? null : Number(reported[1]),
    stopMs: round(stopMs),
    exitCode: exit.code,
    signal: exit.signal,
    leftoverProcesses,
  };
}

/** @param {number} pgid */
function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** @param {Exit} exit */
const describeExit = (exit) => (exit.signal ? `signal ${exit.signal}` : `code ${String(exit.code)}`);

/** @param {ServerProcess} server */
const tail = (server) => server.output.slice(-20).join('\n');

/** @param {Uint8Array} bytes */
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/**
 * Logs in as admin, creates a workspace and stores half of HASHES small objects in it.
 * @param {string} baseUrl
 * @param {string} adminPassword
 */
async function prepareWorkspace(baseUrl, adminPassword) {
  const client = new UpcClient({ baseUrl });
  await client.login('admin', adminPassword);
  const workspace = await client.createWorkspace({ name: `bench-${String(Date.now())}` });
  const blobs = Array.from({ length: HASHES }, (_, i) => randomBytes(64 + i * 8));
  const hashes = blobs.map(sha256);
  for (let i = 0; i < HASHES; i += 2) {
    const blob = blobs[i];
    const hash = hashes[i];
    // The stored form: format byte 0 (raw), then the plaintext (libs/image object.ts).
    if (blob && hash) await client.uploadObject(workspace.id, hash, Buffer.concat([Buffer.of(0), blob]));
  }
  const missing = await client.missingObjects(workspace.id, hashes);
  if (missing.length !== HASHES / 2) {
    throw new Error(
      `expected ${String(HASHES / 2)} of ${String(HASHES)} hashes missing, got ${String(missing.length)}`,
    );
  }
  if (!client.token) throw new Error('login gave no token');
  return { workspaceId: workspace.id, token: client.token, hashes };
}

/**
 * One autocannon run of LOAD.duration seconds, with the CPU used meanwhile by the server process
 * (not its PostgreSQL) and by this process (autocannon).
 * @param {string} name
 * @param {number} serverPid
 * @param {string} baseUrl
 * @param {{ method: 'GET' | 'POST', path: string, headers?: Record<string, string>, body?: string }} target
 * @returns {Promise<LoadResult>}
 */
async function load(name, serverPid, baseUrl, target) {
  if (aborted) throw new Error('aborted');
  const { path, ...options } = target;
  const cpuBefore = await cpuSeconds(serverPid);
  const ownBefore = process.cpuUsage();
  const started = performance.now();
  const instance = autocannon({ ...LOAD, ...options, url: baseUrl + path });
  currentLoad = instance;
  try {
    const result = await instance;
    const elapsedS = (performance.now() - started) / 1000;
    const own = process.cpuUsage(ownBefore);
    const cpuAfter = await cpuSeconds(serverPid);
    return {
      name,
      method: target.method,
      path: target.path,
      requestsPerSecond: round(result.requests.average),
      latencyP50Ms: result.latency.p50,
      latencyP99Ms: result.latency.p99,
      latencyAvgMs: round(result.latency.average),
      requests: result.requests.total,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      serverCpuPercent:
        cpuBefore === null || cpuAfter === null
          ? null
          : Math.round(((cpuAfter - cpuBefore) / elapsedS) * 100),
      clientCpuPercent: Math.round((own.user + own.system) / 1e4 / elapsedS),
    };
  } finally {
    currentLoad = undefined;
  }
}

/**
 * User + system CPU seconds a process has used so far (Linux), or null.
 * @param {number} pid
 */
async function cpuSeconds(pid) {
  try {
    const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

/**
 * Resident memory of a process in MiB (Linux), or null.
 * @param {number} pid
 */
async function rssMiB(pid) {
  try {
    const status = await readFile(`/proc/${String(pid)}/status`, 'utf8');
    const kib = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
    return kib === undefined ? null : Math.round(Number(kib) / 1024);
  } catch {
    return null;
  }
}

async function run() {
  const loadAverageAtStart = loadAverage();
  const dataDir = await mkdtemp(join(tmpdir(), 'upc-bench-'));
  folders.push(dataDir);
  // As root the embedded PostgreSQL runs as `postgres`, which must traverse into the data folder.
  if (process.getuid?.() === 0) await chmod(dataDir, 0o711);
  const adminPassword = randomBytes(18).toString('base64url');
  const env = serverEnv(adminPassword);

  const cold = await startServer(env, dataDir, await freePort());
  const coldRun = await stopServer(cold.server, cold.readyMs);

  const warm = await startServer(env, dataDir, await freePort());
  const baseUrl = `http://127.0.0.1:${String(warm.server.port)}`;
  const serverRssMiBAtReady = await rssMiB(warm.server.pid);
  const { workspaceId, token, hashes } = await prepareWorkspace(baseUrl, adminPassword);
  const health = await load('health', warm.server.pid, baseUrl, { method: 'GET', path: HEALTH_PATH });
  const missing = await load('objects/missing (100 hashes, 50 stored)', warm.server.pid, baseUrl, {
    method: 'POST',
    path: `/api/v1/workspaces/${workspaceId}/objects/missing`,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ hashes }),
  });
  const serverRssMiBAfterLoad = await rssMiB(warm.server.pid);
  const warmRun = await stopServer(warm.server, warm.readyMs);

  return {
    date: new Date().toISOString(),
    machine: describeMachine(loadAverageAtStart),
    setup: 'embedded PostgreSQL + filesystem store, loopback; autocannon in the bench process',
    start: { cold: coldRun, warm: warmRun },
    load: { ...LOAD, serverRssMiBAtReady, serverRssMiBAfterLoad, results: [health, missing] },
    problems: problems({ cold: coldRun, warm: warmRun }, [health, missing]),
  };
}

/**
 * What makes a run's figures meaningless: an unclean stop, or requests that did not get a 2xx.
 * @param {Record<string, StartStop>} starts
 * @param {LoadResult[]} loads
 */
function problems(starts, loads) {
  const found = [];
  for (const [name, start] of Object.entries(starts)) {
    if (start.exitCode !== 0)
      found.push(`${name} server exited with ${String(start.exitCode ?? start.signal)}`);
    if (start.leftoverProcesses) found.push(`${name} server left processes behind`);
  }
  for (const load of loads) {
    const failedRequests = load.non2xx + load.errors + load.timeouts;
    if (failedRequests > 0)
      found.push(`${load.name}: ${String(failedRequests)} requests without a 2xx answer`);
  }
  return found;
}

/** @param {Awaited<ReturnType<typeof run>>} report */
function print(report) {
  const { machine, start } = report;
  const lines = [
    '',
    `uPC server benchmark — ${String(machine.cpus)} × ${machine.cpuModel}, ${machine.os}, Node ${machine.node} ` +
      `(1-min load average at start: ${String(machine.loadAverageAtStart)})`,
    '',
    'Start and stop (embedded PostgreSQL + filesystem store; ready = spawn → first 200 from /health)',
    table(
      [
        ['start', 'ready ms', 'server says ms', 'SIGINT → exit ms', 'exit code', 'leftovers'],
        .../** @type {const} */ (['cold', 'warm']).map((name) => [
          name,
          start[name].readyMs,
          start[name].serverReportedMs ?? '-',
          start[name].stopMs,
          start[name].exitCode ?? String(start[name].signal),
          start[name].leftoverProcesses ? 'yes' : 'none',
        ]),
      ],
      1,
    ),
    '',
    `HTTP load (autocannon: ${String(LOAD.connections)} connections, pipelining ${String(LOAD.pipelining)}, ` +
      `${String(LOAD.duration)} s each; server RSS ${String(report.load.serverRssMiBAtReady ?? '?')} MiB ` +
      `at ready, ${String(report.load.serverRssMiBAfterLoad ?? '?')} MiB after)`,
    table(
      [
        [
          'endpoint',
          'req/s',
          'p50 ms',
          'p99 ms',
          'avg ms',
          'requests',
          'non-2xx',
          'errors',
          'server CPU',
          'client CPU',
        ],
        ...report.load.results.map((r) => [
          `${r.method} ${r.name}`,
          r.requestsPerSecond,
          r.latencyP50Ms,
          r.latencyP99Ms,
          r.latencyAvgMs,
          r.requests,
          r.non2xx,
          r.errors + r.timeouts,
          r.serverCpuPercent === null ? '-' : `${String(r.serverCpuPercent)} %`,
          `${String(r.clientCpuPercent)} %`,
        ]),
      ],
      1,
    ),
    '',
    `JSON: ${RESULT_FILE}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

/**
 * Stops whatever is still running (SIGINT, then SIGKILL to the server's group and to a PostgreSQL
 * left in a data folder) and removes the temporary folders.
 */
async function cleanup() {
  currentLoad?.stop();
  for (const server of running) {
    if (!server.exit) {
      server.child.kill('SIGINT');
      await within(server.exited, 5000);
    }
    killGroup(server.pid);
    running.delete(server);
  }
  for (const folder of folders) {
    const postmaster = await postmasterPid(folder);
    if (postmaster !== undefined && isAlive(postmaster)) await stopPid(postmaster);
    await rm(folder, { recursive: true, force: true });
  }
}

await runBench({
  deadlineMs: DEADLINE_MS,
  deadlineText: `${String(DEADLINE_MS / 1000)} s`,
  resultFile: RESULT_FILE,
  run,
  print,
  cleanup,
  onAbort: () => {
    aborted = true;
  },
});
