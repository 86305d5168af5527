import type { Actor } from '../actor.js';
import { notFound } from '../errors.js';
import type { UserRepository } from '../repositories/user.repository.js';

/**
 * The username of a row's owner, which the API answers with one device or workspace (`ownerName`):
 * the actor's own name without a query when the row is theirs, as most are (an agent's login and
 * heartbeats), else read. A row outlives no owner (deleting a user deletes their rows), so an
 * owner gone meanwhile means the row is gone: `what` names it in the 404.
 */
export async function ownerNameOf(
  users: Pick<UserRepository, 'findById'>,
  actor: Actor,
  ownerId: string,
  what: string,
): Promise<string> {
  if (ownerId === actor.id) return actor.username;
  const owner = await users.findById(ownerId);
  if (!owner) throw notFound(what);
  return owner.username;
}
