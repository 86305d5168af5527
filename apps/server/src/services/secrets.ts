import { createHash, randomBytes } from 'node:crypto';
import argon2 from 'argon2';

// argon2id at OWASP's first recommended setting (19 MiB, 2 passes, 1 lane): about 20 ms here.
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const hashPassword = (password: string): Promise<string> => argon2.hash(password, ARGON2_OPTIONS);

export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

/** A hash to verify against when the user does not exist, so that both paths take as long. */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(16).toString('hex'));
  return decoy;
}

/** Opaque bearer tokens: only their SHA-256 is stored. */
export const newToken = (): string => 'upc_' + randomBytes(32).toString('base64url');
export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');
export const generatePassword = (): string => randomBytes(18).toString('base64url');
