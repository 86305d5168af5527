// @ts-check
/**
 * What every benchmark here shares: a deadline, Ctrl-C and SIGTERM handling, the JSON result file,
 * cleanup that runs whatever happened, and an exit code that says whether the figures are valid.
 */
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { createCipheriv, createHash, randomInt } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * @template {{ problems: string[] }} R
 * @param {{
 *   deadlineMs: number,
 *   deadlineText: string,
 *   resultFile: string,
 *   run: () => Promise<R>,
 *   print: (report: R) => void,
 *   cleanup: () => Promise<void>,
 *   onAbort: () => void,
 * }} bench
 */
export async function runBench(bench) {
  /** @type {(error: Error) => void} */
  let abort = () => undefined;
  /** @type {Promise<never>} */
  const abortion = new Promise((_, reject) => {
    abort = (error) => {
      bench.onAbort();
      reject(error);
    };
  });
  const deadline = setTimeout(() => {
    abort(new Error(`the benchmark took longer than ${bench.deadlineText}`));
  }, bench.deadlineMs);
  /** @param {NodeJS.Signals} signal */
  const onSignal = (signal) => {
    abort(new Error(`interrupted by ${signal}`));
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  // An error nothing handled (an 'error' event on some stream) still ends in cleanup, not in a
  // dead bench that leaves its server and sessions running.
  process.once('uncaughtException', (error) => {
    abort(error);
  });
  let failed = false;
  try {
    const report = await Promise.race([bench.run(), abortion]);
    await mkdir(dirname(bench.resultFile), { recursive: true });
    await writeFile(bench.resultFile, JSON.stringify(report, null, 2) + '\n');
    bench.print(report);
    if (report.problems.length > 0) {
      failed = true;
      process.stderr.write(`bench: these figures are not valid:\n  ${report.problems.join('\n  ')}\n`);
    }
  } catch (error) {
    failed = true;
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
  } finally {
    clearTimeout(deadline);
    await bench.cleanup();
  }
  process.exit(failed ? 1 : 0);
}

/**
 * Rows of cells as aligned text: the first `left` columns padded on the right, the rest (numbers)
 * on the left.
 * @param {unknown[][]} rows
 * @param {number} left
 */
export function table(rows, left) {
  const cells = rows.map((row) =>
    row.map((cell) => (typeof cell === 'string' ? cell : JSON.stringify(cell))),
  );
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length))) ?? [];
  return cells
    .map(
      (row) =>
        '  ' +
        row
          .map((cell, i) => (i < left ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
          .join('  '),
    )
    .join('\n');
}

/**
 * A seeded pseudo-random stream: AES-256-CTR over zeros, keyed by SHA-256 of `namespace:seed`.
 * Fast (the cipher runs at GB/s), incompressible, and the same on every (little-endian) machine,
 * so a benchmark's data is the same from run to run.
 */
export class Random {
  /**
   * @param {string} namespace which benchmark (keeps their data apart)
   * @param {string} seed
   */
  constructor(namespace, seed) {
    const key = createHash('sha256').update(`${namespace}:${seed}`).digest();
    this.cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
    this.pool = new Uint32Array(256);
    this.at = this.pool.length;
  }

  /** @param {number} n */
  bytes(n) {
    return this.cipher.update(Buffer.alloc(n));
  }

  /** A uniform 32-bit unsigned integer. */
  next() {
    if (this.at === this.pool.length) {
      new Uint8Array(this.pool.buffer).set(this.bytes(this.pool.byteLength));
      this.at = 0;
    }
    return this.pool[this.at++] ?? 0;
  }

  /** A number in [0, 1). */
  unit() {
    return this.next() / 2 ** 32;
  }

  /** @param {number} n an integer in [0, n) (bias below 2^-20 for the n used here) */
  below(n) {
    return this.next() % n;
  }

  /**
   * A size between `min` and `max`, uniform in its logarithm.
   * @param {number} min
   * @param {number} max
   */
  logUniform(min, max) {
    return Math.floor(min * (max / min) ** this.unit());
  }
}

/**
 * A free loopback port below the kernel's ephemeral range (32768+), so that the port the embedded
 * PostgreSQL picks for itself (an ephemeral one) cannot collide with it.
 * @returns {Promise<number>}
 */
export async function freePort() {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = randomInt(20_000, 32_000);
    const free = await new Promise((resolve) => {
      const probe = createServer();
      probe.once('error', () => {
        resolve(false);
      });
      probe.listen(port, '127.0.0.1', () => {
        probe.close(() => {
          resolve(true);
        });
      });
    });
    if (free) return port;
  }
  throw new Error('found no free port in 20000-31999');
}

// Processes: what the benchmarks that start a server (and agents) share.

/** @param {number} pid */
export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return /** @type {NodeJS.ErrnoException} */ (error).code === 'EPERM';
  }
}

/** @param {number} pgid */
export function killGroup(pgid) {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * The pid of the PostgreSQL running a cluster under `dataDir`, from its postmaster.pid.
 * @param {string} dataDir
 * @returns {Promise<number | undefined>}
 */
export async function postmasterPid(dataDir) {
  try {
    const pid = Number(
      (await readFile(join(dataDir, 'postgres', 'cluster', 'postmaster.pid'), 'utf8')).split('\n')[0],
    );
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** SIGINT, then SIGKILL after 5 s. @param {number} pid */
export async function stopPid(pid) {
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  for (let waited = 0; waited < 5000 && isAlive(pid); waited += 50) await sleep(50);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/**
 * `promise`, or `undefined` once `ms` have passed (the timer does not outlive the race).
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @returns {Promise<T | undefined>}
 */
export async function within(promise, ms) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  try {
    return /** @type {T | undefined} */ (await Promise.race([promise, timeout]));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The status of an HTTP GET on loopback or on a Unix socket, with its body; status 0 when nothing
 * answers.
 * @param {{ port?: number, socketPath?: string, path: string }} target
 * @returns {Promise<{ status: number, body: string }>}
 */
export function httpGet(target) {
  return new Promise((resolve) => {
    const req = request(
      {
        ...(target.port ? { host: '127.0.0.1', port: target.port } : {}),
        ...target,
        method: 'GET',
        agent: false,
        timeout: 5000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk) => (body += String(chunk)));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('timeout', () => {
      req.destroy();
    });
    req.on('error', () => {
      resolve({ status: 0, body: '' });
    });
    req.end();
  });
}

/**
 * @typedef {{ code: number | null, signal: NodeJS.Signals | null }} Exit
 * @typedef {{
 *   child: import('node:child_process').ChildProcess,
 *   pid: number,
 *   port: number,
 *   url: string,
 *   readyMs: number,
 *   output: string[],
 *   exit: Exit | undefined,
 *   exited: Promise<Exit>,
 *   postmaster: number | undefined,
 *   tail: (lines?: number) => string,
 *   stop: () => Promise<Exit | undefined>,
 * }} ServerProcess
 */

/** Servers started by startServerProcess and not stopped yet (also those still starting). */
const servers = new Set(/** @type {ServerProcess[]} */ ([]));

/**
 * Spawns the built server (`apps/server/dist/main.js` under `root`) in its own process group on a
 * fresh data folder (embedded PostgreSQL and the filesystem store: no DATABASE_URL, no S3_*; every
 * UPC_*, TLS_*, PORT and HOST of this process is left out) on a free loopback port, and waits for
 * its health check. `onAbortCheck` runs while it waits and may throw to give up; a server that
 * does not become healthy is stopped before the error is thrown. `stop()` sends SIGINT, waits up
 * to `stopTimeoutMs`, then SIGKILLs whatever is left of its process group and its PostgreSQL.
 * @param {{
 *   root: string,
 *   dataDir: string,
 *   adminPassword: string,
 *   timeoutMs?: number,
 *   stopTimeoutMs?: number,
 *   onAbortCheck?: () => void,
 * }} options
 * @returns {Promise<ServerProcess>}
 */
export async function startServerProcess(options) {
  const { root, dataDir, adminPassword, timeoutMs = 60_000, stopTimeoutMs = 10_000 } = options;
  const main = join(root, 'apps/server/dist/main.js');
  /** @type {Record<string, string>} */
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || /^(DATABASE_URL|S3_|TLS_|UPC_|PORT$|HOST$)/.test(key)) continue;
    env[key] = value;
  }
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [main], {
    cwd: root,
    env: {
      ...env,
      HOST: '127.0.0.1',
      PORT: String(port),
      UPC_DATA_DIR: dataDir,
      UPC_ADMIN_PASSWORD: adminPassword,
      UPC_LOG_LEVEL: 'log',
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${main}`);
  const pid = child.pid;
  /** @type {Promise<Exit | undefined> | undefined} */
  let stopping;
  /** @type {ServerProcess} */
  const proc = {
    child,
    pid,
    port,
    url: `http://127.0.0.1:${String(port)}`,
    readyMs: NaN,
    output: [],
    exit: undefined,
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        proc.exit = { code, signal };
        resolve(proc.exit);
      });
    }),
    postmaster: undefined,
    tail: (lines = 20) => proc.output.slice(-lines).join('\n'),
    stop: () => {
      stopping ??= (async () => {
        if (!proc.exit) child.kill('SIGINT');
        const exit = await within(proc.exited, stopTimeoutMs);
        killGroup(pid);
        // A server stopped while it was starting may not have said which PostgreSQL is its own.
        const postmaster = proc.postmaster ?? (await postmasterPid(dataDir));
        if (postmaster !== undefined && isAlive(postmaster)) await stopPid(postmaster);
        servers.delete(proc);
        return exit;
      })();
      return stopping;
    },
  };
  servers.add(proc);
  /** @param {string} chunk */
  const keep = (chunk) => {
    proc.output.push(...chunk.split('\n').filter((line) => line.trim() !== ''));
    proc.output.splice(0, Math.max(0, proc.output.length - 200));
  };
  child.stdout?.setEncoding('utf8').on('data', keep);
  child.stderr?.setEncoding('utf8').on('data', keep);
  try {
    while (performance.now() - started < timeoutMs) {
      options.onAbortCheck?.();
      if (proc.exit) throw new Error(`the server exited before it was ready:\n${proc.tail()}`);
      if ((await httpGet({ port, path: '/api/v1/health' })).status === 200) {
        proc.postmaster = await postmasterPid(dataDir);
        proc.readyMs = Math.round((performance.now() - started) * 10) / 10;
        return proc;
      }
      await sleep(50);
    }
    throw new Error(`the server was not healthy within ${String(timeoutMs)} ms:\n${proc.tail()}`);
  } catch (error) {
    await proc.stop();
    throw error;
  }
}

/** Stops every server startServerProcess started and nobody stopped yet (for cleanups). */
export async function stopServers() {
  await Promise.all([...servers].map((server) => server.stop()));
}

/** The 1-minute load average, to two decimals: how busy the machine is. */
export const loadAverage = () => Math.round((loadavg()[0] ?? 0) * 100) / 100;

/**
 * What a result file says about the machine it was measured on; call at the end of a run.
 * @param {number} loadAverageAtStart from `loadAverage()` when the run began
 */
export function describeMachine(loadAverageAtStart) {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    os: `${process.platform} ${release()}`,
    node: process.version,
    loadAverageAtStart,
    loadAverageAtEnd: loadAverage(),
  };
}

/**
 * A whole number from the environment (a bench's size knob), or `fallback` when it is not set.
 * @param {string} name
 * @param {number} fallback
 */
export function envNumber(name, fallback) {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number`);
  return Math.round(value);
}

/** Waits `ms` milliseconds (node:timers/promises' setTimeout). */
export { sleep };

/** Milliseconds to one decimal. @param {number} ms */
export const round = (ms) => Math.round(ms * 10) / 10;

/** A progress line on stderr. @param {string} message */
export const log = (message) => {
  process.stderr.write(`bench: ${message}\n`);
};

/**
 * The value at quantile `q` of sorted `values` (nearest rank).
 * @param {number[]} sorted
 * @param {number} q
 */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}

/**
 * The last lines of each PC's session daemon log, for a failed run's message.
 * @param {{ name: string, home: string }[]} pcs
 * @returns {Promise<string[]>}
 */
export async function daemonLogTails(pcs) {
  const lines = [];
  for (const pc of pcs) {
    const text = await readFile(join(pc.home, 'session', 'daemon.log'), 'utf8').catch(() => '');
    if (text !== '')
      lines.push(`daemon log of ${pc.name}, last lines:`, ...text.trim().split('\n').slice(-15));
  }
  return lines;
}
