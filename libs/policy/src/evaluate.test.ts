import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { layerName } from './evaluate.js';
import {
  defaultPolicy,
  effectivePolicy,
  excludeMatcher,
  layers,
  type Policy,
  PolicyError,
  ruleFor,
} from './index.js';
import { homeKeys, type Platform } from './paths.js';

const LINUX = defaultPolicy('linux');
const WINDOWS = defaultPolicy('windows');
const linux = (rules: unknown[]) => effectivePolicy(LINUX, { v: 1, platform: 'linux', rules });

describe('ruleFor', () => {
  it('finds the innermost rule for a path', () => {
    expect(ruleFor(LINUX, '/usr/local/bin/tool')).toEqual({ kind: 'forward', path: '/usr/local' });
    expect(ruleFor(LINUX, '/usr/local')).toEqual({ kind: 'forward', path: '/usr/local' });
    expect(ruleFor(LINUX, '/usr/bin/env')).toEqual({ kind: 'cow', path: '/usr' });
    expect(ruleFor(LINUX, '/usr')).toEqual({ kind: 'cow', path: '/usr' });
    expect(ruleFor(LINUX, '/proc/self/maps')).toEqual({ kind: 'host', path: '/proc' });
    expect(ruleFor(LINUX, '/var/tmp/x')).toEqual({ kind: 'ephemeral', path: '/var/tmp' });
    expect(ruleFor(LINUX, '~/.bashrc')).toEqual({ kind: 'forward', path: '/home/<user>' });
    const deeper = linux([{ kind: 'cow', path: '/usr/local/etc' }]);
    expect(ruleFor(deeper, '/usr/local/etc/x.conf')).toEqual({ kind: 'cow', path: '/usr/local/etc' });
    expect(ruleFor(deeper, '/usr/local/etcetera')).toEqual({ kind: 'forward', path: '/usr/local' });
  });

  it('finds nothing for paths no rule names (visible read-only)', () => {
    expect(ruleFor(LINUX, '/srv/data')).toBeUndefined();
    expect(ruleFor(LINUX, '/')).toBeUndefined();
    expect(ruleFor(LINUX, '/var')).toBeUndefined();
    expect(ruleFor(LINUX, '/usrx')).toBeUndefined();
    expect(ruleFor(LINUX, '/home/bob')).toBeUndefined();
  });

  it("resolves the user's home when given the user", () => {
    expect(ruleFor(LINUX, '/home/ann/.cache/x', { user: 'ann' })).toEqual({
      kind: 'forward',
      path: '/home/<user>',
    });
    expect(ruleFor(LINUX, '/home/bob/x', { user: 'ann' })).toBeUndefined();
    expect(ruleFor(WINDOWS, 'c:\\users\\ANN\\Documents', { user: 'Ann' })).toEqual({
      kind: 'forward',
      path: 'C:\\Users\\<user>',
    });
    expect(() => ruleFor(LINUX, '/x', { user: '../root' })).toThrow('cannot be a user');
    // The same path written two ways meets only once the user is known.
    const both = linux([
      { kind: 'forward', path: '~/code' },
      { kind: 'cow', path: '/home/ann/code' },
    ]);
    expect(ruleFor(both, '/home/ann/code/x', { user: 'bob' })).toEqual({
      kind: 'cow',
      path: '/home/ann/code',
    });
    expect(() => ruleFor(both, '/x', { user: 'ann' })).toThrow(PolicyError);
    expect(() => ruleFor(both, '/x', { user: 'ann' })).toThrow(
      'rules 14 (forward ~/code) and 15 (cow /home/ann/code) name the same path (for the user ann)',
    );
  });

  it('is case-insensitive on Windows, registry included', () => {
    expect(ruleFor(WINDOWS, 'c:\\program files\\App\\app.exe')).toEqual({
      kind: 'forward',
      path: 'C:\\Program Files',
    });
    expect(ruleFor(WINDOWS, 'C:\\WINDOWS\\System32')).toEqual({ kind: 'cow', path: 'C:\\Windows' });
    expect(ruleFor(WINDOWS, 'hklm\\software\\Vendor')).toEqual({ kind: 'forward', path: 'HKLM\\SOFTWARE' });
    expect(ruleFor(WINDOWS, 'HKLM\\SAM\\SAM')).toEqual({ kind: 'host', path: 'HKLM\\SAM' });
    expect(ruleFor(WINDOWS, 'HKCU\\Software\\x')).toEqual({ kind: 'forward', path: 'HKCU' });
    expect(ruleFor(WINDOWS, 'HKLM\\SYSTEM')).toBeUndefined();
    expect(ruleFor(WINDOWS, '~\\AppData\\Local\\Temp\\x.tmp')).toEqual({
      kind: 'ephemeral',
      path: '~\\AppData\\Local\\Temp',
    });
  });

  it('refuses a path that is not absolute', () => {
    expect(() => ruleFor(LINUX, 'usr/bin')).toThrow('not absolute');
  });
});

describe('layers', () => {
  it('are one folder per saved rule; the home is "home"', () => {
    expect(layers(LINUX).map((l) => [l.name, l.kind, l.path])).toEqual([
      ['home', 'forward', '/home/<user>'],
      ['opt', 'forward', '/opt'],
      ['usr-local', 'forward', '/usr/local'],
      ['cow/etc', 'cow', '/etc'],
      ['cow/usr', 'cow', '/usr'],
      ['cow/var-lib', 'cow', '/var/lib'],
    ]);
    expect(layers(LINUX, { user: 'ann' })[0]).toMatchObject({ name: 'home', path: '/home/ann' });
    expect(layers(WINDOWS, { user: 'Ann' }).map((l) => [l.name, l.path])).toEqual([
      ['home', 'C:\\Users\\Ann'],
      ['c-program files', 'C:\\Program Files'],
      ['c-program files (x86)', 'C:\\Program Files (x86)'],
      ['c-programdata', 'C:\\ProgramData'],
      ['hkcu', 'HKCU'],
      ['hklm-software', 'HKLM\\SOFTWARE'],
      ['cow/c-windows', 'C:\\Windows'],
    ]);
  });

  it('name paths inside the home, escapes and reserved names so that nothing collides', () => {
    const names = layers(
      linux([
        { kind: 'forward', path: '~/.local/bin' },
        { kind: 'forward', path: '/usr-local' },
        { kind: 'forward', path: '/home' },
        { kind: 'forward', path: '/cow' },
        { kind: 'forward', path: '/~/x' },
        { kind: 'forward', path: '/srv/100%' },
        { kind: 'cow', path: '/home/shared' },
        { kind: 'cow', path: '~/.config' },
      ]),
    ).map((l) => l.name);
    expect(names.slice(6)).toEqual([
      '~-.local-bin',
      'usr%2Dlocal',
      '%68ome',
      '%63ow',
      '%7E-x',
      'srv-100%25',
      'cow/home-shared',
      'cow/~-.config',
    ]);
    expect(new Set(names).size).toBe(names.length);
  });

  it('do not depend on how the case of a Windows path is written', () => {
    const spelled = effectivePolicy(WINDOWS, {
      v: 1,
      platform: 'windows',
      rules: [{ kind: 'forward', path: 'c:\\PROGRAM FILES' }],
    });
    expect(layers(spelled)[1]?.name).toBe('c-program files');
  });

  it('property: distinct saved paths get distinct names, each one folder (cow: under cow/)', () => {
    const name = fc.oneof(
      fc.constantFrom('home', 'cow', '~', 'a', 'a-b', '%', '%2D', '-', 'usr', 'local', '.x', '<user>'),
      fc.string({ minLength: 1, maxLength: 4 }).filter((s) => !s.includes('/') && s !== '.' && s !== '..'),
    );
    const path = fc.tuple(fc.boolean(), fc.array(name, { minLength: 1, maxLength: 4 }));
    for (const platform of ['linux', 'windows'] as Platform[]) {
      fc.assert(
        fc.property(
          fc.uniqueArray(path, { selector: ([home, keys]) => `${home}:${keys.join('/')}` }),
          (paths) => {
            const home = homeKeys(platform);
            const seen = new Map<string, string>();
            for (const [underHome, names] of paths) {
              const keys = underHome
                ? [...home, ...names]
                : platform === 'windows'
                  ? ['d:', ...names]
                  : names;
              const canonical = keys.join('/');
              for (const kind of ['forward', 'cow'] as const) {
                const layer = layerName(platform, keys, home, kind);
                const folder = kind === 'cow' ? layer.replace(/^cow\//, '') : layer;
                expect(folder).not.toContain('/');
                expect(folder).not.toBe('');
                if (kind === 'forward') expect(folder).not.toBe('cow');
                const other = seen.get(layer);
                if (other !== undefined) expect(other).toBe(canonical);
                seen.set(layer, canonical);
              }
            }
          },
        ),
        { numRuns: 300 },
      );
    }
  });
});

describe('excludeMatcher', () => {
  it('keeps out home/.cache and everything under it, by default', () => {
    const excluded = excludeMatcher(LINUX, { user: 'ann' });
    expect(excluded('home/.cache')).toBe(true);
    expect(excluded('home/.cache/thumbnails')).toBe(true);
    expect(excluded('home/.cache/thumbnails/x.png')).toBe(true);
    expect(excluded('home')).toBe(false);
    expect(excluded('home/.cachex')).toBe(false);
    expect(excluded('home/.config/.cache')).toBe(false);
    expect(excluded('home/docs/.cache')).toBe(false);
    expect(excluded('opt/.cache')).toBe(false);
    expect(excluded('cow/etc/.cache')).toBe(false);
    expect(excluded('unknown/.cache')).toBe(false);
    expect(excluded('cow')).toBe(false);
    // Without a user the home is the placeholder; image paths do not need one.
    expect(excludeMatcher(LINUX)('home/.cache/x')).toBe(true);
  });

  it('reads * within a name and ** at any depth', () => {
    const excluded = excludeMatcher(
      linux([
        { kind: 'exclude', pattern: '~/build/**' },
        { kind: 'exclude', pattern: '~/*.tmp' },
        { kind: 'exclude', pattern: '~/code/**/node_modules/**' },
        { kind: 'exclude', pattern: '/usr/**/__pycache__/*.pyc' },
        { kind: 'exclude', pattern: '/opt/*/logs' },
      ]),
      { user: 'ann' },
    );
    expect(excluded('home/build')).toBe(true);
    expect(excluded('home/build/a/b/c.o')).toBe(true);
    expect(excluded('home/builds')).toBe(false);
    expect(excluded('home/x.tmp')).toBe(true);
    expect(excluded('home/.tmp')).toBe(true);
    expect(excluded('home/dir/x.tmp')).toBe(false);
    expect(excluded('home/code/node_modules')).toBe(true);
    expect(excluded('home/code/a/b/node_modules/left-pad/index.js')).toBe(true);
    expect(excluded('home/code/a/b/node_modules2')).toBe(false);
    // A pattern under /usr reaches both layers that hold /usr's paths.
    expect(excluded('cow/usr/lib/python3/__pycache__/x.pyc')).toBe(true);
    expect(excluded('usr-local/lib/__pycache__/x.pyc')).toBe(true);
    expect(excluded('usr-local/lib/__pycache__/x.py')).toBe(false);
    expect(excluded('opt/app/logs')).toBe(true);
    expect(excluded('opt/app/logs/today.log')).toBe(false);
    expect(excluded('opt/app/sub/logs')).toBe(false);
  });

  it('ignores case on Windows, and not on Linux', () => {
    const excluded = excludeMatcher(WINDOWS, { user: 'Ann' });
    expect(excluded('home/AppData/Local/Google/Chrome/User Data/Default/Cache/f_000001')).toBe(true);
    expect(excluded('home/appdata/local/google/chrome/user data/Profile 1/cache')).toBe(true);
    expect(excluded('home/AppData/Local/Mozilla/Firefox/Profiles/abc.default/cache2/entries/x')).toBe(true);
    expect(excluded('home/AppData/Local/Google/Chrome/User Data/Default/Bookmarks')).toBe(false);
    const linuxExcluded = excludeMatcher(LINUX);
    expect(linuxExcluded('home/.CACHE/x')).toBe(false);
  });

  it('treats regular-expression characters in patterns as themselves', () => {
    const excluded = excludeMatcher(linux([{ kind: 'exclude', pattern: '~/a.b+(c)/[x]/**' }]));
    expect(excluded('home/a.b+(c)/[x]/y')).toBe(true);
    expect(excluded('home/aXb+(c)/[x]/y')).toBe(false);
    expect(excluded('home/a.bb(c)/x/y')).toBe(false);
  });

  it('property: agrees with matching name by name', () => {
    // A reference matcher over lists of names: ** takes any number of names, * any run in one.
    const matchName = (pattern: string, name: string): boolean => {
      const parts = pattern.split('*');
      if (parts.length === 1) return pattern === name;
      const first = parts[0] ?? '';
      const last = parts[parts.length - 1] ?? '';
      if (!name.startsWith(first) || name.length < first.length + last.length || !name.endsWith(last))
        return false;
      let at = first.length;
      for (const middle of parts.slice(1, -1)) {
        const found = name.indexOf(middle, at);
        if (found === -1 || found + middle.length > name.length - last.length) return false;
        at = found + middle.length;
      }
      return true;
    };
    const matches = (pattern: string[], names: string[]): boolean => {
      if (pattern.length === 0) return names.length === 0;
      const [head, ...rest] = pattern as [string, ...string[]];
      if (head === '**') return names.some((_, i) => matches(rest, names.slice(i))) || matches(rest, []);
      return names.length > 0 && matchName(head, names[0] ?? '') && matches(rest, names.slice(1));
    };
    const name = fc.stringMatching(/^[ab.]{1,3}$/).filter((n) => n !== '.' && n !== '..');
    const globName = fc.oneof(
      name,
      fc.constant('*'),
      fc.constant('**'),
      fc.stringMatching(/^[ab]?\*[ab.]?$/),
    );
    fc.assert(
      fc.property(
        fc.array(globName, { maxLength: 4 }),
        fc.array(name, { maxLength: 5 }),
        (pattern, names) => {
          const policy: Policy = linux([{ kind: 'exclude', pattern: ['~', 'p', ...pattern].join('/') }]);
          const excluded = excludeMatcher(policy)(['home', 'p', ...names].join('/'));
          expect(excluded).toBe(matches(pattern, names));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
