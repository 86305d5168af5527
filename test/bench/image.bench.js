// @ts-check
/**
 * Image format benchmark (issue 3), side by side with `restic backup` to a local repository. Run it
 * with `npm run bench:image`, which builds first.
 *
 * On the same freshly generated data (deterministic: AES-CTR streams from fixed seeds), each case
 * runs our `snapshot()` into a `LocalRepository` and `restic backup` into a local restic repository:
 *
 * 1. 1 GiB of mixed files (log-like text, structured binaries, already-compressed data), 4 KiB to
 *    32 MiB each;
 * 2. 20,000 small files (100 B to 8 KiB) in nested folders;
 * 3. a re-snapshot of both after changing 1 % of their files (part of each rewritten, every third one
 *    appended to): ours with its SnapshotCache and a full stat scan (no `changed` hint), restic
 *    with its parent snapshot.
 *
 * Then a restore of cases 1 and 2 (`materialize()` vs `restic restore`), checked against the data,
 * and the goals of our own: a 100,000-file tree (100 folders × 1000 files), first snapshot, a full
 * rescan after changing one file, and the median of five single-file changes snapshotted with the
 * cache and `changed: [path]` (goal ≤ 100 ms).
 *
 * Times are wall clock, including opening the repository (ours) and starting the process (restic);
 * both read the same files, which sit in the page cache since they were just written (dropping the
 * caches is not possible here), and each timed step starts after a `sync`, so that no step pays for
 * the writeback of an earlier one. The order alternates between cases. "Stored" is the total size of
 * the repository folder. Everything lives in one temporary folder, removed at the end, also when a
 * step fails, the run exceeds DEADLINE_MS or it is interrupted. Figures go to stdout as a table and
 * to test-results/bench-image.json; the run exits non-zero if restic failed, a restore did not give
 * back the data, or an incremental snapshot missed or over-read a change.
 */
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, rmSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearTimeout, setImmediate, setTimeout } from 'node:timers';
import { gzipSync } from 'node:zlib';
import { LocalRepository, materialize, snapshot, SnapshotCache } from '../../libs/image/dist/index.js';
import { hasOpenBeneath, openBeneath } from '../../driver/dist/index.js';
import { describeMachine, loadAverage, Random, runBench, table } from './harness.js';

/**
 * How snapshots open what they read, as the agent's daemon does: through the driver's openat2 where
 * the kernel has it (Linux 5.6 and later), else the library's own walk of one name at a time.
 */
const BENEATH = process.platform === 'linux' && hasOpenBeneath() ? { openBeneath } : {};

const ROOT = join(import.meta.dirname, '..', '..');
const RESULT_FILE = join(ROOT, 'test-results/bench-image.json');

const DEADLINE_MS = 15 * 60_000;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const MIXED_BYTES = 1 * GiB;
/** Shares of case 1's bytes by kind of content. */
const MIXED_SHARES = { text: 0.4, binary: 0.3, compressed: 0.3 };
const SMALL_FILES = 20_000;
const MANY = { folders: 100, files: 1000 };
const HINTED_RUNS = 5;
const HINTED_GOAL_MS = 100;
/** Share of the files changed in case 3. */
const CHANGE_SHARE = 0.01;
/** A fixed time for changed files, so that the change always shows in their mtime. */
const CHANGED_MTIME_S = Date.UTC(2026, 10, 1) / 1000;
const RESTIC_PASSWORD = 'upc-bench-not-a-secret';
/** How long `apt-get update` + `apt-get install restic` may take. */
const INSTALL_TIMEOUT_MS = 5 * 60_000;

/**
 * @typedef {{ path: string, size: number, kind: 'text' | 'binary' | 'compressed' | 'gzip' }} PlannedFile
 * @typedef {{ ms: number, cpuPercent: number | null, storedBytes: number, addedBytes: number }} Measure
 * @typedef {{ id: string, label: string, tool: 'ours' | 'restic', ms: number, cpuPercent: number | null,
 *   dataBytes: number, files: number, storedBytes: number | null, addedBytes: number | null,
 *   note?: string }} Row
 * @typedef {{ stdout: string, stderr: string, ms: number, cpuPercent: number | null }} ResticRun
 * @typedef {{ files: number, bytes: number }} TreeSize
 */

/** Child processes running now (restic, apt-get), so that an abort can stop them. */
const children = new Set(/** @type {import('node:child_process').ChildProcess[]} */ ([]));
/** The one temporary folder everything is written under. */
let workDir = /** @type {string | undefined} */ (undefined);
let aborted = false;

/** @param {number} value */
const round2 = (value) => Math.round(value * 100) / 100;

/** @param {string} message */
const log = (message) => {
  process.stderr.write(`bench: ${message}\n`);
};

function checkAborted() {
  if (aborted) throw new Error('aborted');
}

/** Lets timers and signal handlers run during long synchronous loops. */
const yieldToEvents = () =>
  new Promise((resolve) => {
    setImmediate(resolve);
  });

/** A vocabulary of 4096 made-up words. */
const WORDS = (() => {
  const random = new Random('upc-bench-image', 'words');
  return Array.from({ length: 4096 }, () => {
    let word = '';
    const length = 2 + random.below(9);
    for (let i = 0; i < length; i++) word += String.fromCharCode(97 + random.below(26));
    return word;
  });
})();
/** Each word with a space before it, as bytes. */
const WORD_BYTES = WORDS.map((word) => Buffer.from(` ${word}`, 'latin1'));
/** ` LEVEL [component]`, as bytes: three in seven INFO, two DEBUG, one WARN, one ERROR. */
const HEADS = ['INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'].flatMap((level) =>
  ['http', 'store', 'auth', 'sync', 'agent', 'db', 'scheduler', 'cache'].map((component) =>
    Buffer.from(` ${level} [${component}]`, 'latin1'),
  ),
);
const DAY = Buffer.from('2026-11-27T', 'latin1');
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/**
 * Writes `value` as `width` decimal digits ending before `end`.
 * @param {Buffer} out
 * @param {number} end
 * @param {number} value
 * @param {number} width
 */
function digits(out, end, value, width) {
  for (let i = 1; i <= width; i++) {
    out[end - i] = 48 + (value % 10);
    value = Math.floor(value / 10);
  }
}

/**
 * Log-like text of exactly `size` bytes: time stamp, level, component, words (skewed towards the
 * frequent ones) and now and then a hexadecimal id. zstd shrinks it to about a third. Written byte
 * by byte into one buffer, which is an order of magnitude faster than building strings.
 * @param {Random} random
 * @param {number} size
 */
function text(random, size) {
  const out = Buffer.allocUnsafe(size + 512);
  let at = 0;
  let ms = random.below(86_400_000);
  while (at < size) {
    ms = (ms + random.below(3000)) % 86_400_000;
    at += DAY.copy(out, at);
    digits(out, at + 2, Math.floor(ms / 3_600_000), 2);
    out[at + 2] = 58; // :
    digits(out, at + 5, Math.floor(ms / 60_000) % 60, 2);
    out[at + 5] = 58;
    digits(out, at + 8, Math.floor(ms / 1000) % 60, 2);
    out[at + 8] = 46; // .
    digits(out, at + 12, ms % 1000, 3);
    out[at + 12] = 90; // Z
    at += 13;
    at += (HEADS[random.below(HEADS.length)] ?? DAY).copy(out, at);
    const words = 4 + random.below(12);
    for (let i = 0; i < words; i++) {
      const pick = random.next();
      const word = WORD_BYTES[((pick & 4095) * (pick >>> 20)) >>> 12] ?? DAY;
      for (let j = 0; j < word.length; j++) out[at + j] = word[j] ?? 32;
      at += word.length;
    }
    if (random.below(4) === 0) {
      out.write(' id=', at, 'latin1');
      at += 4;
      let id = random.next();
      for (let i = 7; i >= 0; i--, id >>>= 4) out[at + i] = HEX[id & 15] ?? 48;
      at += 8;
    }
    out[at++] = 10; // newline
  }
  return out.subarray(0, size);
}

/**
 * Binary-like data of `size` bytes: random 8-byte words, of which about a third are small
 * integers, a sixth zero padding and a tenth repeats of a word seen shortly before. zstd saves
 * about a fifth to a quarter of it.
 * @param {Random} random
 * @param {number} size
 */
function binary(random, size) {
  const bytes = random.bytes(size);
  for (let i = 0; i + 8 <= size; i += 8) {
    const roll = bytes[i] ?? 0;
    if (roll < 80) {
      bytes[i + 2] = 0;
      bytes[i + 3] = 0;
      bytes[i + 6] = 0;
      bytes[i + 7] = 0;
    } else if (roll < 120) {
      bytes.fill(0, i, i + 8);
    } else if (roll < 145 && i >= 4096) {
      const back = 8 * (1 + (bytes[i + 1] ?? 0) * 2);
      bytes.copyWithin(i, i - back, i - back + 8);
    }
  }
  return bytes;
}

/**
 * The content of a planned file (the same on every run).
 * @param {PlannedFile} file
 * @param {string} seed
 */
function content(file, seed) {
  const random = new Random('upc-bench-image', seed);
  switch (file.kind) {
    case 'text':
      return text(random, file.size);
    case 'binary':
      return binary(random, file.size);
    case 'compressed':
      return random.bytes(file.size);
    case 'gzip':
      return gzipSync(text(random, file.size * 3), { level: 6 });
  }
}

/**
 * Case 1: MIXED_BYTES in files of 4 KiB to 1 MiB (four in five) or 1 to 32 MiB (log-uniform within
 * each range), in 24 folders two levels deep. Each file's kind is the one furthest behind its share
 * of the bytes so far; a fifth of the compressed files under 4 MiB are real gzip output, the rest
 * random bytes (like media or archives).
 */
function planMixed() {
  const random = new Random('upc-bench-image', 'mixed-plan');
  /** @type {PlannedFile[]} */
  const files = [];
  const byKind = { text: 0, binary: 0, compressed: 0 };
  const extensions = { text: 'log', binary: 'bin', compressed: 'zst', gzip: 'gz' };
  let total = 0;
  for (let n = 0; total < MIXED_BYTES; n++) {
    const drawn = random.below(5) === 0 ? random.logUniform(MiB, 32 * MiB) : random.logUniform(4 * KiB, MiB);
    const size = Math.min(drawn, MIXED_BYTES - total);
    const kinds = /** @type {const} */ (['text', 'binary', 'compressed']);
    const behind = (/** @type {typeof kinds[number]} */ kind) =>
      MIXED_SHARES[kind] * (total + size) - byKind[kind];
    const kind = kinds.reduce((best, kind) => (behind(kind) > behind(best) ? kind : best));
    byKind[kind] += size;
    total += size;
    const stored = kind === 'compressed' && size < 4 * MiB && random.below(5) === 0 ? 'gzip' : kind;
    files.push({
      path: `d${String(n % 6)}/s${String((n >> 3) % 4)}/f${String(n)}.${extensions[stored]}`,
      size,
      kind: stored,
    });
  }
  return files;
}

/** Case 2: SMALL_FILES files of 100 B to 8 KiB (log-uniform), 20 folders × 10 × 100; a fifth random. */
function planSmall() {
  const random = new Random('upc-bench-image', 'small-plan');
  return Array.from({ length: SMALL_FILES }, (_, n) => {
    const kind = random.below(5) === 0 ? 'compressed' : 'text';
    return /** @type {PlannedFile} */ ({
      path: `p${String(n % 20)}/q${String(Math.floor(n / 20) % 10)}/file${String(n)}.${kind === 'text' ? 'txt' : 'dat'}`,
      size: random.logUniform(100, 8 * KiB),
      kind,
    });
  });
}

/**
 * Writes the planned files under `dir`; returns the bytes written.
 * @param {string} dir
 * @param {PlannedFile[]} files
 * @param {string} seed
 */
async function generate(dir, files, seed) {
  let bytes = 0;
  const folders = new Set(files.map((file) => join(dir, file.path, '..')));
  for (const folder of folders) await mkdir(folder, { recursive: true });
  for (const [n, file] of files.entries()) {
    const data = content(file, `${seed}:${String(n)}`);
    file.size = data.length;
    bytes += data.length;
    if (data.length >= 256 * KiB) {
      await writeFile(join(dir, file.path), data);
      checkAborted();
    } else {
      writeFileSync(join(dir, file.path), data);
      if (n % 500 === 0) {
        await yieldToEvents();
        checkAborted();
      }
    }
  }
  return bytes;
}

/**
 * Case 3's change: CHANGE_SHARE of the files, chosen at random; in each, `rewrite` bytes (at most
 * the file) at a random offset are overwritten, and every third one grows by `append` bytes. Their
 * mtime is set to a fixed time in the past, different from the one they had.
 * @param {string} dir
 * @param {PlannedFile[]} files
 * @param {string} seed
 * @param {{ rewrite: number, append: number }} amounts
 * @returns {Promise<string[]>} the paths changed
 */
async function change(dir, files, seed, amounts) {
  const random = new Random('upc-bench-image', seed);
  const count = Math.max(1, Math.round(files.length * CHANGE_SHARE));
  const order = files.map((_, i) => i);
  const changed = [];
  for (let k = 0; k < count; k++) {
    const pick = k + random.below(order.length - k);
    const index = order[pick] ?? 0;
    order[pick] = order[k] ?? 0;
    order[k] = index;
    const file = files[index];
    if (!file) continue;
    const path = join(dir, file.path);
    const handle = await open(path, 'r+');
    try {
      const length = Math.min(amounts.rewrite, file.size);
      await handle.write(random.bytes(length), 0, length, random.below(file.size - length + 1));
      if (k % 3 === 0) {
        await handle.write(random.bytes(amounts.append), 0, amounts.append, file.size);
        file.size += amounts.append;
      }
    } finally {
      await handle.close();
    }
    await utimes(path, CHANGED_MTIME_S + k, CHANGED_MTIME_S + k);
    changed.push(file.path);
  }
  return changed;
}

/**
 * The 100,000-file tree: MANY.folders folders of MANY.files files of 100 B to 2 KiB, each a line
 * naming it and base64 of random bytes (so no two are alike).
 * @param {string} dir
 */
async function generateMany(dir) {
  const random = new Random('upc-bench-image', 'many');
  let bytes = 0;
  for (let f = 0; f < MANY.folders; f++) {
    const folder = join(dir, `f${String(f).padStart(3, '0')}`);
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < MANY.files; i++) {
      const name = `x${String(i).padStart(4, '0')}.txt`;
      const size = random.logUniform(100, 2 * KiB);
      const data = `${name}\n${random.bytes(Math.ceil((size * 3) / 4)).toString('base64')}`.slice(0, size);
      writeFileSync(join(folder, name), data);
      bytes += data.length;
    }
    await yieldToEvents();
    checkAborted();
  }
  return bytes;
}

/**
 * Rewrites one file of the 100,000-file tree (same size, new bytes, a new mtime).
 * @param {string} dir
 * @param {string} path
 * @param {number} n
 */
async function touchOne(dir, path, n) {
  const absolute = join(dir, path);
  const old = await readFile(absolute);
  const fresh = new Random('upc-bench-image', `touch:${String(n)}`).bytes(old.length);
  writeFileSync(absolute, fresh);
  utimesSync(absolute, CHANGED_MTIME_S + 1000 + n, CHANGED_MTIME_S + 1000 + n);
}

/**
 * Files and bytes under `dir` (regular files only; folders and links are not counted).
 * @param {string} dir
 * @param {Map<string, number>} [sizes] filled with relative path → size when given
 * @param {string} [prefix]
 * @returns {Promise<TreeSize>}
 */
async function treeSize(dir, sizes, prefix = '') {
  let files = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) {
      const inner = await treeSize(join(dir, entry.name), sizes, path);
      files += inner.files;
      bytes += inner.bytes;
    } else if (entry.isFile()) {
      const { size } = await lstat(join(dir, entry.name));
      files++;
      bytes += size;
      sizes?.set(path, size);
    }
  }
  return { files, bytes };
}

/** @param {string} dir the bytes of all files under `dir` */
const folderBytes = async (dir) => (await treeSize(dir)).bytes;

/**
 * What differs between the data and a restore of it: missing, extra or different-sized files, and
 * the contents of every 25th file compared byte for byte.
 * @param {string} source
 * @param {string} restored
 * @param {string} what
 * @returns {Promise<string[]>}
 */
async function compareTrees(source, restored, what) {
  const expected = new Map();
  const actual = new Map();
  await treeSize(source, expected);
  await treeSize(restored, actual);
  const problems = [];
  let n = 0;
  for (const [path, size] of expected) {
    if (actual.get(path) !== size) {
      problems.push(
        `${what}: ${path} is ${String(actual.get(path) ?? 'missing')}, expected ${String(size)} bytes`,
      );
    } else if (n++ % 25 === 0) {
      const [a, b] = await Promise.all([readFile(join(source, path)), readFile(join(restored, path))]);
      if (!a.equals(b)) problems.push(`${what}: ${path} has other contents than the original`);
    }
    if (problems.length >= 5) break;
  }
  if (actual.size !== expected.size)
    problems.push(`${what}: ${String(actual.size)} files restored, expected ${String(expected.size)}`);
  return problems;
}

/** @param {string} name whether an executable `name` is on PATH */
function onPath(name) {
  return (process.env.PATH ?? '').split(delimiter).some((folder) => {
    try {
      accessSync(join(folder, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Sends `signal` to the process group of `child` (started with `detached: true`).
 * @param {import('node:child_process').ChildProcess} child
 * @param {NodeJS.Signals} signal
 */
function signalGroup(child, signal) {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Runs a command to the end; rejects when it exits non-zero. Its output is collected, or passed to
 * our stderr with `inherit`.
 * @param {string} command
 * @param {string[]} args
 * @param {{ cwd?: string, env?: NodeJS.ProcessEnv, inherit?: boolean, timeoutMs?: number }} [options]
 * @returns {Promise<{ stdout: string, stderr: string, ms: number }>}
 */
function exec(command, args, options = {}) {
  checkAborted();
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', options.inherit ? 'ignore' : 'pipe', options.inherit ? 'inherit' : 'pipe'],
      // A process group of its own, so that stopping it also stops what it started (restic under sh).
      detached: true,
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (/** @type {string} */ chunk) => {
      stdout += chunk;
    });
    child.stderr?.setEncoding('utf8').on('data', (/** @type {string} */ chunk) => {
      stderr = (stderr + chunk).slice(-20_000);
    });
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            signalGroup(child, 'SIGKILL');
          }, options.timeoutMs);
    child.once('error', (error) => {
      children.delete(child);
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      const ms = performance.now() - started;
      children.delete(child);
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr, ms });
      else
        reject(
          new Error(
            `${command} ${args.join(' ')} exited with ${String(code ?? signal)}:\n${stderr.trim().slice(-2000)}`,
          ),
        );
    });
  });
}

/** Installs restic with apt-get when it is missing and we are root; otherwise says how to. */
async function ensureRestic() {
  if (onPath('restic')) return;
  const hint = 'restic is not installed: install it with `apt-get install restic` (Debian/Ubuntu)';
  if (process.getuid?.() !== 0 || !onPath('apt-get')) throw new Error(hint);
  log('restic is not on PATH; installing it: apt-get install -y restic');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    exec('apt-get', ['install', '-y', '--no-install-recommends', 'restic'], {
      env,
      inherit: true,
      timeoutMs: INSTALL_TIMEOUT_MS,
    });
  try {
    await install();
  } catch {
    log('apt-get install failed; running apt-get update first');
    await exec('apt-get', ['update'], { env, inherit: true, timeoutMs: INSTALL_TIMEOUT_MS });
    await install();
  }
  if (!onPath('restic')) throw new Error(`installing restic did not work; ${hint}`);
}

/**
 * restic's environment: the repository's password, its cache inside the work folder, and nothing
 * that could point it at another repository.
 */
function resticEnv() {
  /** @type {NodeJS.ProcessEnv} */
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('RESTIC_') && !key.startsWith('AWS_') && !key.startsWith('B2_')) env[key] = value;
  }
  return { ...env, RESTIC_PASSWORD, RESTIC_CACHE_DIR: join(workDir ?? tmpdir(), 'restic-cache') };
}

/**
 * Runs restic through `sh`, whose `times` then prints the CPU time restic used (user and system).
 * @param {string[]} args
 * @param {string} [cwd]
 * @returns {Promise<ResticRun>}
 */
async function restic(args, cwd) {
  const script = 'restic "$@"; status=$?; times >&2; exit $status';
  const result = await exec('sh', ['-c', script, 'sh', ...args], { cwd, env: resticEnv() });
  const times = result.stderr.trim().split('\n').at(-1) ?? '';
  const seconds = [...times.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const cpu = seconds.length === 2 ? (seconds[0] ?? 0) + (seconds[1] ?? 0) : null;
  return {
    stdout: result.stdout,
    stderr: result.stderr,
    ms: result.ms,
    cpuPercent: cpu === null ? null : Math.round((cpu * 1000 * 100) / result.ms),
  };
}

/**
 * `restic backup` of the contents of `dataDir` (as `.`, so that the snapshot holds them at its top).
 * @param {string} repo
 * @param {string} dataDir
 */
async function resticBackup(repo, dataDir) {
  checkAborted();
  const before = await folderBytes(repo);
  await settle();
  const run = await restic(['backup', '--repo', repo, '--json', '--quiet', '.'], dataDir);
  /** @type {Record<string, unknown> | undefined} */
  let summary;
  for (const line of run.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const message = /** @type {Record<string, unknown>} */ (JSON.parse(line));
    if (message.message_type === 'summary') summary = message;
  }
  const storedBytes = await folderBytes(repo);
  return {
    ms: run.ms,
    cpuPercent: run.cpuPercent,
    storedBytes,
    addedBytes: storedBytes - before,
    snapshotId: typeof summary?.snapshot_id === 'string' ? summary.snapshot_id : 'latest',
    summary,
  };
}

/**
 * `restic restore` into the empty folder `target`; returns where the data landed.
 * @param {string} repo
 * @param {string} snapshotId
 * @param {string} target
 * @param {string} dataDir the folder that was backed up
 */
async function resticRestore(repo, snapshotId, target, dataDir) {
  await settle();
  const run = await restic(['restore', snapshotId, '--repo', repo, '--target', target]);
  // Backed up as `.`, the files are at the top; older restic versions keep the absolute path.
  const nested = join(target, dataDir);
  return { ms: run.ms, cpuPercent: run.cpuPercent, root: existsSync(nested) ? nested : target };
}

/**
 * Writes dirty pages out (`sync`) before a timed step, so that the kernel's writeback of the data
 * just generated, or of the previous step's repository, is not charged to whichever tool runs next.
 */
async function settle() {
  if (onPath('sync')) await exec('sync', []);
}

/**
 * Times `task` in this process, with the CPU it used (all threads, libuv's pool included), after
 * settle().
 * @template T
 * @param {() => Promise<T>} task
 */
async function timed(task) {
  await settle();
  checkAborted();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const result = await task();
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return { result, ms, cpuPercent: Math.round((cpu.user + cpu.system) / 10 / ms) };
}

/**
 * Our snapshot of `dataDir` into the repository at `repoDir`, opened inside the timed part.
 * @param {string} repoDir
 * @param {string} dataDir
 * @param {SnapshotCache} cache
 */
async function oursSnapshot(repoDir, dataDir, cache) {
  const before = await folderBytes(repoDir).catch(() => 0);
  const run = await timed(async () =>
    snapshot(dataDir, await LocalRepository.open(repoDir), { cache, ...BENEATH }),
  );
  const storedBytes = await folderBytes(repoDir);
  return {
    ms: run.ms,
    cpuPercent: run.cpuPercent,
    storedBytes,
    addedBytes: storedBytes - before,
    root: run.result.root,
    stats: run.result.stats,
  };
}

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

async function run() {
  const loadAverageAtStart = loadAverage();
  await ensureRestic();
  const resticVersion = (await exec('restic', ['version'])).stdout.trim();
  workDir = await mkdtemp(join(tmpdir(), 'upc-bench-image-'));
  const dir = (/** @type {string} */ name) => join(workDir ?? '', name);
  /** @type {Row[]} */
  const rows = [];
  /** @type {string[]} */
  const problems = [];
  /**
   * @param {Omit<Row, 'ms' | 'cpuPercent' | 'storedBytes' | 'addedBytes'>} row
   * @param {{ ms: number, cpuPercent: number | null, storedBytes?: number, addedBytes?: number }} measure
   */
  const record = (row, measure) => {
    rows.push({
      ...row,
      ms: Math.round(measure.ms * 10) / 10,
      cpuPercent: measure.cpuPercent,
      storedBytes: measure.storedBytes ?? null,
      addedBytes: measure.addedBytes ?? null,
    });
    log(`${row.id} ${row.tool}: ${(measure.ms / 1000).toFixed(2)} s`);
  };

  // Data for cases 1 and 2.
  const mixed = planMixed();
  const small = planSmall();
  const generation = await timed(async () => ({
    mixed: await generate(dir('data/mixed'), mixed, 'mixed'),
    small: await generate(dir('data/small'), small, 'small'),
  }));
  log(`generated cases 1 and 2 in ${(generation.ms / 1000).toFixed(1)} s`);
  const mixedSize = await treeSize(dir('data/mixed'));
  const smallSize = await treeSize(dir('data/small'));
  const kinds = Object.fromEntries(
    ['text', 'binary', 'compressed', 'gzip'].map((kind) => [
      kind,
      {
        files: mixed.filter((f) => f.kind === kind).length,
        bytes: mixed.filter((f) => f.kind === kind).reduce((sum, f) => sum + f.size, 0),
      },
    ]),
  );

  for (const name of ['mixed', 'small']) {
    await mkdir(dir(`restic/${name}`), { recursive: true });
    await restic(['init', '--repo', dir(`restic/${name}`)]);
  }
  const resticRepositoryVersion = /** @type {{ version?: number }} */ (
    JSON.parse((await restic(['cat', 'config', '--repo', dir('restic/mixed')])).stdout)
  ).version;

  const cache = { mixed: new SnapshotCache(), small: new SnapshotCache() };
  const case1 = {
    id: '1',
    label: '1 GiB mixed, first snapshot',
    dataBytes: mixedSize.bytes,
    files: mixedSize.files,
  };
  const case2 = {
    id: '2',
    label: '20,000 small files, first snapshot',
    dataBytes: smallSize.bytes,
    files: smallSize.files,
  };

  // Case 1: ours first. Case 2: restic first.
  const ours1 = await oursSnapshot(dir('ours/mixed'), dir('data/mixed'), cache.mixed);
  record({ ...case1, tool: 'ours' }, ours1);
  const restic1 = await resticBackup(dir('restic/mixed'), dir('data/mixed'));
  record({ ...case1, tool: 'restic' }, restic1);
  const restic2 = await resticBackup(dir('restic/small'), dir('data/small'));
  record({ ...case2, tool: 'restic' }, restic2);
  const ours2 = await oursSnapshot(dir('ours/small'), dir('data/small'), cache.small);
  record({ ...case2, tool: 'ours' }, ours2);

  // Restores of cases 1 and 2, checked against the data (which is unchanged until case 3).
  for (const [name, id, first, snapshotId, size] of /** @type {const} */ ([
    ['mixed', 'R1', 'ours', restic1.snapshotId, mixedSize],
    ['small', 'R2', 'restic', restic2.snapshotId, smallSize],
  ])) {
    const label = `restore of case ${id.slice(1)}`;
    const root = name === 'mixed' ? ours1.root : ours2.root;
    const restoreOurs = async () => {
      const target = dir(`restore/ours-${name}`);
      const measure = await timed(async () => {
        const repository = await LocalRepository.open(dir(`ours/${name}`));
        await materialize(repository, root, target, BENEATH);
        return repository;
      });
      measure.result.close();
      record({ id, label, tool: 'ours', dataBytes: size.bytes, files: size.files }, measure);
      problems.push(...(await compareTrees(dir(`data/${name}`), target, `${label} (ours)`)));
      rmSync(target, { recursive: true, force: true });
    };
    const restoreRestic = async () => {
      const target = dir(`restore/restic-${name}`);
      const measure = await resticRestore(dir(`restic/${name}`), snapshotId, target, dir(`data/${name}`));
      record({ id, label, tool: 'restic', dataBytes: size.bytes, files: size.files }, measure);
      problems.push(...(await compareTrees(dir(`data/${name}`), measure.root, `${label} (restic)`)));
      rmSync(target, { recursive: true, force: true });
    };
    if (first === 'ours') {
      await restoreOurs();
      await restoreRestic();
    } else {
      await restoreRestic();
      await restoreOurs();
    }
  }

  // Case 3: 1 % of each data set changed; a full scan by both (ours with its cache, restic with its
  // parent snapshot).
  const changedMixed = await change(dir('data/mixed'), mixed, 'change-mixed', {
    rewrite: 16 * KiB,
    append: 64 * KiB,
  });
  const changedSmall = await change(dir('data/small'), small, 'change-small', { rewrite: 256, append: 512 });
  const mixedAfter = await treeSize(dir('data/mixed'));
  const smallAfter = await treeSize(dir('data/small'));
  const case3a = {
    id: '3a',
    label: `case 1 again, ${String(changedMixed.length)} files changed`,
    dataBytes: mixedAfter.bytes,
    files: mixedAfter.files,
  };
  const case3b = {
    id: '3b',
    label: `case 2 again, ${String(changedSmall.length)} files changed`,
    dataBytes: smallAfter.bytes,
    files: smallAfter.files,
  };
  const ours3a = await oursSnapshot(dir('ours/mixed'), dir('data/mixed'), cache.mixed);
  record({ ...case3a, tool: 'ours' }, ours3a);
  const restic3a = await resticBackup(dir('restic/mixed'), dir('data/mixed'));
  record({ ...case3a, tool: 'restic' }, restic3a);
  const restic3b = await resticBackup(dir('restic/small'), dir('data/small'));
  record({ ...case3b, tool: 'restic' }, restic3b);
  const ours3b = await oursSnapshot(dir('ours/small'), dir('data/small'), cache.small);
  record({ ...case3b, tool: 'ours' }, ours3b);
  for (const [id, stats, expected] of /** @type {const} */ ([
    ['3a', ours3a.stats, changedMixed.length],
    ['3b', ours3b.stats, changedSmall.length],
  ])) {
    if (stats.filesRead !== expected)
      problems.push(
        `case ${id}: our snapshot read ${String(stats.filesRead)} files, ${String(expected)} changed`,
      );
  }
  const resticChanged = (/** @type {Record<string, unknown> | undefined} */ summary) =>
    summary?.files_changed;
  for (const [id, summary, expected] of /** @type {const} */ ([
    ['3a', restic3a.summary, changedMixed.length],
    ['3b', restic3b.summary, changedSmall.length],
  ])) {
    const seen = resticChanged(summary);
    if (seen !== undefined && seen !== expected)
      problems.push(`case ${id}: restic saw ${String(seen)} changed files, ${String(expected)} changed`);
  }
  rmSync(dir('data/mixed'), { recursive: true, force: true });
  rmSync(dir('data/small'), { recursive: true, force: true });

  // Our goals: a 100,000-file tree.
  const manyStarted = performance.now();
  await generateMany(dir('data/many'));
  log(
    `generated the ${String(MANY.folders * MANY.files)}-file tree in ${((performance.now() - manyStarted) / 1000).toFixed(1)} s`,
  );
  const manySize = await treeSize(dir('data/many'));
  const many = { dataBytes: manySize.bytes, files: manySize.files };
  await mkdir(dir('restic/many'), { recursive: true });
  await restic(['init', '--repo', dir('restic/many')]);
  const manyCache = new SnapshotCache();
  const manyRepo = await timed(async () => LocalRepository.open(dir('ours/many')));
  const repository = manyRepo.result;
  const manyBytes = () => folderBytes(dir('ours/many'));

  const first = await timed(async () =>
    snapshot(dir('data/many'), repository, { cache: manyCache, ...BENEATH }),
  );
  record(
    { id: 'M1', label: '100,000 files, first snapshot', tool: 'ours', ...many },
    { ...first, storedBytes: await manyBytes() },
  );
  const resticFirst = await resticBackup(dir('restic/many'), dir('data/many'));
  record({ id: 'M1', label: '100,000 files, first snapshot', tool: 'restic', ...many }, resticFirst);

  // One file changed; a full rescan by both.
  const touched = [
    'f017/x0421.txt',
    'f042/x0007.txt',
    'f063/x0999.txt',
    'f080/x0500.txt',
    'f099/x0123.txt',
    'f000/x0000.txt',
  ];
  await touchOne(dir('data/many'), touched[0] ?? '', 0);
  const storedBeforeRescan = await manyBytes();
  const rescan = await timed(async () =>
    snapshot(dir('data/many'), repository, { cache: manyCache, ...BENEATH }),
  );
  const storedAfterRescan = await manyBytes();
  record(
    { id: 'M2', label: '100,000 files, 1 changed, full rescan', tool: 'ours', ...many },
    { ...rescan, storedBytes: storedAfterRescan, addedBytes: storedAfterRescan - storedBeforeRescan },
  );
  if (rescan.result.stats.filesRead !== 1)
    problems.push(
      `100,000 files, full rescan: read ${String(rescan.result.stats.filesRead)} files, 1 changed`,
    );
  const resticRescan = await resticBackup(dir('restic/many'), dir('data/many'));
  record({ id: 'M2', label: '100,000 files, 1 changed, full rescan', tool: 'restic', ...many }, resticRescan);

  // One file changed, with the watcher's hint: the goal.
  const hinted = [];
  let lastHintedRoot = '';
  for (let n = 1; n <= HINTED_RUNS; n++) {
    const path = touched[n] ?? '';
    await touchOne(dir('data/many'), path, n);
    const result = await timed(async () =>
      snapshot(dir('data/many'), repository, { cache: manyCache, changed: [path], ...BENEATH }),
    );
    hinted.push(result.ms);
    lastHintedRoot = result.result.root;
    if (result.result.stats.filesRead !== 1)
      problems.push(
        `100,000 files, hinted snapshot ${String(n)}: read ${String(result.result.stats.filesRead)} files, 1 changed`,
      );
    if (result.result.stats.files !== manySize.files)
      problems.push(
        `100,000 files, hinted snapshot ${String(n)}: counted ${String(result.result.stats.files)} files`,
      );
  }
  const hintedMs = median(hinted);
  const storedAfterHinted = await manyBytes();
  record(
    {
      id: 'M3',
      label: `100,000 files, 1 changed, changed: [path] (median of ${String(HINTED_RUNS)})`,
      tool: 'ours',
      ...many,
    },
    {
      ms: hintedMs,
      cpuPercent: null,
      storedBytes: storedAfterHinted,
      addedBytes: Math.round((storedAfterHinted - storedAfterRescan) / HINTED_RUNS),
    },
  );

  // The hinted snapshots must give the tree a full rescan gives.
  const check = await timed(async () =>
    snapshot(dir('data/many'), repository, { cache: manyCache, ...BENEATH }),
  );
  record({ id: 'M4', label: '100,000 files, nothing changed, full rescan', tool: 'ours', ...many }, check);
  if (check.result.root !== lastHintedRoot)
    problems.push('100,000 files: the hinted snapshot and a full rescan gave different trees');
  if (check.result.stats.filesRead !== 0)
    problems.push(`100,000 files, unchanged rescan: read ${String(check.result.stats.filesRead)} files`);

  const ratio = (/** @type {string[]} */ ids) => {
    const sum = (/** @type {'ours' | 'restic'} */ tool) =>
      rows.filter((r) => ids.includes(r.id) && r.tool === tool).reduce((total, r) => total + r.ms, 0);
    return round2(sum('ours') / sum('restic'));
  };

  return {
    date: new Date().toISOString(),
    machine: describeMachine(loadAverageAtStart),
    restic: { version: resticVersion, repositoryVersion: resticRepositoryVersion ?? null },
    data: {
      generationMs: Math.round(generation.ms),
      mixed: { ...mixedSize, kinds },
      small: smallSize,
      changed: { mixed: changedMixed.length, small: changedSmall.length },
      many: manySize,
    },
    rows,
    ratios: {
      1: ratio(['1']),
      2: ratio(['2']),
      3: ratio(['3a', '3b']),
      '3a': ratio(['3a']),
      '3b': ratio(['3b']),
      R1: ratio(['R1']),
      R2: ratio(['R2']),
      M1: ratio(['M1']),
      M2: ratio(['M2']),
    },
    goals: {
      throughput: {
        description: 'first snapshots (cases 1 and 2) at least as fast as restic',
        met: ratio(['1']) <= 1 && ratio(['2']) <= 1,
      },
      hinted: {
        description: `100,000 files, one changed, snapshot with changed: [path] ≤ ${String(HINTED_GOAL_MS)} ms`,
        medianMs: Math.round(hintedMs * 10) / 10,
        runsMs: hinted.map((ms) => Math.round(ms * 10) / 10),
        met: hintedMs <= HINTED_GOAL_MS,
      },
    },
    problems,
  };
}

/** @param {number | null} bytes */
const formatBytes = (bytes) => (bytes === null ? '-' : bytes.toLocaleString('en-US'));

/** @param {Awaited<ReturnType<typeof run>>} report */
function print(report) {
  const { machine, data } = report;
  const lines = [
    '',
    `uPC image benchmark — ${String(machine.cpus)} × ${machine.cpuModel}, ${machine.os}, Node ${machine.node}, ` +
      `${report.restic.version} (repository v${String(report.restic.repositoryVersion)}); ` +
      `1-min load average ${String(machine.loadAverageAtStart)} at start, ${String(machine.loadAverageAtEnd)} at end`,
    `data: case 1 ${String(data.mixed.files)} files, ${formatBytes(data.mixed.bytes)} B; case 2 ${String(data.small.files)} files, ` +
      `${formatBytes(data.small.bytes)} B; case 3 changed ${String(data.changed.mixed)} + ${String(data.changed.small)} files`,
    '',
    table(
      [
        ['case', 'what', 'tool', 'time s', 'MB/s', 'CPU', 'stored bytes', 'added bytes'],
        ...report.rows.map((r) => [
          r.id,
          r.label,
          r.tool,
          r.ms < 1000 ? (r.ms / 1000).toFixed(4) : (r.ms / 1000).toFixed(2),
          (r.dataBytes / 1e6 / (r.ms / 1000)).toFixed(1),
          r.cpuPercent === null ? '-' : `${String(r.cpuPercent)} %`,
          formatBytes(r.storedBytes),
          formatBytes(r.addedBytes),
        ]),
      ],
      3,
    ),
    '',
    "(MB/s = the data set's size / time, 10^6 bytes; CPU = user + system time / wall time, 100 % = one core)",
    '',
    ...Object.entries(report.ratios).map(
      ([name, value]) => `ratio case ${name}: ours/restic = ${value.toFixed(2)}`,
    ),
    '',
    `goal: ${report.goals.throughput.description}: ${report.goals.throughput.met ? 'met' : 'NOT met'}`,
    `goal: ${report.goals.hinted.description}: median ${String(report.goals.hinted.medianMs)} ms ` +
      `(${report.goals.hinted.runsMs.join(', ')}): ${report.goals.hinted.met ? 'met' : 'NOT met'}`,
    '',
    `JSON: ${RESULT_FILE}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

/** Stops any child still running and removes the work folder. */
async function cleanup() {
  // The whole group of each: restic runs under sh, and may outlive it by a moment.
  const running = [...children];
  for (const child of running) signalGroup(child, 'SIGTERM');
  for (let waited = 0; children.size > 0 && waited < 3000; waited += 50)
    await new Promise((resolve) => setTimeout(resolve, 50));
  for (const child of running) signalGroup(child, 'SIGKILL');
  // Synchronous, so that nothing of ours runs in between; retried, since an abandoned snapshot may
  // still have a write in flight in libuv's pool.
  for (let attempt = 0; workDir !== undefined && existsSync(workDir) && attempt < 5; attempt++) {
    rmSync(workDir, { recursive: true, force: true, maxRetries: 3 });
    if (existsSync(workDir)) await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

await runBench({
  deadlineMs: DEADLINE_MS,
  deadlineText: `${String(DEADLINE_MS / 60_000)} minutes`,
  resultFile: RESULT_FILE,
  run,
  print,
  cleanup,
  onAbort: () => {
    aborted = true;
  },
});
