import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { entry, Folder, inDirectory, type OpenBeneath } from '@upc/image';

/** The user inside a workspace: their ids there and their home folder. */
export interface Identity {
  user: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

const FIRST_UID = 1000;
const LAST_UID = 59999;
/** A passwd or group file bigger than this is not one the agent reads. */
const MAX_ACCOUNTS_FILE = 4 * 1024 * 1024;

interface PasswdLine {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

function parsePasswd(text: string): PasswdLine[] {
  return text
    .split('\n')
    .map((line) => line.split(':'))
    .filter((f) => f.length >= 7)
    .map((f) => ({
      name: f[0] ?? '',
      uid: Number(f[2]),
      gid: Number(f[3]),
      home: f[5] ?? '',
      shell: f[6] ?? '',
    }));
}

/** The user's line in a passwd text, if any. */
export function findUser(passwd: string, user: string): Identity | undefined {
  const line = parsePasswd(passwd).find((l) => l.name === user);
  if (!line || !Number.isInteger(line.uid) || !Number.isInteger(line.gid)) return undefined;
  return { user, uid: line.uid, gid: line.gid, home: line.home, shell: line.shell };
}

/**
 * The user's identity inside the workspace, kept in the image: their line in the workspace's
 * `/etc/passwd` and `/etc/group` (the `/etc` layer's copies; the host's files are never touched).
 * A workspace that has none yet gets one: the first uid from 1000 that neither the workspace's nor
 * this host's passwd uses, with a group of the same number. Without an `/etc` layer the identity
 * cannot be kept, and uid 1000 is used each session.
 *
 * The layer is the workspace's, which the session's root can change: its files are read and
 * written through the layer folder's descriptor, never following a link (a `passwd` that is a
 * link, or not a file, counts as missing and is replaced by a file), so nothing outside the layer
 * is ever read or written.
 */
export async function ensureIdentity(
  user: string,
  home: string,
  etcLayer: string | undefined,
  options: { hostEtc?: string; openBeneath?: OpenBeneath } = {},
): Promise<Identity> {
  const hostEtc = options.hostEtc ?? '/etc';
  const hostPasswd = readHost(`${hostEtc}/passwd`);
  const hostGroup = readHost(`${hostEtc}/group`);
  if (!etcLayer) return { user, uid: FIRST_UID, gid: FIRST_UID, home, shell: '/bin/sh' };
  mkdirSync(etcLayer, { recursive: true, mode: 0o755 }); // its parents are the agent's own folders
  const layer = Folder.open(etcLayer, options.openBeneath);
  try {
    const passwd = readInLayer(layer, 'passwd') ?? hostPasswd;
    const known = findUser(passwd, user);
    if (known) return known;

    const used = new Set([...parsePasswd(passwd), ...parsePasswd(hostPasswd)].map((l) => l.uid));
    const groups = readInLayer(layer, 'group') ?? hostGroup;
    const usedGroups = new Set(
      groups
        .split('\n')
        .map((l) => Number(l.split(':')[2]))
        .filter(Number.isInteger),
    );
    let uid = FIRST_UID;
    while ((used.has(uid) || usedGroups.has(uid)) && uid < LAST_UID) uid++;
    const shell = ['/bin/bash', '/bin/sh'].find((s) => passwd.includes(`:${s}\n`)) ?? '/bin/sh';
    await replaceInLayer(
      layer,
      'passwd',
      `${withNewline(passwd)}${user}:x:${uid}:${uid}:${user}:${home}:${shell}\n`,
    );
    await replaceInLayer(layer, 'group', `${withNewline(groups)}${user}:x:${uid}:\n`);
    return { user, uid, gid: uid, home, shell };
  } finally {
    layer.close();
  }
}

function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

function readHost(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** A regular file of the layer, read without following a link; undefined if it is not one. */
function readInLayer(layer: Folder, name: string): string | undefined {
  let fd: number;
  try {
    fd = layer.open(name, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENXIO') return undefined;
    throw error;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.size > MAX_ACCOUNTS_FILE) return undefined;
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `text` as the layer's file `name` (mode 0644): to a new file beside it, then renamed over
 * whatever has the name (a link is replaced, never followed).
 */
async function replaceInLayer(layer: Folder, name: string, text: string): Promise<void> {
  const temporary = `.upc-${name}-${randomBytes(6).toString('hex')}`;
  const fd = layer.open(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
  try {
    writeSync(fd, text);
    fchmodSync(fd, 0o644);
  } finally {
    closeSync(fd);
  }
  await inDirectory(layer, '', (dir) => {
    try {
      renameSync(entry(dir, temporary), entry(dir, name));
    } catch (error) {
      unlinkSync(entry(dir, temporary));
      throw error;
    }
  });
}
