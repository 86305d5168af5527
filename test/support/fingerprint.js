// Prints a fingerprint of a PC's system folders (run inside the PC's mount namespace by
// test/support/hosts.ts): the content of every file in /etc, /opt, /usr/local and /home, and the
// metadata of everything in /usr (its content is too large to read in a test; any write changes
// the size or mtime).
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';

const hash = createHash('sha256');
function walk(path, withContent) {
  let stats;
  try {
    stats = lstatSync(path, { bigint: true });
  } catch {
    hash.update(`${path} missing\n`);
    return;
  }
  const kind = stats.isDirectory() ? 'd' : stats.isSymbolicLink() ? 'l' : stats.isFile() ? 'f' : 'o';
  hash.update(`${path} ${kind} ${stats.mode} ${stats.uid} ${stats.gid} ${stats.size} ${stats.mtimeNs}\n`);
  if (kind === 'l') hash.update(readlinkSync(path));
  if (kind === 'f' && withContent) hash.update(readFileSync(path));
  if (kind === 'd') for (const name of readdirSync(path).sort()) walk(join(path, name), withContent);
}
for (const folder of ['/etc', '/opt', '/usr/local', '/home']) walk(folder, true);
walk('/usr', false);
process.stdout.write(`${hash.digest('hex')}\n`);
