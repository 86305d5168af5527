import type { RuleKind } from '@upc/policy';

/** The rule kinds the driver turns into mounts; the Linux driver itself lands with issue 5. */
export const MOUNTED_RULE_KINDS: readonly RuleKind[] = ['forward', 'cow', 'ephemeral'];
