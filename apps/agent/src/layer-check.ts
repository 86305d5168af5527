import { decodeTree, type Entry, type ObjectReader } from '@upc/image';
import { layers, type Policy } from '@upc/policy';
import { AgentError } from './exit-codes.js';

/**
 * Refuses an image whose layers are not folders. Each saved rule's layer (`home`, `opt`,
 * `cow/etc`…) and every folder on the way to it must be a folder in the image, or absent: a layer
 * that is a link (`home -> /`) would otherwise become a link in the session's folder, and what is
 * mounted from there would be whatever it points at on the PC.
 */
export async function checkLayers(
  reader: ObjectReader,
  root: string,
  policy: Policy,
  user?: string,
): Promise<void> {
  const trees = new Map<string, Entry[]>();
  const entriesOf = async (tree: string): Promise<Entry[]> => {
    const known = trees.get(tree);
    if (known) return known;
    const entries = decodeTree(await reader.read(tree), tree).entries;
    trees.set(tree, entries);
    return entries;
  };
  for (const layer of layers(policy, user === undefined ? {} : { user })) {
    let tree = root;
    const parts = layer.name.split('/');
    for (const [i, name] of parts.entries()) {
      const found = (await entriesOf(tree)).find((e) => e.name === name);
      if (!found) break; // not in the image yet: the session starts it empty
      if (found.type !== 'dir') {
        throw new AgentError(
          `the workspace's image is refused: its ${parts.slice(0, i + 1).join('/')} (the layer of ${layer.kind} ${layer.path}) is a ${found.type}, not a folder`,
        );
      }
      tree = found.tree;
    }
  }
}
