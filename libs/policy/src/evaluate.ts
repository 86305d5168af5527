import {
  checkUserName,
  hasControlCharacter,
  expandUser,
  fixedPart,
  globToRegExp,
  homeKeys,
  isWithin,
  keyOf,
  parsePath,
  type Platform,
  resolveUser,
} from './paths.js';
import {
  type ExcludeRule,
  isPathRule,
  isSaved,
  type PathRule,
  type Policy,
  PolicyError,
  parsePolicy,
  policyDocument,
  rulesProblems,
  type SavedKind,
} from './policy.js';

export interface EvaluationOptions {
  /**
   * The user whose session it is: `<user>` and `~` then stand for their name and home, so host
   * paths such as `/home/ann/.cache` are evaluated. Without it they stay placeholders.
   */
  user?: string;
}

interface Compiled {
  platform: Platform;
  home: string[];
  paths: { rule: PathRule; keys: string[] }[];
  excludes: { rule: ExcludeRule; fixed: string[]; test: RegExp }[];
}

const compiled = new WeakMap<Policy, Map<string, Compiled>>();

/** The policy validated and its paths resolved for the user, once per policy object and user. */
function compile(policy: Policy, user: string | undefined): Compiled {
  const slot = user ?? '\u0000';
  const known = compiled.get(policy)?.get(slot);
  if (known) return known;
  if (user !== undefined) checkUserName(user);
  const { platform, rules } = parsePolicy(policyDocument(policy));
  const items = rules.map((rule) => ({
    rule,
    keys: resolveUser(
      platform,
      parsePath(platform, 'path' in rule ? rule.path : rule.pattern, rule.kind === 'exclude'),
      user,
    ),
  }));
  if (user !== undefined) {
    // A path written out for one user (/home/ann/x) may meet one written with ~ (~/x).
    const problems = rulesProblems(platform, items);
    if (problems.length > 0) throw new PolicyError(problems.map((p) => `${p} (for the user ${user})`));
  }
  const result: Compiled = {
    platform,
    home: resolveUser(platform, homeKeys(platform), user),
    paths: items.flatMap(({ rule, keys }) => (isPathRule(rule) ? [{ rule, keys }] : [])),
    excludes: items.flatMap(({ rule, keys }) =>
      rule.kind === 'exclude' ? [{ rule, fixed: fixedPart(keys), test: globToRegExp(keys) }] : [],
    ),
  };
  const byUser = compiled.get(policy) ?? new Map<string, Compiled>();
  byUser.set(slot, result);
  compiled.set(policy, byUser);
  return result;
}

/**
 * The rule that decides what happens at an absolute path: the one with the longest path at or
 * above it (the innermost wins, so `forward /usr/local` inside `cow /usr` decides
 * `/usr/local/bin`). Undefined when no rule names the path: the host's content is then visible
 * read-only. Exclude rules are not path rules; see `excludeMatcher`.
 */
export function ruleFor(policy: Policy, path: string, options: EvaluationOptions = {}): PathRule | undefined {
  const c = compile(policy, options.user);
  const keys = resolveUser(c.platform, parsePath(c.platform, path), options.user);
  let best: { rule: PathRule; keys: string[] } | undefined;
  for (const item of c.paths) {
    if (isWithin(keys, item.keys) && (!best || item.keys.length > best.keys.length)) best = item;
  }
  return best?.rule;
}

/** Every path rule (forward, cow, host, ephemeral) with `~` and `<user>` written out for the user. */
export function pathRules(
  policy: Policy,
  options: EvaluationOptions = {},
): { kind: PathRule['kind']; path: string }[] {
  const c = compile(policy, options.user);
  return c.paths.map(({ rule }) => ({
    kind: rule.kind,
    path: expandUser(c.platform, rule.path, options.user),
  }));
}

/** One saved rule's subtree in the image. */
export interface Layer {
  /** Its folder, relative to the image's root: `home`, `opt`, `usr-local`, `cow/etc`. */
  name: string;
  kind: SavedKind;
  /** Where the host sees it (with `~` and `<user>` written out when a user was given). */
  path: string;
  rule: PathRule;
}

/**
 * The image's layers: one per forward or cow rule, in the policy's order. Each is one folder of
 * the image's root (cow rules' under `cow/`), named by `layerName`, so no two layers nest.
 */
export function layers(policy: Policy, options: EvaluationOptions = {}): Layer[] {
  const c = compile(policy, options.user);
  const out: Layer[] = [];
  for (const { rule, keys } of c.paths) {
    if (!isSaved(rule.kind)) continue;
    out.push({
      name: layerName(c.platform, keys, c.home, rule.kind),
      kind: rule.kind,
      path: expandUser(c.platform, rule.path, options.user),
      rule,
    });
  }
  return out;
}

/** Characters a layer name writes as `%XX`: the encoding's own, and what a file name cannot hold. */
const ESCAPED = new Set(['%', '-', '~', '/', '\\', ':', '*', '?', '"', '<', '>', '|']);

function percent(c: string): string {
  return `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;
}

function escapeName(name: string): string {
  let escaped = '';
  for (const c of name) escaped += ESCAPED.has(c) || hasControlCharacter(c) ? percent(c) : c;
  return escaped;
}

/**
 * A saved path's folder in the image, stable and collision-free:
 *
 * - the user's home is `home` (the agent keeps the session's HOME there);
 * - any other path is its names joined by `-`, each with `%`, `-`, `~` and the characters a file
 *   name cannot hold written `%XX`; a path inside the home starts with `~` instead of the home's
 *   names (`~/.local/bin` → `~-.local-bin`); on Windows the names are lower case and a drive is
 *   its letter (`C:\Program Files` → `c-program files`, `HKLM\SOFTWARE` → `hklm-software`);
 * - the two names the layout itself uses are escaped when a path would take them (`/home` →
 *   `%68ome`, `/cow` → `%63ow`);
 * - a cow rule's folder is the same under `cow/` (`/etc` → `cow/etc`, `/var/lib` → `cow/var-lib`).
 *
 * Distinct paths give distinct names (the encoding can be read back), and a name never holds
 * another layer's, so layers never overlap in the image.
 */
export function layerName(
  platform: Platform,
  keys: readonly string[],
  home: readonly string[],
  kind: SavedKind,
): string {
  let body: string;
  if (keys.length === home.length && isWithin(keys, home)) {
    body = 'home';
  } else if (isWithin(keys, home)) {
    body = ['~', ...keys.slice(home.length).map(escapeName)].join('-');
  } else {
    body = keys
      .map((key, i) =>
        platform === 'windows' && i === 0 && /^[a-z]:$/.test(key) ? key.slice(0, 1) : escapeName(key),
      )
      .join('-');
    if (body === 'home' || body === 'cow') body = percent(body.slice(0, 1)) + body.slice(1);
  }
  return kind === 'cow' ? `cow/${body}` : body;
}

/**
 * A test for paths relative to the image's root (`home/.cache/thumbnails/x.png`): true for what
 * the policy's exclude rules keep out of the image. `*` is any run of characters within one name,
 * `**` any number of names (none included, so `~/.cache/**` keeps out `home/.cache` itself, and a
 * snapshot need not look inside it); on Windows case does not matter.
 */
export function excludeMatcher(
  policy: Policy,
  options: EvaluationOptions = {},
): (imagePath: string) => boolean {
  const c = compile(policy, options.user);
  const byName = new Map<string, { prefix: string; tests: RegExp[] }>();
  for (const { rule, keys } of c.paths) {
    if (!isSaved(rule.kind)) continue;
    // Only the patterns that can meet this layer's paths: one's fixed part holds the other.
    const tests = c.excludes
      .filter((e) => isWithin(e.fixed, keys) || isWithin(keys, e.fixed))
      .map((e) => e.test);
    byName.set(layerName(c.platform, keys, c.home, rule.kind), { prefix: keyOf(keys), tests });
  }
  const fold = c.platform === 'windows' ? (s: string) => s.toLowerCase() : (s: string) => s;
  return (imagePath) => {
    const parts = imagePath.split('/');
    const cow = parts[0] === 'cow';
    const layer = byName.get(cow ? `cow/${parts[1] ?? ''}` : (parts[0] ?? ''));
    if (!layer || layer.tests.length === 0) return false;
    const rest = parts.slice(cow ? 2 : 1);
    const path = rest.length === 0 ? layer.prefix : `${layer.prefix}/${fold(rest.join('/'))}`;
    return layer.tests.some((test) => test.test(path));
  };
}
