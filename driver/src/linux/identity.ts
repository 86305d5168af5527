import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

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
 */
export async function ensureIdentity(
  user: string,
  home: string,
  etcLayer: string | undefined,
  hostEtc = '/etc',
): Promise<Identity> {
  const hostPasswd = readText(join(hostEtc, 'passwd'));
  const hostGroup = readText(join(hostEtc, 'group'));
  if (!etcLayer) return { user, uid: FIRST_UID, gid: FIRST_UID, home, shell: '/bin/sh' };
  const passwd = (await readOptional(join(etcLayer, 'passwd'))) ?? hostPasswd;
  const known = findUser(passwd, user);
  if (known) return known;

  const used = new Set([...parsePasswd(passwd), ...parsePasswd(hostPasswd)].map((l) => l.uid));
  const groups = (await readOptional(join(etcLayer, 'group'))) ?? hostGroup;
  const usedGroups = new Set(
    groups
      .split('\n')
      .map((l) => Number(l.split(':')[2]))
      .filter(Number.isInteger),
  );
  let uid = FIRST_UID;
  while ((used.has(uid) || usedGroups.has(uid)) && uid < LAST_UID) uid++;
  const shell = ['/bin/bash', '/bin/sh'].find((s) => passwd.includes(`:${s}\n`)) ?? '/bin/sh';
  await mkdir(etcLayer, { recursive: true, mode: 0o755 });
  await writeFile(
    join(etcLayer, 'passwd'),
    `${withNewline(passwd)}${user}:x:${uid}:${uid}:${user}:${home}:${shell}\n`,
    {
      mode: 0o644,
    },
  );
  await writeFile(join(etcLayer, 'group'), `${withNewline(groups)}${user}:x:${uid}:\n`, { mode: 0o644 });
  return { user, uid, gid: uid, home, shell };
}

function withNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
