/** A slice of a list, as the database takes it (`skip` and `take`); both absent: the whole list. */
export interface Slice {
  limit?: number | undefined;
  offset?: number | undefined;
}

/**
 * `text` for Prisma's `contains`, which becomes a LIKE pattern as it is: its wildcards (% and _) and
 * the escape character are escaped, so that they match themselves.
 */
export const literal = (text: string): string => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * What a list of rows with an owner includes to have each row's owner's username (the API's
 * `ownerName`): Prisma reads the owners of all the rows found in one more query, not one a row.
 */
export const WITH_OWNER_NAME = { owner: { select: { username: true } } } as const;
/** A row with its owner's username, as a query including WITH_OWNER_NAME answers it. */
export type WithOwnerName<R> = R & { owner: { username: string } };

/** A list of one owner's rows (or everyone's), those matching `search` if given. */
export interface OwnedFilter {
  ownerId?: string | undefined;
  search?: string | undefined;
}

/**
 * The `where` of an OwnedFilter for a model with an owner: `search` matches any of `fields`
 * ignoring case, or the owner's username (lower case, as usernames are).
 */
export function ownedWhere<F extends string>({ ownerId, search }: OwnedFilter, fields: readonly F[]) {
  if (!search) return { ownerId };
  const text = literal(search);
  const matches = fields.map(
    (field) => ({ [field]: { contains: text, mode: 'insensitive' } }) as Record<F, TextMatch>,
  );
  return { ownerId, OR: [...matches, { owner: { username: { contains: literal(search.toLowerCase()) } } }] };
}

interface TextMatch {
  contains: string;
  mode: 'insensitive';
}
