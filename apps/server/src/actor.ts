/** Who is making a request: the authenticated user, the token they used, and where they came from. */
export interface Actor {
  id: string;
  username: string;
  role: 'user' | 'admin';
  tokenId: string;
  address: string;
}

export const isAdmin = (actor: Actor): boolean => actor.role === 'admin';
