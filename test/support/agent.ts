import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, expect } from 'vitest';

export const UPC = fileURLToPath(new URL('../../apps/agent/bin/upc.js', import.meta.url));

export interface UpcResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end and collects what it said; `input` is its standard input. */
export function runCommand(argv: string[], env: Record<string, string>, input = ''): Promise<UpcResult> {
  return new Promise((resolve, reject) => {
    const [program, ...rest] = argv as [string, ...string[]];
    const child = spawn(program, rest, { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // it may end before reading its input
    child.stdin.end(input);
  });
}

/**
 * Runs the real `upc` command (built by `npm test`'s build step) and collects what it said;
 * `prefix` starts it through another command (nsenter, for a PC of test/support/hosts.ts).
 */
export function runUpc(
  args: string[],
  env: Record<string, string> = {},
  input = '',
  prefix: string[] = [],
): Promise<UpcResult> {
  return runCommand(
    [...prefix, process.execPath, UPC, ...args],
    { PATH: process.env.PATH ?? '', UPC_ISOLATION: 'none', ...env },
    input,
  );
}

/**
 * Starts `upc` in a process group of its own (so a test can signal the group, as a terminal's
 * Ctrl-C does) and collects what it says; `done` resolves when it has exited.
 */
export function startUpc(
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; done: Promise<UpcResult> } {
  const child = spawn(process.execPath, [UPC, ...args], {
    env: { PATH: process.env.PATH ?? '', UPC_ISOLATION: 'none', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<UpcResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
  return { child, done };
}

/** Whether a process runs (a zombie counts as gone). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** A simulated PC: its own agent home, device name and server. */
export class Pc {
  /**
   * How `upc` is started on this PC: by default directly, its sessions plain folders
   * (`UPC_ISOLATION=none`, what the agent tests before the driver expect); a PC of
   * test/support/hosts.ts runs it in a mount namespace of its own, isolated.
   */
  prefix: string[] = [];
  isolation: 'none' | 'auto' = 'none';

  private constructor(
    readonly home: string,
    readonly name: string,
    public server: string,
  ) {}

  /** A PC whose agent home is a new folder in `parent` (the temporary folder by default). */
  static async create(name: string, server: string, parent = tmpdir()): Promise<Pc> {
    return new Pc(await mkdtemp(join(parent, `upc-pc-${name}-`)), name, server);
  }

  get env(): Record<string, string> {
    return {
      UPC_HOME: this.home,
      UPC_SERVER: this.server,
      UPC_DEVICE_NAME: this.name,
      UPC_ISOLATION: this.isolation,
    };
  }

  /**
   * The workspace's home folder in this PC's session, where its session record says its layers are
   * (in memory by default, else in the agent's home).
   */
  get files(): string {
    const record = JSON.parse(readFileSync(join(this.home, 'session', 'session.json'), 'utf8')) as {
      path: string;
    };
    return join(record.path, 'home');
  }

  run(args: string[], input = '', env: Record<string, string> = {}): Promise<UpcResult> {
    return runUpc(args, { ...this.env, ...env }, input, this.prefix);
  }

  /** Runs `upc`, expecting exit 0; returns stdout parsed as JSON when `--json` was given. */
  async ok(args: string[], input = ''): Promise<unknown> {
    const result = await this.run(args, input);
    if (result.code !== 0) {
      throw new Error(
        `upc ${args.join(' ')} exited ${String(result.code)}: ${result.stderr}${result.stdout}`,
      );
    }
    return args.includes('--json') ? JSON.parse(result.stdout) : result.stdout;
  }

  login(user: string, extra: string[] = []): Promise<UpcResult> {
    return this.run(['login', '--user', user, '--password-stdin', '--json', ...extra], `${user}-password\n`);
  }

  /** The session daemon's pid, if one was started. */
  async daemonPid(): Promise<number | undefined> {
    try {
      return (
        JSON.parse(await readFile(join(this.home, 'session', 'daemon.json'), 'utf8')) as { pid: number }
      ).pid;
    } catch {
      return undefined;
    }
  }

  /** Where the agent keeps this PC's session layers in memory (the agent's naming: state.ts). */
  get memoryLayers(): string {
    return join(
      '/dev/shm',
      `upc-layers-${createHash('sha256').update(this.home).digest('hex').slice(0, 16)}`,
    );
  }

  /** Stops whatever this PC left running and removes its agent home (and its layers in memory). */
  async dispose(): Promise<void> {
    await this.kill();
    await rm(this.memoryLayers, { recursive: true, force: true, maxRetries: 3 });
    await rm(this.home, { recursive: true, force: true, maxRetries: 3 });
  }

  /** Stops whatever this PC left running (tests end with or without a logout). */
  async kill(): Promise<void> {
    // An isolated session's init: killing it ends every process of the session.
    const session = await readFile(join(this.home, 'session', 'session.json'), 'utf8').catch(() => '{}');
    const ns = (JSON.parse(session) as { namespace?: { init: number; claim: string } }).namespace;
    if (ns) {
      try {
        process.kill(ns.init, 'SIGKILL');
      } catch {
        // already gone
      }
      await rm(ns.claim, { force: true });
    }
    const pid = await this.daemonPid();
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Polls `check` until it returns something other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  what = 'the condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** Every regular file under `root`, as paths relative to it. */
export async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string) => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names.sort()) {
      const stats = await lstat(join(dir, name));
      if (stats.isDirectory()) await walk(join(dir, name), `${prefix}${name}/`);
      else if (stats.isFile()) out.push(prefix + name);
    }
  };
  await walk(root, '');
  return out;
}

/** Every path under `root` with its type and content: file sha-256 and size, link target. */
export async function contentListing(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, prefix: string) => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const stats = await lstat(path);
      const key = prefix + name;
      if (stats.isSymbolicLink()) out[key] = `link -> ${await readlink(path)}`;
      else if (stats.isDirectory()) {
        out[key] = `dir ${(stats.mode & 0o777).toString(8)}`;
        await walk(path, `${key}/`);
      } else {
        const sha = createHash('sha256')
          .update(await readFile(path))
          .digest('hex');
        out[key] = `file ${(stats.mode & 0o777).toString(8)} ${stats.size} ${sha}`;
      }
    }
  };
  await walk(root, '');
  return out;
}

/**
 * Simulated PCs for one test file: `pc(name)` makes one on the server `url()` names (or on
 * `server`), and every PC made is disposed of after each test (daemon killed, home removed).
 */
export function simulatedPcs(url: () => string): (name: string, server?: string) => Promise<Pc> {
  const made: Pc[] = [];
  afterEach(async () => {
    for (const pc of made.splice(0)) await pc.dispose();
  });
  return async (name, server) => {
    const pc = await Pc.create(name, server ?? url());
    made.push(pc);
    return pc;
  };
}

/** A row of `upc history --json`. */
export interface HistoryRow {
  id: string;
  kind: string;
  device: string | null;
  time: string;
  head: boolean;
  parentId: string | null;
}

/** The workspace's versions, newest first, as `upc history --json` on that PC lists them. */
export const history = async (on: Pc) => (await on.ok(['history', '--json'])) as HistoryRow[];

/** `upc login --json` for `user` on the PC, which must succeed; its report, read as `T`. */
export async function loginOk<T>(on: Pc, user: string, extra: string[] = []): Promise<T> {
  const result = await on.login(user, extra);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}

/** Logs out and checks that the daemon has ended, the session is wiped and no layers stay in memory. */
export async function logoutOk(on: Pc, extra: string[] = []): Promise<{ kept: string | null }> {
  const pid = await on.daemonPid();
  const result = await on.run(['logout', '--json', ...extra]);
  expect(result.code, result.stderr).toBe(0);
  if (pid !== undefined) expect(isAlive(pid)).toBe(false);
  const gone = (path: string) =>
    lstat(path).then(
      () => false,
      () => true,
    );
  expect(await gone(join(on.home, 'session'))).toBe(true);
  expect(await gone(on.memoryLayers)).toBe(true);
  return JSON.parse(result.stdout) as { kept: string | null };
}
