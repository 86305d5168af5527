import { defaultPolicy, effectivePolicy, parseOverride, PolicyError, type PolicyOverride } from '@upc/policy';
import { ApiException } from '../errors.js';

/**
 * A workspace's policy override as every agent will read it: the parser the agent uses, merged onto
 * the default policy of its platform. 400 invalid_policy names every problem (`problems`, one per
 * line of `detail`), so a policy no PC could run is never stored. Which host paths it may `cow` or
 * pass through is each PC's to decide (its allow-list), not the server's.
 */
export function checkPolicyOverride(document: unknown): PolicyOverride {
  try {
    const override = parseOverride(document);
    effectivePolicy(defaultPolicy(override.platform), override);
    return override;
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    throw new ApiException('invalid_policy', error.message, { problems: error.problems });
  }
}
