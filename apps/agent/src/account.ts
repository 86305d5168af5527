import { UpcClient, type Workspace } from '@upc/protocol';
import { AgentError } from './exit-codes.js';
import { DEFAULT_WORKSPACE } from './session.js';
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
