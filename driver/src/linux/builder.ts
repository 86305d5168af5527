/**
 * The session builder: a short-lived process started in a mount namespace of its own
 * (`unshare --mount`), still real root. It builds every mount of the session there — idmapped
 * copies of the layers, overlays, binds, tmpfs, masks, the host made read-only — then has the
 * native helper start the session's init, which joins the session's user namespace and takes a
 * locked copy of these mounts. The builder then exits; its namespace goes with it.
 *
 * Reads a SessionPlan (JSON) on stdin, writes a BuildReport (JSON) on stdout; on failure, one line
 * on stderr and exit status 1.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { type BuildReport, parsePlan, READY_LINE, type SessionPlan } from './plan.js';
import { openBeneath, type Operation, perform, preload } from './privileged.js';

class BuildError extends Error {}

function must(operation: Operation): void {
  const result = perform(operation);
  if (!result.ok) throw new BuildError(result.message);
}

function isWithin(path: string, folder: string): boolean {
  return folder === '/' || path === folder || path.startsWith(`${folder}/`);
}

/** The mount points of this namespace, from /proc/self/mountinfo (octal escapes decoded). */
function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) =>
      (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, o: string) =>
        String.fromCharCode(parseInt(o, 8)),
      ),
    );
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A `*` in the last part of a mask matches any name in that folder. */
function expand(mask: string): string[] {
  const name = mask.slice(mask.lastIndexOf('/') + 1);
  if (!name.includes('*')) return existsSync(mask) ? [mask] : [];
  const folder = dirname(mask);
  const test = new RegExp(
    `^${name
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  try {
    return readdirSync(folder)
      .filter((entry) => test.test(entry))
      .map((entry) => join(folder, entry));
  } catch {
    return [];
  }
}

/** Starts the helper and reads the lines it prints (its pid, then `ready` for `start`). */
function runHelper(
  helper: string,
  args: string[],
  lines: number,
): Promise<{ lines: string[]; close: () => void }> {
  return new Promise((resolve, reject) => {
    const child = spawn(helper, args, { stdio: ['pipe', 'pipe', 'inherit'], argv0: 'upc-ns' });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (data: string) => {
      out += data;
      const got = out.split('\n').filter((l) => l !== '');
      if (got.length >= lines) {
        resolve({
          lines: got,
          close: () => {
            child.stdin.end();
          },
        });
      }
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (out.split('\n').filter((l) => l !== '').length < lines) {
        reject(new BuildError(`${helper} ${args[0] ?? ''} failed (exit ${String(code)})`));
      }
    });
  });
}

async function build(plan: SessionPlan): Promise<BuildReport> {
  const started = performance.now();
  const warnings: string[] = [];
  must({ op: 'make-private' });

  // The session's user namespace, held open while its mounts are mapped through it.
  // Held open: the mounts below may cover the helper's folder (an agent installed under /tmp), and
  // the session's init is started from it last of all.
  const helperFd = openSync(plan.helper, 'r');
  const helper = `/proc/${String(process.pid)}/fd/${String(helperFd)}`;
  const holder = await runHelper(helper, ['userns', String(plan.idBase), String(plan.idCount)], 1);
  const usernsPath = `/proc/${holder.lines[0] ?? ''}/ns/user`;
  const userns = openSync(usernsPath, 'r');
  try {
    const hostMounts = mountPoints();
    const emptyFile = join(plan.stageDir, 'empty'); // what a masked file shows
    closeSync(openSync(emptyFile, 'w', 0o444));

    // Idmapped copies: the session folder (upper layers and forwarded folders) and each cow
    // rule's host folder, so that what root owns on disk, the session's root owns inside.
    const work = join(plan.stageDir, 'work');
    mkdirSync(work, { recursive: true });
    must({ op: 'idmap', source: plan.sessionDir, target: work, usernsFd: userns });
    const lowers = new Map<string, string>();
    plan.layers.forEach((layer, index) => {
      if (layer.kind !== 'cow') return;
      if (!isDirectory(layer.target)) {
        warnings.push(`cow ${layer.target}: not a folder on this PC; left out`);
        return;
      }
      const lower = join(plan.stageDir, `lower-${index}`);
      mkdirSync(lower, { recursive: true });
      must({ op: 'idmap', source: layer.target, target: lower, usernsFd: userns });
      lowers.set(layer.target, lower);
    });

    // The host's mounts are read-only in the session, those of host rules included (nothing a
    // session writes stays on the PC), but for the folders the PC lets sessions write to.
    for (const point of new Set(hostMounts)) {
      if (plan.writable.some((folder) => isWithin(point, folder) && folder !== '/')) continue;
      if (isWithin(point, plan.stageDir)) continue;
      must({ op: 'remount-readonly', target: point });
    }

    for (const scaffold of plan.scaffolds) {
      if (!isDirectory(scaffold.target)) continue;
      must({ op: 'tmpfs', target: scaffold.target, mode: 0o755 });
      for (const point of scaffold.mountPoints) mkdirSync(point, { recursive: true, mode: 0o755 });
    }

    // The layers are reached from the session folder's idmapped copy by descriptors opened without
    // following a link: a layer that is not a folder (an image whose `home` is a link to `/`) is
    // refused, never bound. The mounts below take the folders by their descriptors' names.
    const workFd = openSync(work, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    const held: number[] = [workFd];
    const layerFolder = (relative: string): string => {
      let fd: number;
      try {
        fd = openBeneath(workFd, relative, constants.O_RDONLY | constants.O_DIRECTORY, 0);
      } catch (error) {
        throw new BuildError(
          `the session's ${relative} is not a folder (${(error as NodeJS.ErrnoException).code ?? String(error)}): refused`,
        );
      }
      held.push(fd);
      return `/proc/self/fd/${String(fd)}`;
    };
    const mounts = [
      ...plan.layers.map((layer) => ({ target: layer.target, layer })),
      ...plan.ephemeral.map((target) => ({ target, layer: undefined })),
    ].sort((a, b) => a.target.split('/').length - b.target.split('/').length);
    for (const { target, layer } of mounts) {
      if (!isDirectory(target)) {
        warnings.push(`${layer?.kind ?? 'ephemeral'} ${target}: not a folder on this PC; left out`);
        continue;
      }
      if (!layer) {
        must({ op: 'tmpfs', target, mode: 0o1777 });
      } else if (layer.kind === 'forward') {
        must({ op: 'bind', source: layerFolder(layer.dir), target });
      } else {
        const lower = lowers.get(target);
        if (!lower || !layer.work) continue;
        must({
          op: 'overlay',
          lower,
          upper: layerFolder(layer.dir),
          work: layerFolder(layer.work),
          target,
          creatorId: plan.idBase,
        });
      }
    }
    for (const fd of held) closeSync(fd);

    // Kernel objects of its own: POSIX shared memory here, SysV and message queues by the IPC
    // namespace (the host's queue folder is hidden).
    if (isDirectory('/dev/shm')) must({ op: 'tmpfs', target: '/dev/shm', mode: 0o1777 });
    if (isDirectory('/dev/mqueue')) must({ op: 'tmpfs', target: '/dev/mqueue', mode: 0o755, readOnly: true });

    // Files first: the empty file they show is in the registry's folder, itself hidden next. Then
    // folders, outer ones first; what lies in a folder already hidden is gone with it (the
    // session's own folder is inside the agent's home).
    const masks = plan.masks.flatMap(expand);
    for (const mask of masks.filter((m) => !isDirectory(m)))
      must({ op: 'bind', source: emptyFile, target: mask, readOnly: true });
    const hidden: string[] = [];
    const depth = (path: string) => path.split('/').length;
    for (const mask of masks.filter(isDirectory).sort((a, b) => depth(a) - depth(b))) {
      if (hidden.some((folder) => isWithin(mask, folder))) continue;
      must({ op: 'tmpfs', target: mask, mode: 0o755, readOnly: true, sizeBytes: 4096 });
      hidden.push(mask);
    }

    const session = await runHelper(helper, ['start', usernsPath, plan.hostname], 2);
    const init = Number(session.lines[0]);
    return { init, warnings, ms: Math.round((performance.now() - started) * 10) / 10 };
  } finally {
    closeSync(userns);
    closeSync(helperFd);
    holder.close();
  }
}

async function main(): Promise<void> {
  preload(); // started ahead of time, it is ready when the plan comes
  process.stdout.write(`${READY_LINE}\n`);
  let input = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) input += chunk as string;
  const plan = parsePlan(JSON.parse(input));
  const report = await build(plan);
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`upc session builder: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
