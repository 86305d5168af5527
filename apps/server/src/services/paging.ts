import { type Actor, isAdmin } from '../actor.js';
import type { OwnedFilter, Slice } from '../repositories/slice.js';

/** A list as a service answers it: `total` is set when a page was asked for (a limit or an offset). */
export interface Paged<T> {
  items: T[];
  total?: number | undefined;
}

const isPaged = (slice: Slice): boolean => slice.limit !== undefined || slice.offset !== undefined;

/**
 * The rows of `slice` (all of them when it asks for no page), and, for a page, how many match in all;
 * both queries run at once.
 */
export async function listPage<R>(
  slice: Slice,
  rows: (slice: Slice) => Promise<R[]>,
  count: () => Promise<number>,
): Promise<{ rows: R[]; total: number | undefined }> {
  const [found, total] = await Promise.all([rows(slice), isPaged(slice) ? count() : undefined]);
  return { rows: found, total };
}

/** A repository of rows that have an owner, searched and paged by the database. */
interface OwnedRows<R> {
  list(filter: OwnedFilter, slice: Slice): Promise<R[]>;
  count(filter: OwnedFilter): Promise<number>;
}

/**
 * A list of owned rows as `actor` may see it: an admin anyone's (or `ownerId`'s), a user their own
 * only (someone else's `ownerId` finds nothing, as if they had none); `search`, `limit` and `offset`
 * as the repository takes them. `toItems` turns the rows into what the API answers.
 */
export async function listOwned<R, T>(
  actor: Actor,
  query: OwnedFilter & Slice,
  repository: OwnedRows<R>,
  toItems: (rows: R[]) => T[] | Promise<T[]>,
): Promise<Paged<T>> {
  const { ownerId, search, ...slice } = query;
  if (!isAdmin(actor) && ownerId !== undefined && ownerId !== actor.id) {
    return { items: [], total: isPaged(slice) ? 0 : undefined };
  }
  const filter = { ownerId: isAdmin(actor) ? ownerId : actor.id, search: search || undefined };
  const { rows, total } = await listPage(
    slice,
    (page) => repository.list(filter, page),
    () => repository.count(filter),
  );
  return { items: await toItems(rows), total };
}
