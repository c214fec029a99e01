// Claim codes, MQTT passwords and their hashes.
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";

// Crockford's base32: no I, L, O or U, so a code read aloud or copied from a label survives; 32 symbols
// make a random byte map to one symbol without bias (byte & 31).
const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** 16 symbols in 4 groups, 80 random bits: `7KQ2-M9XD-4TRB-H3VN`. */
export function newClaimCode(): string {
  const bytes = randomBytes(16);
  let s = "";
  for (let i = 0; i < 16; i++) {
    if (i > 0 && i % 4 === 0) s += "-";
    s += CODE_ALPHABET[(bytes[i] as number) & 31];
  }
  return s;
}

/** What a person might type for a code: any case, spaces or dashes, O for 0, I or L for 1. */
export function normaliseClaimCode(code: string): string {
  return code
    .toUpperCase()
    .replace(/[\s-]/g, "")
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
}

/** Claim codes carry 80 random bits, so a salted SHA-256 is enough: no dictionary to run through. */
export function hashClaimCode(code: string, salt: Buffer): Buffer {
  return createHash("sha256").update(salt).update(normaliseClaimCode(code)).digest();
}

export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

// Legacy hashes (before 2026-11-29): scrypt N = 2^14, r = 8, still accepted at login. The cost travelled with
// the hash so it could change.
const KEYLEN = 32;

function scryptAsync(password: string, salt: Buffer, p: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem well above 128·N·r, so a stored hash with a larger N still verifies.
    scrypt(password, salt, KEYLEN, { ...p, maxmem: 256 * p.N * p.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * `sha256:<base64>` of the salt and the password. Hub passwords are 192 random bits made by the relay, so a
 * slow hash adds nothing if the table leaks (no dictionary reaches them), while it cost every cold login about
 * 45 ms of CPU: after a relay or broker restart with 10,000 hubs, minutes of hashing during which a hub's
 * alarm waited behind other hubs' logins.
 */
export function hashPassword(password: string, salt: Buffer): string {
  return `sha256:${createHash("sha256").update(salt).update(password).digest("base64")}`;
}

export async function checkPassword(password: string, salt: Buffer, stored: string): Promise<boolean> {
  const fast = /^sha256:([A-Za-z0-9+/=]+)$/.exec(stored);
  if (fast) return sameBytes(Buffer.from(hashPassword(password, salt).slice(7), "base64"), Buffer.from(fast[1] as string, "base64"));
  const m = /^scrypt:(\d+):(\d+):(\d+):([A-Za-z0-9+/=]+)$/.exec(stored);
  if (!m) return false;
  const want = Buffer.from(m[4] as string, "base64");
  const got = await scryptAsync(password, salt, { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) });
  return sameBytes(got, want);
}

/** ≥ 24 random bytes, base64url: safe in an MQTT password field and in YAML. */
export function newPassword(): string {
  return randomBytes(24).toString("base64url");
}

export function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
