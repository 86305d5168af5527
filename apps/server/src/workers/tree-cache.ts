import type { DecodedTree, Trees } from './tree-work.js';

/**
 * A worker's recently decoded trees, by id (a tree's content never changes), most recently used
 * kept, at most `maxEntries` entries in all: paging through a big folder decodes it once.
 */
export class TreeCache implements Trees {
  private readonly trees = new Map<string, DecodedTree>();
  private entries = 0;

  constructor(private readonly maxEntries: number) {}

  get(hash: string): DecodedTree | undefined {
    const tree = this.trees.get(hash);
    if (tree) {
      this.trees.delete(hash);
      this.trees.set(hash, tree);
    }
    return tree;
  }

  set(hash: string, tree: DecodedTree): void {
    if (tree.entries.length > this.maxEntries || this.trees.has(hash)) return;
    this.trees.set(hash, tree);
    this.entries += tree.entries.length;
    for (const [oldest, old] of this.trees) {
      if (this.entries <= this.maxEntries) break;
      this.trees.delete(oldest);
      this.entries -= old.entries.length;
    }
  }
}
