/**
 * Paths and patterns of a policy, as written and in canonical form.
 *
 * A canonical path is a list of keys, one per name, from the root down: `/usr/local` is
 * `['usr', 'local']`, `/` is `[]`. The user's home (`~`) is written out with the placeholder
 * `<user>` (`/home/<user>`, `C:\Users\<user>`), so `~/x` and `/home/<user>/x` are the same path.
 * On Windows the keys are lower case (names there are case-insensitive), a drive is its letter and
 * a colon (`c:`), and the registry is two more roots, `hkcu` and `hklm`.
 */

export const PLATFORMS = ['linux', 'windows'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** The placeholder for the user's name, as a whole name in a path. */
export const USER = '<user>';

/** Longest path or pattern accepted. */
export const MAX_PATH_LENGTH = 4096;

/** Why a path or pattern cannot be read; the validator puts the rule in front. */
export class PathSyntaxError extends Error {
  override name = 'PathSyntaxError';
}

/** The user's home, canonical: `/home/<user>` or `C:\Users\<user>`. */
export function homeKeys(platform: Platform): string[] {
  return platform === 'linux' ? ['home', USER] : ['c:', 'users', USER];
}

/** The separator between names. */
export function separator(platform: Platform): string {
  return platform === 'linux' ? '/' : '\\';
}

/** Characters Windows does not allow in a file name (`*` is a wildcard in patterns). */
const WINDOWS_FORBIDDEN = /[<>:"|?*]/;

/** Whether the text holds a control character (U+0000 to U+001F, U+007F). */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/**
 * Reads an absolute path (`pattern`: an exclude pattern, where names may hold `*` and `**` may
 * stand for any number of names) into canonical keys. Throws PathSyntaxError saying what is wrong.
 */
export function parsePath(platform: Platform, text: string, pattern = false): string[] {
  const what = pattern ? 'pattern' : 'path';
  if (text === '') throw new PathSyntaxError(`the ${what} is empty`);
  if (text.length > MAX_PATH_LENGTH) {
    throw new PathSyntaxError(`the ${what} is longer than ${MAX_PATH_LENGTH} characters`);
  }
  if (text.includes('\u0000')) throw new PathSyntaxError(`the ${what} contains a NUL character`);
  const { root, rest, files } = platform === 'linux' ? linuxRoot(text, what) : windowsRoot(text, what);
  const names = rest === '' ? [] : rest.split(separator(platform));
  const keys = [...root];
  for (const name of names) {
    if (name === '') {
      throw new PathSyntaxError(
        `the ${what} is not normalised: it has an empty name (a doubled or trailing "${separator(platform)}")`,
      );
    }
    if (name === '.' || name === '..') {
      throw new PathSyntaxError(`the ${what} is not normalised: it has "${name}" in it`);
    }
    if (name.includes('*')) {
      if (!pattern) {
        throw new PathSyntaxError(
          'a path rule names one folder and has no wildcards ("*" is for exclude patterns)',
        );
      }
      if (name.includes('**') && name !== '**') {
        throw new PathSyntaxError('"**" must be a whole name, as in ~/.cache/**');
      }
    }
    if (platform === 'windows' && files) {
      const plain = name.replaceAll('*', '');
      if (name !== USER && (WINDOWS_FORBIDDEN.test(plain) || hasControlCharacter(plain))) {
        throw new PathSyntaxError(`"${name}" has a character Windows does not allow in a name`);
      }
      if (/[. ]$/.test(name)) {
        throw new PathSyntaxError(
          `the ${what} is not normalised: Windows drops the trailing "." or space of "${name}"`,
        );
      }
    }
    keys.push(platform === 'windows' ? name.toLowerCase() : name);
  }
  return keys;
}

function linuxRoot(text: string, what: string): { root: string[]; rest: string; files: boolean } {
  if (text === '~') return { root: homeKeys('linux'), rest: '', files: true };
  if (text.startsWith('~/')) return { root: homeKeys('linux'), rest: text.slice(2), files: true };
  if (!text.startsWith('/')) {
    throw new PathSyntaxError(`the ${what} is not absolute: start it with / or ~/`);
  }
  return { root: [], rest: text.slice(1), files: true };
}

function windowsRoot(text: string, what: string): { root: string[]; rest: string; files: boolean } {
  if (text.includes('/')) throw new PathSyntaxError(`the ${what} has a "/": Windows paths use "\\"`);
  if (text === '~') return { root: homeKeys('windows'), rest: '', files: true };
  if (text.startsWith('~\\')) return { root: homeKeys('windows'), rest: text.slice(2), files: true };
  const drive = /^([A-Za-z]):(\\|$)/.exec(text);
  if (drive) {
    if (drive[2] === '') {
      throw new PathSyntaxError(`the ${what} is not normalised: the drive's root is written ${text}\\`);
    }
    return { root: [`${(drive[1] ?? '').toLowerCase()}:`], rest: text.slice(3), files: true };
  }
  const hive = /^(HKCU|HKLM)(\\|$)/i.exec(text);
  if (hive) {
    return { root: [(hive[1] ?? '').toLowerCase()], rest: text.slice(hive[0].length), files: false };
  }
  if (/^HKEY_/i.test(text)) {
    throw new PathSyntaxError('write HKEY_CURRENT_USER as HKCU and HKEY_LOCAL_MACHINE as HKLM');
  }
  throw new PathSyntaxError(`the ${what} is not absolute: start it with a drive (C:\\), HKCU, HKLM or ~\\`);
}

/** Whether a path is the root of a file system (`/`, `C:\`), which no saved rule can be. */
export function isFileSystemRoot(platform: Platform, keys: readonly string[]): boolean {
  return platform === 'linux' ? keys.length === 0 : keys.length === 1 && /^[a-z]:$/.test(keys[0] ?? '');
}

/** Whether `outer` is `inner` or one of its ancestors. */
export function isWithin(inner: readonly string[], outer: readonly string[]): boolean {
  return outer.length <= inner.length && outer.every((key, i) => inner[i] === key);
}

/** A canonical path as one string, for maps (no key holds a "/"). */
export function keyOf(keys: readonly string[]): string {
  return '/' + keys.join('/');
}

/** The keys of a pattern up to its first wildcard: the folder it lies in. */
export function fixedPart(keys: readonly string[]): string[] {
  const wild = keys.findIndex((key) => key.includes('*'));
  return wild === -1 ? [...keys] : keys.slice(0, wild);
}

/** The keys with `<user>` replaced by the user's name (as a key: lower case on Windows). */
export function resolveUser(platform: Platform, keys: readonly string[], user: string | undefined): string[] {
  if (user === undefined) return [...keys];
  const name = platform === 'windows' ? user.toLowerCase() : user;
  return keys.map((key) => (key === USER ? name : key));
}

/** A user name usable in a path: one name, nothing that moves elsewhere. */
export function checkUserName(user: string): void {
  if (user === '' || user === '.' || user === '..' || /[/\\]/.test(user) || user.includes('\u0000')) {
    throw new PathSyntaxError(`"${user}" cannot be a user's name in a path`);
  }
}

/** A path as written with `~` and `<user>` replaced for that user. */
export function expandUser(platform: Platform, text: string, user: string | undefined): string {
  const name = user ?? USER;
  const home = platform === 'linux' ? `/home/${name}` : `C:\\Users\\${name}`;
  const sep = separator(platform);
  const expanded = text === '~' ? home : text.startsWith(`~${sep}`) ? home + text.slice(1) : text;
  return expanded
    .split(sep)
    .map((name_) => (name_ === USER ? name : name_))
    .join(sep);
}

/**
 * A compiled exclude pattern: tests a canonical path written as `keyOf(keys)`. `*` is any run of
 * characters within one name; `**` is any number of whole names, none included, so `~/.cache/**`
 * matches `~/.cache` itself and everything under it.
 */
export function globToRegExp(keys: readonly string[]): RegExp {
  let source = '^';
  for (const key of keys) {
    if (key === '**') source += '(?:/[^/]+)*';
    else source += '/' + key.split('*').map(escapeRegExp).join('[^/]*');
  }
  return new RegExp(source + '$', 'u');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
