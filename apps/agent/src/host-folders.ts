import { defaultHostAccess, type HostAccess, parsePath, PathSyntaxError } from '@upc/policy';
import { AgentError, EXIT } from './exit-codes.js';
import { PLATFORM } from './session.js';
import type { AgentHome } from './state.js';

const KINDS = ['cow', 'host', 'writable'] as const;
type Kind = (typeof KINDS)[number];

const MEANING: Record<Kind, string> = {
  cow: 'a workspace may change (cow: the PC’s content beneath, changes saved in the workspace)',
  host: 'a workspace may pass through (host: the PC’s own, never saved)',
  writable: 'a session may write to, among those it passes through (all others are read-only)',
};

/** What this PC lets workspaces do with its folders, said for a person. */
export function describeHostFolders(access: HostAccess): string {
  return KINDS.map(
    (kind) =>
      `folders ${MEANING[kind]}:\n${access[kind].map((path) => `  ${path}`).join('\n') || '  (none)'}`,
  ).join('\n');
}

/**
 * `upc device host-folders [allow|deny KIND PATH | reset]`: shows, or changes, which of this PC's
 * folders workspaces may show copy-on-write, pass through, or write to (from the next login on).
 */
export async function hostFolders(home: AgentHome, positionals: string[]): Promise<HostAccess> {
  const preferences = await home.readDevicePreferences();
  const current = preferences.hostAccess ?? defaultHostAccess(PLATFORM);
  const [action, kind, path, ...rest] = positionals;
  if (action === undefined) return current;
  if (action === 'reset' && kind === undefined) {
    const { hostAccess: _dropped, ...others } = preferences;
    await home.writeDevicePreferences(others);
    return defaultHostAccess(PLATFORM);
  }
  if ((action !== 'allow' && action !== 'deny') || rest.length > 0) {
    throw new AgentError('say allow KIND PATH, deny KIND PATH or reset', EXIT.usage);
  }
  if (!KINDS.includes(kind as Kind)) throw new AgentError('KIND is cow, host or writable', EXIT.usage);
  if (path === undefined) throw new AgentError('give the folder, as an absolute path', EXIT.usage);
  try {
    parsePath(PLATFORM, path);
  } catch (error) {
    if (error instanceof PathSyntaxError) throw new AgentError(`${path}: ${error.message}`, EXIT.usage);
    throw error;
  }
  const list = current[kind as Kind];
  if (action === 'deny' && !list.includes(path)) {
    throw new AgentError(
      `${path} is not among the ${kind} folders (upc device host-folders lists them)`,
      EXIT.usage,
    );
  }
  const changed: HostAccess = {
    ...current,
    [kind as Kind]: action === 'allow' ? [...new Set([...list, path])] : list.filter((p) => p !== path),
  };
  await home.writeDevicePreferences({ ...preferences, hostAccess: changed });
  return changed;
}
