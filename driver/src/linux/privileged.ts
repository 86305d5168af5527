import { createRequire } from 'node:module';
import { endianness } from 'node:os';

/**
 * Every privileged call uPC makes on Linux, and the only place that calls libc (through koffi).
 * The set is closed: `perform` takes one of the `Operation`s below and returns a `Result`; it never
 * throws for a failed call. The steps that need a single-threaded process (joining a user
 * namespace, starting a PID namespace) are the native helper's (`driver/native/upc-ns.c`), which
 * `helper.ts` runs.
 *
 * Mount operations only make sense in a process of its own mount namespace (the session builder);
 * the file operations (whiteouts, opaque folders, the VT switch) are used by the agent itself.
 */
export type Operation =
  /** Bind `source` over `target` (not recursive), optionally read-only. */
  | { op: 'bind'; source: string; target: string; readOnly?: boolean }
  /**
   * Attach a copy of the mount at `source` at `target`, its ids mapped through the user namespace
   * open as `usernsFd`: a file owned by id N on disk is owned by N inside that namespace.
   */
  | { op: 'idmap'; source: string; target: string; usernsFd: number }
  /**
   * An overlay at `target`: `lower` read-only beneath, every change in `upper` (work: `work`).
   * `creatorId` is the host id the overlay acts as when it writes its upper layer (its own folders,
   * copy-ups): the id that an idmapped upper maps to 0 on disk.
   */
  | { op: 'overlay'; lower: string; upper: string; work: string; target: string; creatorId: number }
  /** A fresh tmpfs at `target`. */
  | { op: 'tmpfs'; target: string; mode: number; sizeBytes?: number; readOnly?: boolean }
  /** Make the mount at `target` read-only, nothing else changed (not recursive). */
  | { op: 'remount-readonly'; target: string }
  /** Stop propagation of mount events between this namespace and the host, for every mount. */
  | { op: 'make-private' }
  /** Unmount `target` (lazily: a busy mount goes once its last user does). */
  | { op: 'unmount'; target: string }
  /** An overlayfs whiteout (a 0/0 character device) at `path`. */
  | { op: 'whiteout'; path: string }
  /** Mark the folder at `path` overlay-opaque. */
  | { op: 'set-opaque'; path: string }
  /** Show virtual terminal `vt` (what chvt does). */
  | { op: 'activate-vt'; vt: number };

export type Result = { ok: true } | { ok: false; errno: number; code: string; message: string };

const AT_FDCWD = -100;
const AT_EMPTY_PATH = 0x1000;
const O_CLOEXEC = 0o2000000;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_PATH = 0o10000000;
const OPEN_TREE_CLONE = 1;
const MOUNT_ATTR_RDONLY = 0x1;
const MOUNT_ATTR_IDMAP = 0x100000;
const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
const FSOPEN_CLOEXEC = 1;
const FSCONFIG_SET_STRING = 1;
const FSCONFIG_CMD_CREATE = 6;
const FSMOUNT_CLOEXEC = 1;
const MS_RDONLY = 0x1;
const MS_NOSUID = 0x2;
const MS_NODEV = 0x4;
const MS_REMOUNT = 0x20;
const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_PRIVATE = 0x40000;
const MNT_DETACH = 2;
const S_IFCHR = 0o20000;
const VT_ACTIVATE = 0x5606;
const VT_WAITACTIVE = 0x5607;
const OPAQUE_XATTR = 'trusted.overlay.opaque';
const SYS_OPENAT2 = 437; // the same number on every architecture since Linux 5.6
const RESOLVE_NO_XDEV = 0x01;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_NO_SYMLINKS = 0x04;
const RESOLVE_BENEATH = 0x08;
const ENOSYS = 38;

/** libc, loaded on first use (so that merely importing the driver costs nothing). */
interface Libc {
  mount(
    source: string | null,
    target: string,
    type: string | null,
    flags: number,
    data: string | null,
  ): number;
  umount2(target: string, flags: number): number;
  open_tree(dirfd: number, path: string, flags: number): number;
  mount_setattr(dirfd: number, path: string, flags: number, attr: MountAttr, size: number): number;
  move_mount(fromFd: number, fromPath: string, toFd: number, toPath: string, flags: number): number;
  fsopen(type: string, flags: number): number;
  fsconfig(fd: number, cmd: number, key: string | null, value: string | null, aux: number): number;
  fsmount(fd: number, flags: number, attrs: number): number;
  close(fd: number): number;
  setfsuid(id: number): number;
  setfsgid(id: number): number;
  capget(header: Buffer, data: Buffer): number;
  capset(header: Buffer, data: Buffer): number;
  open(path: string, flags: number): number;
  ioctl(fd: number, request: number, argument: number): number;
  mknod(path: string, mode: number, dev: bigint): number;
  lsetxattr(path: string, name: string, value: Buffer, size: number, flags: number): number;
  fgetxattr(fd: number, name: string, value: Buffer, size: number): number;
  openat2(root: number, path: string, how: Buffer): number;
  strerror(errno: number): string;
  errno(): number;
}

interface MountAttr {
  attr_set: bigint;
  attr_clr: bigint;
  propagation: bigint;
  userns_fd: bigint;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') throw new Error('the Linux driver runs on Linux only');
  // koffi is CommonJS with a native part; loaded lazily so other platforms never touch it.
  const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
  const lib = koffi.load('libc.so.6');
  koffi.struct('upc_mount_attr', {
    attr_set: 'uint64',
    attr_clr: 'uint64',
    propagation: 'uint64',
    userns_fd: 'uint64',
  });
  const fn = (signature: string) => lib.func(signature) as (...args: unknown[]) => number;
  const mount = fn('int mount(const char *, const char *, const char *, unsigned long, const char *)');
  const umount2 = fn('int umount2(const char *, int)');
  const openTree = fn('int open_tree(int, const char *, unsigned int)');
  const mountSetattr = fn('int mount_setattr(int, const char *, unsigned int, upc_mount_attr *, size_t)');
  const moveMount = fn('int move_mount(int, const char *, int, const char *, unsigned int)');
  const fsopen = fn('int fsopen(const char *, unsigned int)');
  const fsconfig = fn('int fsconfig(int, unsigned int, const char *, const char *, int)');
  const fsmount = fn('int fsmount(int, unsigned int, unsigned int)');
  const close = fn('int close(int)');
  const setfsuid = fn('int setfsuid(uint32_t)');
  const setfsgid = fn('int setfsgid(uint32_t)');
  const capget = fn('int capget(void *, void *)');
  const capset = fn('int capset(void *, void *)');
  const open = fn('int open(const char *, int)');
  const ioctl = fn('int ioctl(int, unsigned long, unsigned long)');
  const mknod = fn('int mknod(const char *, uint32_t, uint64_t)');
  const lsetxattr = fn('int lsetxattr(const char *, const char *, const void *, size_t, int)');
  const fgetxattr = fn('long fgetxattr(int, const char *, void *, size_t)');
  // syscall(2) is variadic, but its arguments are all passed as longs: declared with fixed ones, a
  // call skips koffi's per-call typing of variadic arguments (a third of openat2's cost here).
  const openat2 = fn('long syscall(long, long, const char *, void *, size_t)');
  const strerror = lib.func('const char *strerror(int)') as (errno: number) => string;
  libc = {
    mount: (...a) => mount(...a),
    umount2: (...a) => umount2(...a),
    open_tree: (...a) => openTree(...a),
    mount_setattr: (...a) => mountSetattr(...a),
    move_mount: (...a) => moveMount(...a),
    fsopen: (...a) => fsopen(...a),
    fsconfig: (...a) => fsconfig(...a),
    fsmount: (...a) => fsmount(...a),
    close: (...a) => close(...a),
    setfsuid: (...a) => setfsuid(...a),
    setfsgid: (...a) => setfsgid(...a),
    capget: (...a) => capget(...a),
    capset: (...a) => capset(...a),
    open: (...a) => open(...a),
    ioctl: (...a) => ioctl(...a),
    mknod: (...a) => mknod(...a),
    lsetxattr: (...a) => lsetxattr(...a),
    fgetxattr: (...a) => fgetxattr(...a),
    openat2: (root, path, how) => openat2(SYS_OPENAT2, root, path, how, how.length),
    strerror,
    errno: () => koffi.errno(),
  };
  return libc;
}

const ERRNO_CODES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  9: 'EBADF',
  13: 'EACCES',
  16: 'EBUSY',
  17: 'EEXIST',
  18: 'EXDEV',
  20: 'ENOTDIR',
  21: 'EISDIR',
  22: 'EINVAL',
  23: 'ENFILE',
  24: 'EMFILE',
  25: 'ENOTTY',
  28: 'ENOSPC',
  38: 'ENOSYS',
  40: 'ELOOP',
  61: 'ENODATA',
  95: 'EOPNOTSUPP',
};

/** A failed call as a result: its errno, its name, and what was being done. */
function failure(c: Libc, what: string): Result {
  const errno = c.errno();
  return {
    ok: false,
    errno,
    code: ERRNO_CODES[errno] ?? `E${errno}`,
    message: `${what}: ${c.strerror(errno)}`,
  };
}

const OK: Result = { ok: true };

/** Performs one privileged operation. A failure is returned, never thrown. */
export function perform(operation: Operation): Result {
  const c = load();
  switch (operation.op) {
    case 'bind': {
      const { source, target } = operation;
      if (c.mount(source, target, null, MS_BIND, null) !== 0)
        return failure(c, `bind ${source} on ${target}`);
      if (operation.readOnly) return readOnlyBind(c, target);
      return OK;
    }
    case 'idmap':
      return idmapped(c, operation.source, operation.target, operation.usernsFd);
    case 'overlay':
      return overlay(c, operation);
    case 'tmpfs': {
      const size = operation.sizeBytes === undefined ? '' : `,size=${operation.sizeBytes}`;
      const mode = `mode=${operation.mode.toString(8)}${size}`;
      const flags = MS_NOSUID | MS_NODEV | (operation.readOnly ? MS_RDONLY : 0);
      if (c.mount('tmpfs', operation.target, 'tmpfs', flags, mode) !== 0) {
        return failure(c, `tmpfs on ${operation.target}`);
      }
      return OK;
    }
    case 'remount-readonly':
      return setAttributes(c, operation.target, MOUNT_ATTR_RDONLY, -1);
    case 'make-private':
      if (c.mount(null, '/', null, MS_REC | MS_PRIVATE, null) !== 0) return failure(c, 'make mounts private');
      return OK;
    case 'unmount':
      if (c.umount2(operation.target, MNT_DETACH) !== 0) return failure(c, `unmount ${operation.target}`);
      return OK;
    case 'whiteout':
      if (c.mknod(operation.path, S_IFCHR | 0o000, 0n) !== 0) return failure(c, `whiteout ${operation.path}`);
      return OK;
    case 'set-opaque': {
      const value = Buffer.from('y');
      if (c.lsetxattr(operation.path, OPAQUE_XATTR, value, value.length, 0) !== 0) {
        return failure(c, `mark ${operation.path} opaque`);
      }
      return OK;
    }
    case 'activate-vt':
      return activateVt(c, operation.vt);
  }
}

/** Loads libc now (a builder started ahead of time does this while it waits for its plan). */
export function preload(): void {
  load();
}

/**
 * Opens `path`, relative to the folder open as `root`, as `openat2` with RESOLVE_BENEATH,
 * RESOLVE_NO_SYMLINKS, RESOLVE_NO_MAGICLINKS and RESOLVE_NO_XDEV: the kernel refuses any symbolic
 * link on the way or at the end, any `..` that would leave the folder, and any mount crossed. The
 * agent reads and writes a session's layers this way (see `Folder` in @upc/image). Throws as
 * `fs.openSync` does, with the errno's name as `code` (`ELOOP` for a link, `EXDEV` for a way out).
 * Undefined when the kernel has no openat2 (before 5.6): the caller walks the path itself.
 */
export function openBeneath(root: number, path: string, flags: number, mode: number): number {
  const c = load();
  const resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  const fd = c.openat2(
    root,
    path === '' ? '.' : path,
    openHow(flags | O_CLOEXEC, flags & O_CREAT ? mode : 0, resolve),
  );
  if (fd >= 0) return fd;
  const errno = c.errno();
  const code = ERRNO_CODES[errno] ?? `E${String(errno)}`;
  throw Object.assign(new Error(`${code}: ${c.strerror(errno)}, open '${path}' beneath a folder`), {
    errno: -errno,
    code,
    syscall: 'openat2',
    path,
  });
}

/** openat2's `struct open_how` (flags, mode, resolve: three u64), in one buffer reused by every call. */
const HOW = Buffer.alloc(24);
const LITTLE_ENDIAN = endianness() === 'LE';
function openHow(flags: number, mode: number, resolve: number): Buffer {
  [flags, mode, resolve].forEach((value, i) => {
    if (LITTLE_ENDIAN) HOW.writeBigUInt64LE(BigInt(value), i * 8);
    else HOW.writeBigUInt64BE(BigInt(value), i * 8);
  });
  return HOW;
}

/** Whether this kernel has openat2 (Linux 5.6 and later). */
export function hasOpenBeneath(): boolean {
  const c = load();
  const fd = c.openat2(AT_FDCWD, '/', openHow(O_PATH | O_CLOEXEC, 0, 0));
  if (fd >= 0) {
    c.close(fd);
    return true;
  }
  return c.errno() !== ENOSYS;
}

/** Whether the folder open as `fd` is overlay-opaque. */
export function isOpaqueAt(fd: number): boolean {
  const c = load();
  const buffer = Buffer.alloc(4);
  const length = c.fgetxattr(fd, OPAQUE_XATTR, buffer, buffer.length);
  return length === 1 && buffer[0] === 0x79; // 'y'
}

function readOnlyBind(c: Libc, target: string): Result {
  if (c.mount(null, target, null, MS_REMOUNT | MS_BIND | MS_RDONLY, null) !== 0) {
    return failure(c, `make ${target} read-only`);
  }
  return OK;
}

function setAttributes(c: Libc, target: string, set: number, usernsFd: number): Result {
  const attr: MountAttr = {
    attr_set: BigInt(set),
    attr_clr: 0n,
    propagation: 0n,
    userns_fd: BigInt(usernsFd < 0 ? 0 : usernsFd),
  };
  if (c.mount_setattr(AT_FDCWD, target, 0, attr, 32) !== 0) return failure(c, `set attributes of ${target}`);
  return OK;
}

function idmapped(c: Libc, source: string, target: string, usernsFd: number): Result {
  const tree = c.open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | O_CLOEXEC);
  if (tree < 0) return failure(c, `clone the mount of ${source}`);
  try {
    const attr: MountAttr = {
      attr_set: BigInt(MOUNT_ATTR_IDMAP),
      attr_clr: 0n,
      propagation: 0n,
      userns_fd: BigInt(usernsFd),
    };
    if (c.mount_setattr(tree, '', AT_EMPTY_PATH, attr, 32) !== 0)
      return failure(c, `map the ids of ${source}`);
    if (c.move_mount(tree, '', AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) !== 0) {
      return failure(c, `attach ${source} at ${target}`);
    }
    return OK;
  } finally {
    c.close(tree);
  }
}

function overlay(
  c: Libc,
  o: { lower: string; upper: string; work: string; target: string; creatorId: number },
): Result {
  // The overlay keeps its creator's credentials (taken when it is created) for its own writes to
  // the upper layer; as this thread's file-system ids, the creator's are those of the session's
  // root, which the idmapped upper layer can represent. Only this thread's, and only until the end.
  const previousUid = c.setfsuid(o.creatorId);
  const previousGid = c.setfsgid(o.creatorId);
  keepFileCapabilities(c); // a non-zero fsuid drops them; the overlay needs them for copy-ups
  const fs = c.fsopen('overlay', FSOPEN_CLOEXEC);
  if (fs < 0) {
    c.setfsuid(previousUid);
    c.setfsgid(previousGid);
    return failure(c, 'open an overlay');
  }
  try {
    const options: [string, string][] = [
      ['lowerdir+', o.lower],
      ['upperdir', o.upper],
      ['workdir', o.work],
      // Only whiteouts and opaque folders in the upper layer: nothing else the image must carry.
      ['redirect_dir', 'off'],
      ['index', 'off'],
      ['metacopy', 'off'],
    ];
    for (const [key, value] of options) {
      if (c.fsconfig(fs, FSCONFIG_SET_STRING, key, value, 0) !== 0) {
        return failure(c, `overlay option ${key}=${value}`);
      }
    }
    const created = c.fsconfig(fs, FSCONFIG_CMD_CREATE, null, null, 0);
    c.setfsuid(previousUid);
    c.setfsgid(previousGid);
    if (created !== 0) return failure(c, `create the overlay of ${o.target}`);
    const mount = c.fsmount(fs, FSMOUNT_CLOEXEC, 0);
    if (mount < 0) return failure(c, `mount the overlay of ${o.target}`);
    try {
      if (c.move_mount(mount, '', AT_FDCWD, o.target, MOVE_MOUNT_F_EMPTY_PATH) !== 0) {
        return failure(c, `attach the overlay at ${o.target}`);
      }
      return OK;
    } finally {
      c.close(mount);
    }
  } finally {
    c.setfsuid(previousUid);
    c.setfsgid(previousGid);
    c.close(fs);
  }
}

const CAPABILITY_VERSION_3 = 0x20080522;

/** This thread's effective capabilities set back to its permitted ones. */
function keepFileCapabilities(c: Libc): void {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(CAPABILITY_VERSION_3, 0); // pid 0: this thread
  const data = Buffer.alloc(24); // two { effective, permitted, inheritable } words
  if (c.capget(header, data) !== 0) return;
  data.writeUInt32LE(data.readUInt32LE(4), 0);
  data.writeUInt32LE(data.readUInt32LE(16), 12);
  c.capset(header, data);
}

function activateVt(c: Libc, vt: number): Result {
  const fd = c.open('/dev/tty0', O_RDWR | O_CLOEXEC);
  if (fd < 0) return failure(c, 'open /dev/tty0');
  try {
    if (c.ioctl(fd, VT_ACTIVATE, vt) !== 0) return failure(c, `switch to VT ${vt}`);
    if (c.ioctl(fd, VT_WAITACTIVE, vt) !== 0) return failure(c, `wait for VT ${vt}`);
    return OK;
  } finally {
    c.close(fd);
  }
}
