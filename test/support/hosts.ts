import { type ChildProcess, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import { Pc, runCommand, UPC, type UpcResult } from './agent.js';

/**
 * A simulated PC with its own system folders: a process holding a mount namespace of its own in
 * which `/opt` and `/usr/local` are this PC's (bind mounts of folders made for it), so "another
 * PC" really has another `/opt`. `upc` runs inside it through nsenter, isolated (the driver), and
 * everything the test checks about the host (hashes, mounts) is read inside it too.
 */
export class SimulatedHost {
  private readonly pcs: Pc[] = [];

  private constructor(
    readonly name: string,
    readonly root: string,
    private readonly holder: ChildProcess,
    readonly pid: number,
  ) {}

  /**
   * `files` are this PC's own, by absolute path under /opt, /usr/local or /etc (e.g.
   * `{ '/opt/tool/bin/tool': '#!/bin/sh\necho B' }`); files ending in `/bin/...` are executable,
   * those in /etc/ssh readable by root only (as host keys are). With files under /etc, the PC gets
   * an /etc of its own: a copy of this machine's, plus those files.
   */
  static async create(name: string, files: Record<string, string> = {}): Promise<SimulatedHost> {
    const root = await mkdtemp(join(tmpdir(), `upc-host-${name}-`));
    const own: Record<string, string> = { '/opt/': 'opt', '/usr/local/': 'usr-local', '/etc/': 'etc' };
    for (const folder of ['opt', 'usr-local']) await mkdir(join(root, folder), { recursive: true });
    const ownEtc = Object.keys(files).some((p) => p.startsWith('/etc/'));
    if (ownEtc)
      await cp('/etc', join(root, 'etc'), {
        recursive: true,
        preserveTimestamps: true,
        verbatimSymlinks: true,
      });
    for (const [path, content] of Object.entries(files)) {
      const prefix = Object.keys(own).find((p) => path.startsWith(p));
      if (!prefix)
        throw new Error(`a simulated PC's own files are under ${Object.keys(own).join(', ')}, not ${path}`);
      const local = join(root, own[prefix] ?? '', path.slice(prefix.length));
      await mkdir(join(local, '..'), { recursive: true });
      const mode = path.includes('/bin/') ? 0o755 : path.startsWith('/etc/ssh/') ? 0o600 : 0o644;
      await writeFile(local, content, { mode });
    }
    const script = [
      `mount --bind ${root}/opt /opt`,
      `mount --bind ${root}/usr-local /usr/local`,
      ...(ownEtc ? [`mount --bind ${root}/etc /etc`] : []),
      'echo ready',
      'exec sleep infinity',
    ].join(' && ');
    const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      holder.once('error', reject);
      holder.once('exit', (code) => {
        reject(new Error(`the simulated PC ${name} did not start (exit ${String(code)})`));
      });
      holder.stdout.once('data', () => {
        resolve();
      });
    });
    if (holder.pid === undefined) throw new Error('no pid');
    return new SimulatedHost(name, root, holder, holder.pid);
  }

  /** Runs a command inside this PC's mount namespace (as the host's root: not in a session). */
  exec(argv: string[], input = ''): Promise<UpcResult> {
    return runCommand(
      ['nsenter', '--target', String(this.pid), '--mount', '--', ...argv],
      { PATH: process.env.PATH ?? '' },
      input,
    );
  }

  /**
   * A PC of the test's on this host: `upc` started in this PC's mount namespace, isolated. Its agent
   * home is where agents keep theirs (in root's home, as the default ~/.upc is), not in /tmp,
   * which sessions get empty: the driver must hide it from them.
   */
  async pc(server: string): Promise<Pc> {
    const pc = await Pc.create(this.name, server, homedir());
    pc.prefix = ['nsenter', '--target', String(this.pid), '--mount', '--'];
    pc.isolation = 'auto';
    this.pcs.push(pc);
    return pc;
  }

  /** This PC's mount table (mount ids, points and options) as its processes see it. */
  async mountTable(): Promise<string> {
    return readFile(`/proc/${this.pid}/mountinfo`, 'utf8');
  }

  /**
   * A fingerprint of this PC's system folders: the content of every file in /etc, /opt,
   * /usr/local and /home, and the metadata (type, mode, owner, size, mtime) of everything in /usr.
   */
  async fingerprint(): Promise<string> {
    const result = await this.exec([process.execPath, FINGERPRINT]);
    if (result.code !== 0) throw new Error(`fingerprint failed: ${result.stderr}`);
    return result.stdout.trim();
  }

  /** Ends what this PC's agents left running (their sessions included) and removes its folders. */
  async dispose(): Promise<void> {
    for (const pc of this.pcs.splice(0)) await pc.dispose();
    this.holder.kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await rm(this.root, { recursive: true, force: true });
  }
}

const FINGERPRINT = new URL('./fingerprint.js', import.meta.url).pathname;

/** Simulated PCs with their own system folders, disposed of after each test. */
export function simulatedHosts(): (name: string, files?: Record<string, string>) => Promise<SimulatedHost> {
  const made: SimulatedHost[] = [];
  afterEach(async () => {
    for (const host of made.splice(0)) await host.dispose();
  });
  return async (name, files) => {
    const host = await SimulatedHost.create(name, files);
    made.push(host);
    return host;
  };
}

/**
 * The pids of every running process in the PID namespace whose link is `pidNamespace` (`pid:[N]`).
 * An exited process waiting to be reaped (a zombie) is not running: on this VM the host's pid 1
 * does not reap orphans, so the session's init, once ended, stays one.
 */
export async function processesIn(pidNamespace: string): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if ((await readlink(`/proc/${name}/ns/pid`)) !== pidNamespace) continue;
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z') out.push(Number(name));
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return out;
}

/** Runs a shell command in the PC's session (as the user, or as the workspace's root); it must succeed. */
export async function sh(pc: Pc, script: string, admin = false): Promise<string> {
  const result = await pc.run(['exec', ...(admin ? ['--admin'] : []), '--', 'sh', '-c', script]);
  expect(result.code, `${script}\n${result.stderr}`).toBe(0);
  return result.stdout;
}

export { UPC };
