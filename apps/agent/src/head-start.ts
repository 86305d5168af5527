import { mkdir } from 'node:fs/promises';
import type { PreparedBuilder } from '@upc/driver';
import { LocalRepository } from '@upc/image';
import type { PcLoginResponse } from '@upc/protocol';
import { loadCache, readCachedHead } from './cache.js';
import { requireLayersRoom } from './expansion.js';
import {
  type LoginOptions,
  policyKey,
  policyOfWorkspace,
  type PreparedLayers,
  restoreWorkspace,
} from './session.js';
import type { AgentHome } from './state.js';

/**
 * The resident service's head start on a warm login. A sign-in takes the server a few tens of
 * milliseconds (argon2id, the lease); restoring the user's workspace from this PC's cache takes
 * about as long. The cache is sealed with a key only the server hands out, so without help the
 * restore waits for the server's answer. The service therefore remembers, in its memory and
 * nowhere else, what the server answered at a user's last login through it: their id, their cache
 * key, the workspace's id and policy. When the same user logs in again, the restore of the version
 * the cache was saved at runs while the server checks the password. The login keeps that restore
 * only if the server then names the same version, key and policy, so the server still decides
 * everything; a wrong guess costs the time of a login without a head start.
 *
 * Nothing of it is shown to anyone before the server has answered: the layers go to a folder only
 * root can reach, and a login that fails wipes them before the service takes the next one.
 */

/** How long the service remembers a user after their last successful login through it. */
export const REMEMBER_MS = 12 * 60 * 60 * 1000;

interface Acquaintance {
  userId: string;
  cacheKey: string;
  workspaceId: string;
  policy: unknown;
  until: number;
}

export class HeadStart {
  private readonly known = new Map<string, Acquaintance>();

  constructor(
    private readonly home: AgentHome,
    private readonly now: () => number = Date.now,
  ) {}

  /** Kept from the server's answer to a login that asked for the cache key. */
  remember(options: LoginOptions, gather: PcLoginResponse): void {
    if (!gather.cacheKey) {
      this.forget(options);
      return;
    }
    this.known.set(keyOf(options), {
      userId: gather.device.ownerId,
      cacheKey: gather.cacheKey,
      workspaceId: gather.workspace.id,
      policy: gather.workspace.policy,
      until: this.now() + REMEMBER_MS,
    });
  }

  /** A login that failed (a wrong password, a lockout, the lease held elsewhere) drops what was kept. */
  forget(options: LoginOptions): void {
    this.known.delete(keyOf(options));
  }

  /** How many users the service remembers now. */
  size(): number {
    for (const [key, known] of this.known) if (known.until <= this.now()) this.known.delete(key);
    return this.known.size;
  }

  /**
   * The version this PC's cache of the user was saved at, restored into the session's place and
   * its namespaces built, as a login would; undefined when there is nothing to start from.
   */
  prepare = async (
    options: LoginOptions,
    takeBuilder: () => PreparedBuilder | undefined,
  ): Promise<PreparedLayers | undefined> => {
    const known = this.known.get(keyOf(options));
    if (!known || known.until <= this.now()) return undefined;
    const home = this.home;
    const preferences = await home.readDevicePreferences();
    if (!preferences.keepCache) return undefined;
    const head = await readCachedHead(home, known.userId, known.cacheKey);
    if (head?.workspaceId !== known.workspaceId) return undefined;
    const policy = policyOfWorkspace(options.workspace, known.policy);
    // No session record exists (the login checked): what is here is a cut-short login's.
    await home.wipeSession();
    await mkdir(home.sessionDir, { recursive: true, mode: 0o700 });
    const repo = await LocalRepository.open(home.objectsDir);
    try {
      await loadCache(home, known.userId, known.cacheKey, repo);
      // An object the cache lacks fails the restore: nothing is fetched before the server answers.
      const layers = await restoreWorkspace(home, repo, head.root, policy, options.user, {
        builder: takeBuilder(),
        // A version that does not fit is left to the login, which says so.
        place: requireLayersRoom(home, preferences.layers, head.fileBytes),
      });
      return {
        ...layers,
        workspaceId: known.workspaceId,
        root: head.root,
        cacheKey: known.cacheKey,
        policy: policyKey(known.policy),
        repo,
        fileBytes: head.fileBytes,
      };
    } catch (error) {
      repo.close();
      throw error;
    }
  };
}

function keyOf(options: LoginOptions): string {
  return JSON.stringify([options.server, options.user, options.workspace]);
}
