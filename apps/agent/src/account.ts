import { readFile } from 'node:fs/promises';
import { describeRule, parseOverride, type Platform, PolicyError, type Rule } from '@upc/policy';
import { UpcClient, type Workspace } from '@upc/protocol';
import { AgentError, EXIT } from './exit-codes.js';
import { DEFAULT_WORKSPACE, overrideApplies, PLATFORM, workspacePolicy } from './session.js';
import type { AgentHome } from './state.js';

/**
 * A signed-in client and a workspace to act on: the session's own (with its token) when the
 * name is the session's or not given; otherwise one found by name (default "default"), signed in
 * through `connect` (UPC_USER / UPC_PASSWORD).
 */
export async function openWorkspace(
  home: AgentHome,
  connect: () => Promise<UpcClient>,
  name: string | undefined,
  options: { create?: boolean } = {},
): Promise<{ client: UpcClient; workspace: Workspace }> {
  const session = await home.readSession();
  if (session?.server && (name === undefined || name === session.workspace.name)) {
    const client = new UpcClient({ baseUrl: session.server.url, token: session.server.token });
    return { client, workspace: await client.getWorkspace(session.workspace.id) };
  }
  const client = await connect();
  const wanted = name ?? DEFAULT_WORKSPACE;
  const found = (await client.listWorkspaces()).find((w) => w.name === wanted);
  if (found) return { client, workspace: found };
  if (!options.create) throw new AgentError(`you have no workspace named "${wanted}"`);
  return { client, workspace: await client.createWorkspace({ name: wanted }) };
}

/** A workspace's effective policy, as `upc policy show` prints it. */
export interface PolicyReport {
  workspace: string;
  platform: Platform;
  /** The override the workspace stores, as stored (null: none). */
  override: Record<string, unknown> | null;
  /** False when the stored override is for another platform: this PC runs the default. */
  overrideApplies: boolean;
  /** The effective rules, each with the document it comes from and its number there. */
  rules: (Rule & { from: 'default' | 'override'; n: number })[];
  /** Default rules the override removes, with the number of the override's `none` rule. */
  removed: { rule: Rule; by: number }[];
}

/** The effective policy of a workspace on this PC: the default and the workspace's override. */
export function policyReport(workspace: Workspace): PolicyReport {
  const applies = overrideApplies(workspace.policy);
  let policy;
  try {
    policy = workspacePolicy(applies ? workspace.policy : null);
  } catch (error) {
    if (!(error instanceof AgentError)) throw error;
    throw new AgentError(
      `the policy stored for "${workspace.name}" cannot be used: ${error.message}\n` +
        '(upc policy set FILE replaces it; upc policy reset removes it)',
    );
  }
  return {
    workspace: workspace.name,
    platform: PLATFORM,
    override: workspace.policy,
    overrideApplies: workspace.policy !== null && applies,
    rules: policy.rules.map((rule, i) => ({
      ...rule,
      from: policy.sources[i]?.from ?? 'default',
      n: policy.sources[i]?.n ?? 0,
    })),
    removed: policy.removed,
  };
}

/** `upc policy show`: one rule per line, the override's marked. */
export function describePolicy(report: PolicyReport): string {
  const overridden = report.rules.filter((r) => r.from === 'override').length + report.removed.length;
  const summary =
    report.override === null
      ? 'the default (no override)'
      : !report.overrideApplies
        ? `the default (the stored override is for ${String(report.override.platform)}, not ${report.platform})`
        : `the default with an override of ${overridden} ${overridden === 1 ? 'rule' : 'rules'}`;
  const line = (rule: Rule, note: string) =>
    `  ${rule.kind.padEnd(10)} ${('path' in rule ? rule.path : rule.pattern).padEnd(40)} ${note}`.trimEnd();
  return [
    `policy of workspace "${report.workspace}" on ${report.platform}: ${summary}`,
    ...report.rules.map((rule) => line(rule, rule.from === 'override' ? `(override rule ${rule.n})` : '')),
    ...report.removed.map(
      ({ rule, by }) => `  removed    ${describeRule(rule).padEnd(40)} (override rule ${by})`,
    ),
  ].join('\n');
}

/**
 * Reads an override document from a file and checks it against the default of its platform (so a
 * Windows override can be set from a Linux PC). Refuses, with exit 2, what cannot be used.
 */
export async function readOverride(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new AgentError(`cannot read ${file}: ${(error as Error).message}`, EXIT.usage);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new AgentError(`${file} is not JSON: ${(error as Error).message}`, EXIT.usage);
  }
  let override;
  try {
    override = parseOverride(document);
  } catch (error) {
    if (error instanceof PolicyError) throw new AgentError(`${file}: ${error.message}`, EXIT.usage);
    throw error;
  }
  try {
    workspacePolicy(override, override.platform);
  } catch (error) {
    if (error instanceof AgentError) throw new AgentError(`${file}: ${error.message}`, EXIT.usage);
    throw error;
  }
  return { ...override };
}
