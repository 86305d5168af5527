import { defaultPolicy } from './defaults.js';
import { isWithin, parsePath, type Platform } from './paths.js';
import { describeRule, type Policy } from './policy.js';

/**
 * What a PC lets a workspace do with the PC's own folders (DESIGN.md: "a workspace's policy is the
 * user's wish; the PC decides"). A `cow` rule shows a host folder beneath the session's changes —
 * on Linux through an idmapped copy in which the host root's files are the session root's, so the
 * session's root may read whatever root-only file that folder holds — and a `host` rule passes one
 * through. A workspace's rule of either kind is applied only where its path is one of the PC's, or
 * inside one. `writable`: host folders the session may write to; every other passed-through folder
 * is read-only in the session, so that nothing a session writes stays on the PC for the next
 * person (even one who happens to be given the same ids).
 */
export interface HostAccess {
  cow: string[];
  host: string[];
  writable: string[];
}

/** A PC's default: what the platform's default policy shows of the host, none of it writable. */
export function defaultHostAccess(platform: Platform): HostAccess {
  const rules = defaultPolicy(platform).rules;
  const paths = (kind: 'cow' | 'host') => rules.flatMap((r) => (r.kind === kind ? [r.path] : []));
  return { cow: paths('cow'), host: paths('host'), writable: [] };
}

/** Whether `path` is one of `allowed`, or inside one (compared as the platform compares paths). */
export function allowedBy(platform: Platform, path: string, allowed: readonly string[]): boolean {
  const keys = parsePath(platform, path);
  return allowed.some((folder) => isWithin(keys, parsePath(platform, folder)));
}

/**
 * The policy as this PC applies it: `cow` and `host` rules the PC does not allow are left out, and
 * said (`refused`, each with its reason). Where a rule is left out, the path is what the rest of
 * the policy makes it (for an unnamed path on Linux: the host's, read-only); what the image holds
 * for a `cow` rule left out stays in the image, untouched.
 */
export function applyHostAccess(policy: Policy, access: HostAccess): { policy: Policy; refused: string[] } {
  const refused: string[] = [];
  const rules = policy.rules.filter((rule) => {
    if (rule.kind !== 'cow' && rule.kind !== 'host') return true;
    const allowed = rule.kind === 'cow' ? access.cow : access.host;
    if (allowedBy(policy.platform, rule.path, allowed)) return true;
    refused.push(
      `${describeRule(rule)}: this PC does not let a workspace ${rule.kind === 'cow' ? 'change' : 'pass through'} that folder; left out`,
    );
    return false;
  });
  return { policy: { ...policy, rules }, refused };
}
