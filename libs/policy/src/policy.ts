import { z } from 'zod';
import {
  fixedPart,
  isFileSystemRoot,
  isWithin,
  keyOf,
  parsePath,
  PathSyntaxError,
  type Platform,
  PLATFORMS,
} from './paths.js';

/** The kinds of namespace-forwarding rule (see DESIGN.md, "Namespace forwarding"). */
export const RULE_KINDS = ['forward', 'cow', 'host', 'ephemeral', 'exclude'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

/** The kinds of rule that name one path (every kind but `exclude`). */
export const PATH_KINDS = ['forward', 'cow', 'host', 'ephemeral'] as const;
export type PathKind = (typeof PATH_KINDS)[number];

/** The kinds whose paths are saved in the image, each as a layer. */
export type SavedKind = 'forward' | 'cow';

/**
 * `forward`: served wholly from the image; `cow`: the host's content read-only beneath, every change
 * to the image; `host`: passed through, never captured; `ephemeral`: fresh and empty each session.
 */
export interface PathRule {
  kind: PathKind;
  path: string;
}

/** Paths inside a saved rule that are never saved (`*` within a name, `**` any depth). */
export interface ExcludeRule {
  kind: 'exclude';
  pattern: string;
}

export type Rule = PathRule | ExcludeRule;

/** In an override only: takes the default's rule for that path (or pattern) away. */
export type RemoveRule = { kind: 'none'; path: string } | { kind: 'none'; pattern: string };

export type OverrideRule = Rule | RemoveRule;

/** A policy document (version 1). */
export interface Policy {
  v: 1;
  platform: Platform;
  rules: Rule[];
}

/** What a workspace stores: rules that replace, add to or (with `none`) remove the default's. */
export interface PolicyOverride {
  v: 1;
  platform: Platform;
  rules: OverrideRule[];
}

/**
 * Most rules a document may hold. Each path rule is a mount and each pattern is tested on every
 * write, at every login: a few dozen is a large policy, and 2,000 rules kept a user from logging in.
 */
export const MAX_RULES = 256;

/**
 * Longest path or pattern a rule may give. A rule names a folder near the top of the tree; the
 * paths it is evaluated against may be longer (paths.ts allows those up to MAX_PATH_LENGTH).
 */
export const MAX_RULE_PATH_LENGTH = 1024;

/** How much of a rule's path a message shows: enough to recognise it, never a whole document. */
const SHOWN_PATH_LENGTH = 100;

/**
 * The Linux kernel's and run time's own folders: a session that does not see the host's own breaks
 * at login, so they can only be `host`. `within`: nothing under them may be anything else either.
 */
const KERNEL_FOLDERS: Readonly<Record<string, { what: string; within: boolean }>> = {
  proc: { what: "the kernel's view of the running processes", within: true },
  sys: { what: "the kernel's view of devices and drivers", within: true },
  dev: { what: "the host's device nodes", within: true },
  run: { what: "the host's run-time state (sockets, PID files, logins)", within: false },
};

/** A policy that cannot be used; `problems` says why, each naming the rules concerned. */
export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(readonly problems: string[]) {
    super(
      problems.length === 1
        ? `the policy is not valid: ${problems[0] ?? ''}`
        : `the policy is not valid:\n  ${problems.join('\n  ')}`,
    );
  }
}

export function isPathRule(rule: OverrideRule): rule is PathRule {
  return rule.kind !== 'exclude' && rule.kind !== 'none';
}

export function isSaved(kind: OverrideRule['kind']): kind is SavedKind {
  return kind === 'forward' || kind === 'cow';
}

/** `forward /opt`, `exclude ~/.cache/**`: how messages and `upc policy show` name a rule. */
export function describeRule(rule: OverrideRule): string {
  return `${rule.kind} ${'path' in rule ? rule.path : rule.pattern}`;
}

/** A path or pattern as a message shows it: cut short, with "…", when it is very long. */
function shown(text: string): string {
  return text.length > SHOWN_PATH_LENGTH ? `${text.slice(0, SHOWN_PATH_LENGTH)}…` : text;
}

/** describeRule, with a very long path cut short. */
function brief(rule: OverrideRule): string {
  return `${rule.kind} ${shown('path' in rule ? rule.path : rule.pattern)}`;
}

/** Which document a rule is in, and its number there (the first rule is 1). */
export interface RuleLabel {
  doc: 'default' | 'override' | undefined;
  n: number;
}

interface Entry {
  rule: OverrideRule;
  label: RuleLabel;
  /** Canonical path, or pattern for `exclude` (and `none` with a pattern). */
  keys: string[];
}

function docPrefix(label: RuleLabel): string {
  return label.doc ? `${label.doc} ` : '';
}

function one(entry: { rule: OverrideRule; label: RuleLabel }): string {
  return `${docPrefix(entry.label)}rule ${entry.label.n} (${brief(entry.rule)})`;
}

/** "rules 3 (forward /opt) and 7 (cow /opt)", or with the documents when they differ. */
function two(a: Entry, b: Entry): string {
  if (a.label.doc === b.label.doc) {
    return `${docPrefix(a.label)}rules ${a.label.n} (${brief(a.rule)}) and ${b.label.n} (${brief(b.rule)})`;
  }
  return `${one(a)} and ${one(b)}`;
}

// --- structure ---------------------------------------------------------------------------------

const TopLevel = z.strictObject({
  v: z.literal(1),
  platform: z.enum(PLATFORMS),
  rules: z.array(z.unknown()).max(MAX_RULES),
});
const PathRuleShape = z.strictObject({ kind: z.enum(PATH_KINDS), path: z.string() });
const ExcludeRuleShape = z.strictObject({ kind: z.literal('exclude'), pattern: z.string() });
const RemovePathShape = z.strictObject({ kind: z.literal('none'), path: z.string() });
const RemovePatternShape = z.strictObject({ kind: z.literal('none'), pattern: z.string() });

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fieldList(keys: string[]): string {
  return `${keys.length === 1 ? 'field' : 'fields'} ${keys.map((k) => JSON.stringify(k)).join(', ')}`;
}

/** Reads the document's top level; problems are pushed, the rules returned when readable. */
function readTopLevel(
  document: unknown,
  what: 'policy' | 'override',
  problems: string[],
): { platform: Platform; rules: unknown[] } | undefined {
  if (!isObject(document)) {
    problems.push(`the ${what} must be a JSON object like {"v": 1, "platform": "linux", "rules": [...]}`);
    return undefined;
  }
  const parsed = TopLevel.safeParse(document);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    const field = issue.path[0];
    if (issue.code === 'unrecognized_keys') {
      problems.push(`the ${what} has an unknown ${fieldList(issue.keys)} (it has v, platform and rules)`);
    } else if (field === 'v') {
      problems.push(
        document.v === undefined
          ? `the ${what} has no "v": this agent reads version 1`
          : `v must be 1 (the policy format this agent reads), not ${JSON.stringify(document.v)}`,
      );
    } else if (field === 'platform') {
      problems.push(
        `platform must be "linux" or "windows"${document.platform === undefined ? '' : `, not ${JSON.stringify(document.platform)}`}`,
      );
    } else if (field === 'rules') {
      problems.push(
        document.rules === undefined
          ? `the ${what} has no "rules"`
          : issue.code === 'too_big'
            ? `the ${what} has more than ${MAX_RULES} rules`
            : 'rules must be a list of rules like {"kind": "forward", "path": "/opt"}',
      );
    } else {
      problems.push(`the ${what}: ${issue.message}`);
    }
  }
  return undefined;
}

/** Reads one rule's shape (not its path); returns it, or pushes why it cannot be read. */
function readRule(
  raw: unknown,
  label: RuleLabel,
  allowRemove: boolean,
  problems: string[],
): OverrideRule | undefined {
  const name = `${docPrefix(label)}rule ${label.n}`;
  if (!isObject(raw)) {
    problems.push(`${name} must be an object like {"kind": "forward", "path": "/opt"}`);
    return undefined;
  }
  const kinds: string[] = [...RULE_KINDS, ...(allowRemove ? ['none'] : [])];
  const kind = raw.kind;
  const target = typeof raw.path === 'string' ? raw.path : typeof raw.pattern === 'string' ? raw.pattern : '';
  const named = typeof kind === 'string' ? `${name} (${`${kind} ${shown(target)}`.trim()})` : name;
  if (kind === 'none' && !allowRemove) {
    problems.push(`${named}: only a workspace's override removes rules ("none")`);
    return undefined;
  }
  if (typeof kind !== 'string' || !kinds.includes(kind)) {
    problems.push(
      kind === undefined
        ? `${name} has no "kind" (one of ${kinds.join(', ')})`
        : `${name}: unknown kind ${JSON.stringify(kind)} (one of ${kinds.join(', ')})`,
    );
    return undefined;
  }
  const shape =
    kind === 'exclude'
      ? ExcludeRuleShape
      : kind === 'none'
        ? 'pattern' in raw
          ? RemovePatternShape
          : RemovePathShape
        : PathRuleShape;
  const parsed = shape.safeParse(raw);
  if (parsed.success) return parsed.data;
  const wanted = kind === 'exclude' || (kind === 'none' && 'pattern' in raw) ? 'pattern' : 'path';
  const other = wanted === 'path' ? 'pattern' : 'path';
  if (raw[wanted] === undefined && raw[other] !== undefined && kind !== 'none') {
    problems.push(`${named}: ${article(kind)} rule takes a "${wanted}", not a "${other}"`);
    return undefined;
  }
  for (const issue of parsed.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      problems.push(`${named} has an unknown ${fieldList(issue.keys)}`);
    } else if (raw[wanted] === undefined) {
      problems.push(`${named} has no "${wanted}"`);
    } else {
      problems.push(`${named}: "${wanted}" must be a string`);
    }
  }
  return undefined;
}

function article(kind: string): string {
  return `${/^[aeiou]/.test(kind) ? 'an' : 'a'} ${kind}`;
}

/** Reads each rule, shape then path; rules that cannot be read are reported and left out. */
function readRules(
  platform: Platform,
  raws: unknown[],
  doc: RuleLabel['doc'],
  allowRemove: boolean,
  problems: string[],
): Entry[] {
  return raws.flatMap((raw, i) => {
    const rule = readRule(raw, label(doc, i), allowRemove, problems);
    return rule ? readPaths(platform, [{ rule, label: label(doc, i) }], problems) : [];
  });
}

/** Reads the rules' paths and patterns; rules that cannot be read are reported and left out. */
function readPaths(
  platform: Platform,
  rules: { rule: OverrideRule; label: RuleLabel }[],
  problems: string[],
): Entry[] {
  const entries: Entry[] = [];
  for (const { rule, label } of rules) {
    const pattern = 'pattern' in rule;
    const text = pattern ? rule.pattern : rule.path;
    if (text.length > MAX_RULE_PATH_LENGTH) {
      problems.push(
        `${one({ rule, label })}: the ${pattern ? 'pattern' : 'path'} is ${text.length} characters long, ` +
          `over the limit of ${MAX_RULE_PATH_LENGTH}`,
      );
      continue;
    }
    try {
      const keys = parsePath(platform, text, pattern);
      entries.push({ rule, label, keys });
    } catch (error) {
      if (!(error instanceof PathSyntaxError)) throw error;
      problems.push(`${one({ rule, label })}: ${error.message}`);
    }
  }
  return entries;
}

/** The same path (or pattern) given twice, whatever the kinds. */
function checkDuplicates(entries: Entry[], problems: string[]): void {
  const seen = new Map<string, Entry>();
  for (const entry of entries) {
    const pattern = 'pattern' in entry.rule;
    const key = `${pattern ? 'pattern' : 'path'}:${keyOf(entry.keys)}`;
    const first = seen.get(key);
    if (first) {
      problems.push(`${two(first, entry)} ${pattern ? 'give the same pattern' : 'name the same path'}`);
    } else {
      seen.set(key, entry);
    }
  }
}

/** The rules of a whole policy (no `none` left) against each other. */
function checkRules(platform: Platform, entries: Entry[], problems: string[]): void {
  checkDuplicates(entries, problems);
  const hosts = entries.filter((e) => e.rule.kind === 'host');
  const paths = entries.filter((e) => {
    if (!isPathRule(e.rule)) return false;
    if (e.rule.kind === 'host') return true;
    if (isFileSystemRoot(platform, e.keys)) {
      problems.push(`${one(e)}: the root itself cannot be ${e.rule.kind}; name the folders under it instead`);
      return false; // not used below: everything would lie inside it
    }
    const kernel = platform === 'linux' ? kernelFolderProblem(e, hosts) : undefined;
    if (kernel) problems.push(kernel);
    return true;
  });
  // Nothing lies inside a host or an ephemeral rule: neither is ever saved, so a rule there
  // would contradict it.
  for (const outer of paths) {
    if (outer.rule.kind !== 'host' && outer.rule.kind !== 'ephemeral') continue;
    for (const inner of paths) {
      if (inner.keys.length > outer.keys.length && isWithin(inner.keys, outer.keys)) {
        problems.push(`${one(inner)} lies inside ${one(outer)}, ${neverSaved(outer.rule.kind)}`);
      }
    }
  }
  // An exclude pattern narrows a saved rule: its fixed part (up to the first wildcard) must lie in
  // one, and the innermost rule there must be saved.
  for (const entry of entries) {
    if (entry.rule.kind !== 'exclude') continue;
    const around = innermost(paths, fixedPart(entry.keys));
    if (!around) {
      problems.push(`${one(entry)} is not inside a forward or cow rule: only saved paths can be excluded`);
    } else if (!isSaved(around.rule.kind)) {
      problems.push(`${one(entry)} lies inside ${one(around)}, ${neverSaved(around.rule.kind)}`);
    }
  }
}

/**
 * Why a rule other than `host` cannot name a kernel or run-time folder (or, for /proc, /sys and
 * /dev, anything under one). A rule already inside a host rule is left to that rule's message.
 */
function kernelFolderProblem(entry: Entry, hosts: readonly Entry[]): string | undefined {
  const [top, ...below] = entry.keys;
  const folder = top === undefined ? undefined : KERNEL_FOLDERS[top];
  if (!folder || (below.length > 0 && !folder.within)) return undefined;
  if (hosts.some((host) => host.keys.length < entry.keys.length && isWithin(entry.keys, host.keys))) {
    return undefined;
  }
  const kind = entry.rule.kind;
  const why = `a session that does not see the host's own breaks at every login`;
  return below.length === 0
    ? `${one(entry)}: /${top} is ${folder.what}; ${why}, so it can only be host`
    : `${one(entry)}: it lies in /${top}, ${folder.what}; ${why}, so nothing there can be ${kind}`;
}

function neverSaved(kind: OverrideRule['kind']): string {
  return kind === 'host'
    ? "which is the host's own and never saved"
    : 'which is fresh and empty each session and never saved';
}

/** The path rule with the longest path at or above `keys`. */
function innermost<T extends { keys: string[] }>(rules: T[], keys: string[]): T | undefined {
  let best: T | undefined;
  for (const rule of rules) {
    if (isWithin(keys, rule.keys) && (!best || rule.keys.length > best.keys.length)) best = rule;
  }
  return best;
}

/** The problems of a policy's rules given their (resolved) canonical paths, numbered from 1. */
export function rulesProblems(platform: Platform, items: { rule: Rule; keys: string[] }[]): string[] {
  const problems: string[] = [];
  checkRules(
    platform,
    items.map((item, i) => ({ ...item, label: label(undefined, i) })),
    problems,
  );
  return problems;
}

function label(doc: RuleLabel['doc'], index: number): RuleLabel {
  return { doc, n: index + 1 };
}

/**
 * Reads and validates a policy document. Throws PolicyError listing every problem, each naming
 * its rules by number (the first rule is 1).
 */
export function parsePolicy(document: unknown): Policy {
  return parseAs(document, undefined);
}

function parseAs(document: unknown, doc: RuleLabel['doc']): Policy {
  const problems: string[] = [];
  const top = readTopLevel(document, 'policy', problems);
  if (!top) throw new PolicyError(problems);
  const entries = readRules(top.platform, top.rules, doc, false, problems);
  if (problems.length === 0) checkRules(top.platform, entries, problems);
  if (problems.length > 0) throw new PolicyError(problems);
  return { v: 1, platform: top.platform, rules: entries.map((e) => e.rule as Rule) };
}

/** Reads an override on its own: its shape, its paths, nothing given twice. */
export function parseOverride(document: unknown): PolicyOverride {
  const problems: string[] = [];
  const top = readTopLevel(document, 'override', problems);
  if (!top) throw new PolicyError(problems);
  const entries = readRules(top.platform, top.rules, 'override', true, problems);
  if (problems.length === 0) checkDuplicates(entries, problems);
  if (problems.length > 0) throw new PolicyError(problems);
  return { v: 1, platform: top.platform, rules: entries.map((e) => e.rule) };
}

/** Where a rule of an effective policy comes from, and its number there. */
export interface RuleSource {
  from: 'default' | 'override';
  n: number;
}

/** A default merged with a workspace's override. */
export interface EffectivePolicy extends Policy {
  /** For each rule, in the same order: the document it comes from. */
  sources: RuleSource[];
  /** Default rules an override's `none` rule took away. */
  removed: { rule: Rule; by: number }[];
}

/** The policy document alone (an effective policy without its sources), to store or send. */
export function policyDocument(policy: Policy): Policy {
  return { v: 1, platform: policy.platform, rules: policy.rules.map((rule) => ({ ...rule })) };
}

/**
 * The policy a workspace runs with: the default, with the override's rules replacing the default's
 * rule for the same path (or pattern), `none` rules removing it, and new rules added after the
 * default's. Throws PolicyError if the override, or the result, is not valid.
 */
export function effectivePolicy(defaults: Policy, override: unknown): EffectivePolicy {
  const base = readPaths(
    defaults.platform,
    defaults.rules.map((rule, i) => ({ rule, label: label('default', i) })),
    [],
  );
  if (base.length !== defaults.rules.length) parsePolicy(defaults); // throws, saying why
  if (override === null || override === undefined) {
    const problems: string[] = [];
    checkRules(defaults.platform, base, problems);
    if (problems.length > 0) throw new PolicyError(problems);
    return {
      ...policyDocument(defaults),
      sources: defaults.rules.map((_, i) => ({ from: 'default', n: i + 1 })),
      removed: [],
    };
  }
  const parsed = parseOverride(override);
  if (parsed.platform !== defaults.platform) {
    throw new PolicyError([
      `the override is for ${parsed.platform}, but the default policy it changes is for ${defaults.platform}`,
    ]);
  }
  const problems: string[] = [];
  const changes = readPaths(
    parsed.platform,
    parsed.rules.map((rule, i) => ({ rule, label: label('override', i) })),
    problems,
  );
  const keyOfEntry = (e: Entry) => `${'pattern' in e.rule ? 'pattern' : 'path'}:${keyOf(e.keys)}`;
  const merged: (Entry | undefined)[] = [...base];
  const at = new Map(base.map((e, i) => [keyOfEntry(e), i]));
  const removed: EffectivePolicy['removed'] = [];
  for (const change of changes) {
    const index = at.get(keyOfEntry(change));
    const target = 'pattern' in change.rule ? change.rule.pattern : change.rule.path;
    if (change.rule.kind === 'none') {
      const old = index === undefined ? undefined : merged[index];
      if (index === undefined || !old) {
        const what = 'pattern' in change.rule ? `the pattern ${target}` : target;
        problems.push(`${one(change)} removes nothing: the default has no rule for ${what}`);
        continue;
      }
      removed.push({ rule: old.rule as Rule, by: change.label.n });
      merged[index] = undefined;
    } else if (index !== undefined) {
      merged[index] = change;
    } else {
      merged.push(change);
    }
  }
  const result = merged.filter((e): e is Entry => e !== undefined);
  checkRules(parsed.platform, result, problems);
  if (problems.length > 0) throw new PolicyError(problems);
  return {
    v: 1,
    platform: defaults.platform,
    rules: result.map((e) => ({ ...(e.rule as Rule) })),
    sources: result.map((e) => ({ from: e.label.doc === 'override' ? 'override' : 'default', n: e.label.n })),
    removed,
  };
}
