/**
 * Namespace forwarding (DESIGN.md): the rules, the default Linux and Windows policies, a
 * workspace's override merged onto them, and what the rules say about a path. Pure: no I/O.
 */
export {
  describeRule,
  effectivePolicy,
  type EffectivePolicy,
  type ExcludeRule,
  isPathRule,
  isSaved,
  MAX_RULES,
  type OverrideRule,
  parseOverride,
  parsePolicy,
  PATH_KINDS,
  type PathKind,
  type PathRule,
  type Policy,
  policyDocument,
  PolicyError,
  type PolicyOverride,
  type RemoveRule,
  type Rule,
  RULE_KINDS,
  type RuleKind,
  type RuleSource,
  type SavedKind,
} from './policy.js';
export { allowedBy, applyHostAccess, defaultHostAccess, type HostAccess } from './allow.js';
export { DEFAULT_LINUX_POLICY, DEFAULT_WINDOWS_POLICY, defaultPolicy } from './defaults.js';
export {
  excludeMatcher,
  type EvaluationOptions,
  type Layer,
  layers,
  pathRules,
  ruleFor,
} from './evaluate.js';
export { parsePath, PathSyntaxError, type Platform, PLATFORMS, USER } from './paths.js';
