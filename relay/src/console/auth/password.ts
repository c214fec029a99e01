// Console passwords: the policy a new one must meet, and argon2id hashing (@node-rs/argon2).
//
// Parameters: argon2id, 64 MiB of memory, 3 passes, 1 lane, 16-byte random salt, 32-byte output: RFC 9106's
// second recommended setting (its memory-constrained one) with a single lane, well above OWASP's minimum
// (19 MiB, 2 passes). A sign-in costs some tens of milliseconds and 64 MiB for that moment, affordable for a
// duty team's sign-ins and expensive for anyone guessing against a stolen copy of the table. The hash is
// stored as a PHC string carrying its parameters, so raising them later works: a hash made with other
// parameters is replaced at its owner's next successful sign-in (needsRehash).
import { randomBytes } from "node:crypto";
import { hash, parseOptions, verify, type Options } from "@node-rs/argon2";

/** @node-rs/argon2's Algorithm.Argon2id (a const enum, which isolated modules cannot import). */
const ARGON2ID = 2;

export const ARGON2_OPTIONS = { algorithm: ARGON2ID, memoryCost: 65536, timeCost: 3, parallelism: 1, outputLen: 32 } as const satisfies Options;

export const PASSWORD_MIN_LENGTH = 12;
/** Longer is not safer in any way that matters, and a bound keeps one request's hashing bounded. */
export const PASSWORD_MAX_LENGTH = 256;

/**
 * Passwords are compared as NFC: the same passphrase typed on two systems (an input method composing é one
 * way, another the other way) must match.
 */
const normal = (password: string) => password.normalize("NFC");

/** Why `password` may not be used by `username`, or null when it may. */
export function passwordProblem(password: string, username: string): string | null {
  const p = normal(password);
  const length = [...p].length;
  if (length < PASSWORD_MIN_LENGTH) return `the password must be at least ${PASSWORD_MIN_LENGTH} characters long (this one has ${length})`;
  if (length > PASSWORD_MAX_LENGTH) return `the password must be at most ${PASSWORD_MAX_LENGTH} characters long`;
  if (p.trim().toLowerCase() === username.trim().toLowerCase()) return "the password must not be the username";
  return null;
}

export function hashPassword(password: string): Promise<string> {
  return hash(normal(password), ARGON2_OPTIONS);
}

/** False for a wrong password and for a hash that cannot be read (never an exception to the caller). */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  if ([...password].length > PASSWORD_MAX_LENGTH) return false;
  try {
    return await verify(stored, normal(password));
  } catch {
    return false;
  }
}

/** Whether `stored` was made with parameters other than today's (then it is replaced after a sign-in). */
export function needsRehash(stored: string): boolean {
  try {
    const o = parseOptions(stored);
    return Number(o.algorithm) !== ARGON2ID || o.memoryCost !== ARGON2_OPTIONS.memoryCost || o.timeCost !== ARGON2_OPTIONS.timeCost || o.parallelism !== ARGON2_OPTIONS.parallelism || o.outputLen !== ARGON2_OPTIONS.outputLen;
  } catch {
    return false;
  }
}

let dummy: Promise<string> | undefined;

/**
 * A hash of nothing anyone knows, verified against when the username is unknown, so that answer takes as
 * long as a wrong password for a real account (the two must not be told apart by timing).
 */
export function dummyHash(): Promise<string> {
  dummy ??= hash(randomBytes(32).toString("base64"), ARGON2_OPTIONS);
  return dummy;
}
