import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LINUX_POLICY,
  DEFAULT_WINDOWS_POLICY,
  defaultPolicy,
  describeRule,
  effectivePolicy,
  parseOverride,
  parsePolicy,
  type Policy,
  PolicyError,
  type Rule,
} from './index.js';

const linux = (rules: unknown[]) => ({ v: 1, platform: 'linux', rules });
const windows = (rules: unknown[]) => ({ v: 1, platform: 'windows', rules });

/** The problems parsePolicy finds in a document (none: it is valid). */
function problems(document: unknown): string[] {
  try {
    parsePolicy(document);
    return [];
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    return error.problems;
  }
}

function overrideProblems(defaults: Policy, override: unknown): string[] {
  try {
    effectivePolicy(defaults, override);
    return [];
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    return error.problems;
  }
}

describe('the default policies', () => {
  it('are valid', () => {
    expect(parsePolicy(DEFAULT_LINUX_POLICY)).toEqual(DEFAULT_LINUX_POLICY);
    expect(parsePolicy(DEFAULT_WINDOWS_POLICY)).toEqual(DEFAULT_WINDOWS_POLICY);
    expect(effectivePolicy(defaultPolicy('linux'), null).rules).toEqual(DEFAULT_LINUX_POLICY.rules);
  });

  it("are DESIGN.md's table, rule for rule", () => {
    expect(DEFAULT_LINUX_POLICY.rules.map(describeRule)).toEqual([
      'forward /home/<user>',
      'forward /opt',
      'forward /usr/local',
      'cow /etc',
      'cow /usr',
      'cow /var/lib',
      'host /proc',
      'host /sys',
      'host /dev',
      'host /run',
      'ephemeral /tmp',
      'ephemeral /var/tmp',
      'exclude ~/.cache/**',
    ]);
    const byKind = (policy: Policy, kind: Rule['kind']) =>
      policy.rules.filter((r) => r.kind === kind).map((r) => ('path' in r ? r.path : r.pattern));
    expect(byKind(DEFAULT_WINDOWS_POLICY, 'forward')).toEqual([
      'C:\\Users\\<user>',
      'C:\\Program Files',
      'C:\\Program Files (x86)',
      'C:\\ProgramData',
      'HKCU',
      'HKLM\\SOFTWARE',
    ]);
    expect(byKind(DEFAULT_WINDOWS_POLICY, 'cow')).toEqual(['C:\\Windows']);
    expect(byKind(DEFAULT_WINDOWS_POLICY, 'host')).toEqual(['HKLM\\HARDWARE', 'HKLM\\SAM', 'HKLM\\SECURITY']);
    expect(byKind(DEFAULT_WINDOWS_POLICY, 'ephemeral')).toEqual(['~\\AppData\\Local\\Temp']);
    expect(byKind(DEFAULT_WINDOWS_POLICY, 'exclude').every((p) => p.endsWith('\\**'))).toBe(true);
  });

  it('cannot be changed by accident; defaultPolicy gives a copy', () => {
    const copy = defaultPolicy('linux');
    copy.rules.push({ kind: 'forward', path: '/srv' });
    expect(DEFAULT_LINUX_POLICY.rules).toHaveLength(13);
    expect(() => DEFAULT_LINUX_POLICY.rules.push(copy.rules[0] as Rule)).toThrow();
  });
});

describe('validation', () => {
  it('refuses a path given twice, of the same kind or not, naming both rules', () => {
    const rules = [...DEFAULT_LINUX_POLICY.rules, { kind: 'cow', path: '/opt' }];
    expect(problems(linux(rules))).toEqual(['rules 2 (forward /opt) and 14 (cow /opt) name the same path']);
    expect(
      problems(
        linux([
          { kind: 'forward', path: '/opt' },
          { kind: 'forward', path: '/opt' },
        ]),
      ),
    ).toEqual(['rules 1 (forward /opt) and 2 (forward /opt) name the same path']);
    // ~ is /home/<user>.
    expect(
      problems(
        linux([
          { kind: 'forward', path: '/home/<user>' },
          { kind: 'cow', path: '~' },
        ]),
      ),
    ).toEqual(['rules 1 (forward /home/<user>) and 2 (cow ~) name the same path']);
    expect(
      problems(
        linux([
          { kind: 'forward', path: '~' },
          { kind: 'exclude', pattern: '~/.cache/**' },
          { kind: 'exclude', pattern: '/home/<user>/.cache/**' },
        ]),
      ),
    ).toEqual(['rules 2 (exclude ~/.cache/**) and 3 (exclude /home/<user>/.cache/**) give the same pattern']);
  });

  it('compares Windows paths without regard to case', () => {
    expect(
      problems(
        windows([
          { kind: 'forward', path: 'C:\\ProgramData' },
          { kind: 'cow', path: 'c:\\programdata' },
        ]),
      ),
    ).toEqual(['rules 1 (forward C:\\ProgramData) and 2 (cow c:\\programdata) name the same path']);
    expect(
      problems(
        windows([
          { kind: 'forward', path: 'HKLM\\Software' },
          { kind: 'host', path: 'hklm\\SOFTWARE' },
        ]),
      ),
    ).toEqual(['rules 1 (forward HKLM\\Software) and 2 (host hklm\\SOFTWARE) name the same path']);
    expect(
      problems(
        windows([
          { kind: 'forward', path: '~' },
          { kind: 'forward', path: 'C:\\users\\<user>' },
        ]),
      ),
    ).toEqual(['rules 1 (forward ~) and 2 (forward C:\\users\\<user>) name the same path']);
  });

  it.each([
    ['opt', 'the path is not absolute: start it with / or ~/'],
    ['~ann/x', 'the path is not absolute: start it with / or ~/'],
    ['', 'the path is empty'],
    ['/opt/', 'the path is not normalised: it has an empty name (a doubled or trailing "/")'],
    ['/usr//local', 'the path is not normalised: it has an empty name (a doubled or trailing "/")'],
    ['/opt/./x', 'the path is not normalised: it has "." in it'],
    ['/opt/../etc', 'the path is not normalised: it has ".." in it'],
    ['/opt/*', 'a path rule names one folder and has no wildcards ("*" is for exclude patterns)'],
    ['/op\u0000t', 'the path contains a NUL character'],
  ])('refuses the Linux path %j', (path, why) => {
    expect(problems(linux([{ kind: 'forward', path }]))).toEqual([`rule 1 (forward ${path}): ${why}`]);
  });

  it.each([
    ['Program Files', 'the path is not absolute: start it with a drive (C:\\), HKCU, HKLM or ~\\'],
    ['C:/Program Files', 'the path has a "/": Windows paths use "\\"'],
    ['C:', "the path is not normalised: the drive's root is written C:\\"],
    ['C:\\Program Files\\', 'the path is not normalised: it has an empty name (a doubled or trailing "\\")'],
    ['C:\\Windows\\..\\x', 'the path is not normalised: it has ".." in it'],
    ['C:\\dir.', 'the path is not normalised: Windows drops the trailing "." or space of "dir."'],
    ['C:\\a?b', '"a?b" has a character Windows does not allow in a name'],
    ['HKEY_LOCAL_MACHINE\\SOFTWARE', 'write HKEY_CURRENT_USER as HKCU and HKEY_LOCAL_MACHINE as HKLM'],
    ['/opt', 'the path has a "/": Windows paths use "\\"'],
  ])('refuses the Windows path %j', (path, why) => {
    expect(problems(windows([{ kind: 'forward', path }]))).toEqual([`rule 1 (forward ${path}): ${why}`]);
  });

  it('refuses the root itself for forward, cow and ephemeral, but passes it through as host', () => {
    for (const kind of ['forward', 'cow', 'ephemeral']) {
      expect(problems(linux([{ kind, path: '/' }]))).toEqual([
        `rule 1 (${kind} /): the root itself cannot be ${kind}; name the folders under it instead`,
      ]);
      expect(problems(windows([{ kind, path: 'D:\\' }]))).toEqual([
        `rule 1 (${kind} D:\\): the root itself cannot be ${kind}; name the folders under it instead`,
      ]);
    }
    expect(problems(linux([{ kind: 'host', path: '/' }]))).toEqual([]);
  });

  it('refuses any rule inside a host rule or an ephemeral rule', () => {
    expect(
      problems(linux([...DEFAULT_LINUX_POLICY.rules, { kind: 'forward', path: '/proc/driver' }])),
    ).toEqual([
      "rule 14 (forward /proc/driver) lies inside rule 7 (host /proc), which is the host's own and never saved",
    ]);
    expect(
      problems(linux([...DEFAULT_LINUX_POLICY.rules, { kind: 'host', path: '/tmp/.X11-unix' }])),
    ).toEqual([
      'rule 14 (host /tmp/.X11-unix) lies inside rule 11 (ephemeral /tmp), which is fresh and empty each session and never saved',
    ]);
    expect(
      problems(
        linux([
          { kind: 'cow', path: '/var/tmp/x' },
          { kind: 'ephemeral', path: '/var/tmp' },
        ]),
      ),
    ).toEqual([
      'rule 1 (cow /var/tmp/x) lies inside rule 2 (ephemeral /var/tmp), which is fresh and empty each session and never saved',
    ]);
    expect(
      problems(
        windows([...DEFAULT_WINDOWS_POLICY.rules, { kind: 'forward', path: 'HKLM\\SAM\\SAM\\Domains' }]),
      ),
    ).toEqual([
      "rule 17 (forward HKLM\\SAM\\SAM\\Domains) lies inside rule 9 (host HKLM\\SAM), which is the host's own and never saved",
    ]);
  });

  it('allows a saved rule inside another saved rule, and host or ephemeral inside a saved one', () => {
    expect(
      problems(
        linux([
          { kind: 'cow', path: '/usr' },
          { kind: 'forward', path: '/usr/local' },
          { kind: 'cow', path: '/usr/local/etc' },
          { kind: 'forward', path: '~' },
          { kind: 'ephemeral', path: '~/scratch' },
          { kind: 'host', path: '~/.gnupg/S.gpg-agent' },
        ]),
      ),
    ).toEqual([]);
  });

  it('refuses an exclude pattern that is not inside a saved rule', () => {
    expect(
      problems(linux([...DEFAULT_LINUX_POLICY.rules, { kind: 'exclude', pattern: '/srv/cache/**' }])),
    ).toEqual([
      'rule 14 (exclude /srv/cache/**) is not inside a forward or cow rule: only saved paths can be excluded',
    ]);
    // Its fixed part (up to the first wildcard) must be inside: /home/* reaches other users' homes.
    expect(
      problems(linux([...DEFAULT_LINUX_POLICY.rules, { kind: 'exclude', pattern: '/home/*/.cache/**' }])),
    ).toEqual([
      'rule 14 (exclude /home/*/.cache/**) is not inside a forward or cow rule: only saved paths can be excluded',
    ]);
    expect(
      problems(linux([...DEFAULT_LINUX_POLICY.rules, { kind: 'exclude', pattern: '/tmp/*.o' }])),
    ).toEqual([
      'rule 14 (exclude /tmp/*.o) lies inside rule 11 (ephemeral /tmp), which is fresh and empty each session and never saved',
    ]);
    expect(problems(linux([...DEFAULT_LINUX_POLICY.rules, { kind: 'exclude', pattern: '/proc' }]))).toEqual([
      "rule 14 (exclude /proc) lies inside rule 7 (host /proc), which is the host's own and never saved",
    ]);
    // Inside saved rules, at any depth, with or without wildcards.
    for (const pattern of [
      '/usr/**/__pycache__/**',
      '/opt/*/cache/**',
      '~/big.iso',
      '/usr/local/share/**',
      '~/**',
    ]) {
      expect(problems(linux([...DEFAULT_LINUX_POLICY.rules, { kind: 'exclude', pattern }])), pattern).toEqual(
        [],
      );
    }
  });

  it('refuses wildcards that are not whole names as **', () => {
    expect(
      problems(
        linux([
          { kind: 'forward', path: '~' },
          { kind: 'exclude', pattern: '~/a**b' },
        ]),
      ),
    ).toEqual(['rule 2 (exclude ~/a**b): "**" must be a whole name, as in ~/.cache/**']);
  });

  it('refuses unknown kinds and fields, and rules of the wrong shape', () => {
    expect(
      problems(
        linux([
          { kind: 'mount', path: '/opt' },
          { kind: 'forward', path: '/opt', mode: 'rw' },
          { kind: 'exclude', path: '/opt/x' },
          { kind: 'forward', pattern: '/opt/**' },
          { kind: 'cow' },
          { kind: 'cow', path: 7 },
          { path: '/srv' },
          'forward /opt',
          { kind: 'none', path: '/opt' },
        ]),
      ),
    ).toEqual([
      'rule 1: unknown kind "mount" (one of forward, cow, host, ephemeral, exclude)',
      'rule 2 (forward /opt) has an unknown field "mode"',
      'rule 3 (exclude /opt/x): an exclude rule takes a "pattern", not a "path"',
      'rule 4 (forward /opt/**): a forward rule takes a "path", not a "pattern"',
      'rule 5 (cow) has no "path"',
      'rule 6 (cow): "path" must be a string',
      'rule 7 has no "kind" (one of forward, cow, host, ephemeral, exclude)',
      'rule 8 must be an object like {"kind": "forward", "path": "/opt"}',
      'rule 9 (none /opt): only a workspace\'s override removes rules ("none")',
    ]);
  });

  it('refuses a wrong version, platform or top level', () => {
    expect(problems({ v: 2, platform: 'linux', rules: [] })).toEqual([
      'v must be 1 (the policy format this agent reads), not 2',
    ]);
    expect(problems({ platform: 'linux', rules: [] })).toEqual([
      'the policy has no "v": this agent reads version 1',
    ]);
    expect(problems({ v: 1, platform: 'macos', rules: [] })).toEqual([
      'platform must be "linux" or "windows", not "macos"',
    ]);
    expect(problems({ v: 1, platform: 'linux' })).toEqual(['the policy has no "rules"']);
    expect(problems({ v: 1, platform: 'linux', rules: {} })).toEqual([
      'rules must be a list of rules like {"kind": "forward", "path": "/opt"}',
    ]);
    expect(problems({ v: 1, platform: 'linux', rules: [], extra: true })).toEqual([
      'the policy has an unknown field "extra" (it has v, platform and rules)',
    ]);
    expect(problems([])).toEqual([
      'the policy must be a JSON object like {"v": 1, "platform": "linux", "rules": [...]}',
    ]);
    expect(
      problems(linux(Array.from({ length: 257 }, (_, i) => ({ kind: 'forward', path: `/p${i}` })))),
    ).toEqual(['the policy has more than 256 rules']);
    expect(
      problems(linux(Array.from({ length: 256 }, (_, i) => ({ kind: 'forward', path: `/p${i}` })))),
    ).toEqual([]);
  });

  it('refuses a path or pattern over 1024 characters, showing only its start', () => {
    const long = `/opt/${'x'.repeat(1020)}`;
    expect(long).toHaveLength(1025);
    expect(problems(linux([{ kind: 'forward', path: long }]))).toEqual([
      `rule 1 (forward ${long.slice(0, 100)}…): the path is 1025 characters long, over the limit of 1024`,
    ]);
    expect(
      overrideProblems(
        defaultPolicy('linux'),
        linux([{ kind: 'exclude', pattern: `~/${'y'.repeat(1023)}` }]),
      ),
    ).toEqual([
      `override rule 1 (exclude ~/${'y'.repeat(98)}…): the pattern is 1025 characters long, over the limit of 1024`,
    ]);
    expect(problems(linux([{ kind: 'forward', path: long.slice(0, 1024) }]))).toEqual([]);
  });

  it.each(['forward', 'cow', 'ephemeral'])(
    'refuses %s of the kernel and run-time folders, and of anything under /proc, /sys and /dev',
    (kind) => {
      const why = "a session that does not see the host's own breaks at every login";
      expect(
        problems(
          linux([
            { kind, path: '/proc' },
            { kind, path: '/sys' },
            { kind, path: '/dev' },
            { kind, path: '/run' },
          ]),
        ),
      ).toEqual([
        `rule 1 (${kind} /proc): /proc is the kernel's view of the running processes; ${why}, so it can only be host`,
        `rule 2 (${kind} /sys): /sys is the kernel's view of devices and drivers; ${why}, so it can only be host`,
        `rule 3 (${kind} /dev): /dev is the host's device nodes; ${why}, so it can only be host`,
        `rule 4 (${kind} /run): /run is the host's run-time state (sockets, PID files, logins); ${why}, so it can only be host`,
      ]);
      expect(problems(linux([{ kind, path: '/dev/shm' }]))).toEqual([
        `rule 1 (${kind} /dev/shm): it lies in /dev, the host's device nodes; ${why}, so nothing there can be ${kind}`,
      ]);
      expect(problems(linux([{ kind, path: '/sys/fs/cgroup' }]))).toHaveLength(1);
      // /run itself only: a folder under it, outside any host rule, is the policy's to decide.
      expect(problems(linux([{ kind, path: '/run/media' }]))).toEqual([]);
      // Folders that only start with the same letters are not them.
      expect(
        problems(
          linux([
            { kind, path: '/device' },
            { kind: 'cow', path: '/process' },
          ]),
        ),
      ).toEqual([]);
    },
  );

  it('lets an override replace a default host rule of a kernel folder with nothing but host', () => {
    const defaults = defaultPolicy('linux');
    for (const path of ['/dev', '/run', '/proc', '/sys']) {
      expect(overrideProblems(defaults, linux([{ kind: 'cow', path }]))).toHaveLength(1);
      expect(overrideProblems(defaults, linux([{ kind: 'cow', path }]))[0]).toMatch(
        new RegExp(`^override rule 1 \\(cow ${path}\\): ${path} is .*, so it can only be host$`),
      );
    }
    // Removed and then replaced beneath: still the kernel's.
    expect(
      overrideProblems(
        defaults,
        linux([
          { kind: 'none', path: '/dev' },
          { kind: 'forward', path: '/dev/shm' },
        ]),
      ),
    ).toEqual([
      "override rule 2 (forward /dev/shm): it lies in /dev, the host's device nodes; a session that does not see the host's own breaks at every login, so nothing there can be forward",
    ]);
    // Inside the default's host rule the message names that rule, as for any host rule.
    expect(overrideProblems(defaults, linux([{ kind: 'cow', path: '/dev/shm' }]))).toEqual([
      "override rule 1 (cow /dev/shm) lies inside default rule 9 (host /dev), which is the host's own and never saved",
    ]);
    expect(overrideProblems(defaults, linux([{ kind: 'host', path: '/dev' }]))).toEqual([]);
    expect(overrideProblems(defaults, linux([{ kind: 'none', path: '/run' }]))).toEqual([]);
  });

  it('keeps the kernel folders to Linux', () => {
    expect(problems(windows([{ kind: 'forward', path: 'C:\\dev' }]))).toEqual([]);
  });

  it('says every problem at once, in one message', () => {
    const error = (() => {
      try {
        parsePolicy(
          linux([
            { kind: 'forward', path: '/opt' },
            { kind: 'cow', path: '/opt' },
            { kind: 'ephemeral', path: '/' },
          ]),
        );
      } catch (e) {
        return e as PolicyError;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(PolicyError);
    expect(error?.message).toBe(
      'the policy is not valid:\n' +
        '  rules 1 (forward /opt) and 2 (cow /opt) name the same path\n' +
        '  rule 3 (ephemeral /): the root itself cannot be ephemeral; name the folders under it instead',
    );
  });
});

describe('effectivePolicy', () => {
  const defaults = defaultPolicy('linux');

  it('replaces the default rule for the same path in place, and adds new rules after the default', () => {
    const effective = effectivePolicy(
      defaults,
      linux([
        { kind: 'cow', path: '/opt' },
        { kind: 'exclude', pattern: '~/build/**' },
        { kind: 'forward', path: '/srv/tools' },
      ]),
    );
    expect(effective.rules.map(describeRule)).toEqual([
      'forward /home/<user>',
      'cow /opt',
      ...DEFAULT_LINUX_POLICY.rules.slice(2).map(describeRule),
      'exclude ~/build/**',
      'forward /srv/tools',
    ]);
    expect(effective.sources[1]).toEqual({ from: 'override', n: 1 });
    expect(effective.sources[0]).toEqual({ from: 'default', n: 1 });
    expect(effective.sources.slice(-2)).toEqual([
      { from: 'override', n: 2 },
      { from: 'override', n: 3 },
    ]);
    expect(effective.removed).toEqual([]);
    // Paths are compared as paths: ~ is /home/<user>.
    const home = effectivePolicy(defaults, linux([{ kind: 'cow', path: '~' }]));
    expect(home.rules[0]).toEqual({ kind: 'cow', path: '~' });
    expect(home.rules).toHaveLength(13);
  });

  it('removes a default rule with a "none" rule, for paths and patterns', () => {
    const effective = effectivePolicy(
      defaults,
      linux([
        { kind: 'none', path: '/var/lib' },
        { kind: 'none', pattern: '~/.cache/**' },
      ]),
    );
    expect(effective.rules.map(describeRule)).not.toContain('cow /var/lib');
    expect(effective.rules.some((r) => r.kind === 'exclude')).toBe(false);
    expect(effective.rules).toHaveLength(11);
    expect(effective.removed).toEqual([
      { rule: { kind: 'cow', path: '/var/lib' }, by: 1 },
      { rule: { kind: 'exclude', pattern: '~/.cache/**' }, by: 2 },
    ]);
  });

  it('refuses a "none" that removes nothing, naming it', () => {
    expect(overrideProblems(defaults, linux([{ kind: 'none', path: '/srv' }]))).toEqual([
      'override rule 1 (none /srv) removes nothing: the default has no rule for /srv',
    ]);
    expect(overrideProblems(defaults, linux([{ kind: 'none', pattern: '~/.npm/**' }]))).toEqual([
      'override rule 1 (none ~/.npm/**) removes nothing: the default has no rule for the pattern ~/.npm/**',
    ]);
  });

  it("validates the result, naming the override's and the default's rules", () => {
    expect(overrideProblems(defaults, linux([{ kind: 'forward', path: '/run/user' }]))).toEqual([
      "override rule 1 (forward /run/user) lies inside default rule 10 (host /run), which is the host's own and never saved",
    ]);
    // Removing the saved rule an exclude pattern lies in leaves the pattern outside any.
    expect(overrideProblems(defaults, linux([{ kind: 'host', path: '/home/<user>' }]))).toEqual([
      "default rule 13 (exclude ~/.cache/**) lies inside override rule 1 (host /home/<user>), which is the host's own and never saved",
    ]);
    expect(
      overrideProblems(
        defaults,
        linux([
          { kind: 'forward', path: '/srv' },
          { kind: 'cow', path: '/srv' },
        ]),
      ),
    ).toEqual(['override rules 1 (forward /srv) and 2 (cow /srv) name the same path']);
    expect(overrideProblems(defaults, linux([{ kind: 'frobnicate', path: '/srv' }]))).toEqual([
      'override rule 1: unknown kind "frobnicate" (one of forward, cow, host, ephemeral, exclude, none)',
    ]);
    expect(overrideProblems(defaults, windows([]))).toEqual([
      'the override is for windows, but the default policy it changes is for linux',
    ]);
    expect(overrideProblems(defaults, { v: 1, rules: [] })).toEqual([
      'platform must be "linux" or "windows"',
    ]);
  });

  it('is the default when there is no override', () => {
    const effective = effectivePolicy(defaults, null);
    expect(effective.rules).toEqual(defaults.rules);
    expect(effective.sources.every((s) => s.from === 'default')).toBe(true);
    expect(parseOverride(linux([{ kind: 'none', path: '/opt' }])).rules).toEqual([
      { kind: 'none', path: '/opt' },
    ]);
  });
});
