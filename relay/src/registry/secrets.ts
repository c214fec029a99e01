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

// N = 2^14, r = 8 (16 MiB, about 45 ms on the 2-core Xeon the benchmarks ran on): the interactive-login
// setting of RFC 7914 and node's own default. The passwords are 192 random bits, so the work factor is not
// what keeps them safe if the table leaks; it is the cost of a cold login, which the relay pays once per
// hub and process (verifications are cached), e.g. for every hub after a broker restart.
export const SCRYPT_PARAMS = { N: 16384, r: 8, p: 1 } as const;
const KEYLEN = 32;

function scryptAsync(password: string, salt: Buffer, p: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // maxmem well above 128·N·r, so raising N later does not trip node's 32 MiB default.
    scrypt(password, salt, KEYLEN, { ...p, maxmem: 256 * p.N * p.r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** `scrypt:N:r:p:<base64>`: the parameters travel with the hash so they can change for new passwords. */
export async function hashPassword(password: string, salt: Buffer): Promise<string> {
  const key = await scryptAsync(password, salt, SCRYPT_PARAMS);
  return `scrypt:${SCRYPT_PARAMS.N}:${SCRYPT_PARAMS.r}:${SCRYPT_PARAMS.p}:${key.toString("base64")}`;
}

export async function checkPassword(password: string, salt: Buffer, stored: string): Promise<boolean> {
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
