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
