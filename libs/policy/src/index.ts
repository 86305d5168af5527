/** The kinds of namespace-forwarding rule (see DESIGN.md, "Namespace forwarding"). Filled by issue 5. */
export const RULE_KINDS = ['forward', 'cow', 'host', 'ephemeral', 'exclude'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];
