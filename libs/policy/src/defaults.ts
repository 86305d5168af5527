import type { Platform } from './paths.js';
import type { Policy } from './policy.js';

/**
 * The default Linux policy (DESIGN.md, "Namespace forwarding"): the user's home and the places
 * programs install to are the image's; system folders are copy-on-write; the kernel's file systems
 * are the host's; scratch folders start empty; caches are not saved.
 */
export const DEFAULT_LINUX_POLICY: Policy = frozen({
  v: 1,
  platform: 'linux',
  rules: [
    { kind: 'forward', path: '/home/<user>' },
    { kind: 'forward', path: '/opt' },
    { kind: 'forward', path: '/usr/local' },
    { kind: 'cow', path: '/etc' },
    { kind: 'cow', path: '/usr' },
    { kind: 'cow', path: '/var/lib' },
    { kind: 'host', path: '/proc' },
    { kind: 'host', path: '/sys' },
    { kind: 'host', path: '/dev' },
    { kind: 'host', path: '/run' },
    { kind: 'ephemeral', path: '/tmp' },
    { kind: 'ephemeral', path: '/var/tmp' },
    { kind: 'exclude', pattern: '~/.cache/**' },
  ],
});

/**
 * The default Windows policy, the paper's own: the profile, `Program Files*` (both folders) and
 * ProgramData, the HKCU hive and HKLM\SOFTWARE are the image's; `C:\Windows` is copy-on-write; the
 * hardware keys, SAM and SECURITY are the host's; `%TEMP%` (`~\AppData\Local\Temp`) starts empty;
 * the browsers' caches are not saved.
 */
export const DEFAULT_WINDOWS_POLICY: Policy = frozen({
  v: 1,
  platform: 'windows',
  rules: [
    { kind: 'forward', path: 'C:\\Users\\<user>' },
    { kind: 'forward', path: 'C:\\Program Files' },
    { kind: 'forward', path: 'C:\\Program Files (x86)' },
    { kind: 'forward', path: 'C:\\ProgramData' },
    { kind: 'forward', path: 'HKCU' },
    { kind: 'forward', path: 'HKLM\\SOFTWARE' },
    { kind: 'cow', path: 'C:\\Windows' },
    { kind: 'host', path: 'HKLM\\HARDWARE' },
    { kind: 'host', path: 'HKLM\\SAM' },
    { kind: 'host', path: 'HKLM\\SECURITY' },
    { kind: 'ephemeral', path: '~\\AppData\\Local\\Temp' },
    { kind: 'exclude', pattern: '~\\AppData\\Local\\Google\\Chrome\\User Data\\*\\Cache\\**' },
    { kind: 'exclude', pattern: '~\\AppData\\Local\\Google\\Chrome\\User Data\\*\\Code Cache\\**' },
    { kind: 'exclude', pattern: '~\\AppData\\Local\\Microsoft\\Edge\\User Data\\*\\Cache\\**' },
    { kind: 'exclude', pattern: '~\\AppData\\Local\\Microsoft\\Edge\\User Data\\*\\Code Cache\\**' },
    { kind: 'exclude', pattern: '~\\AppData\\Local\\Mozilla\\Firefox\\Profiles\\*\\cache2\\**' },
  ],
});

/** The default policy of a platform (a copy: changing it changes nothing else). */
export function defaultPolicy(platform: Platform): Policy {
  const policy = platform === 'linux' ? DEFAULT_LINUX_POLICY : DEFAULT_WINDOWS_POLICY;
  return { v: 1, platform, rules: policy.rules.map((rule) => ({ ...rule })) };
}

/** The defaults cannot be changed by accident: callers get copies from defaultPolicy. */
function frozen(policy: Policy): Policy {
  for (const rule of policy.rules) Object.freeze(rule);
  Object.freeze(policy.rules);
  return Object.freeze(policy);
}
