/** Where a workspace's bytes live in the object store. Everything of one workspace shares one prefix. */
export const workspacePrefix = (workspaceId: string) => `workspaces/${workspaceId}/`;
export const objectKey = (workspaceId: string, hash: string) =>
  `${workspacePrefix(workspaceId)}objects/${hash.slice(0, 2)}/${hash}`;
export const packKey = (workspaceId: string, hash: string) =>
  `${workspacePrefix(workspaceId)}packs/${hash.slice(0, 2)}/${hash}`;
