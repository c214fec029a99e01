// The relay's master key: 32 random bytes from which the key sealing hub signing keys is derived
// (key-vault.ts). It must never sit beside the store: in production it comes from systemd credentials
// (LoadCredentialEncrypted= in the unit), or from a configured owner-only file. Nothing here logs or
// prints a key's bytes.
import { randomBytes } from "node:crypto";
import { mkdir, open } from "node:fs/promises";
import path from "node:path";
import type { RelayConfig } from "../config/schema.js";

export class MasterKeyError extends Error {
  override readonly name = "MasterKeyError";
  /** True when the file is simply not there (the search goes on); false for a file that is there but unusable. */
  constructor(
    message: string,
    readonly missing = false,
  ) {
    super(message);
  }
}

const isMissing = (e: unknown): boolean => e instanceof MasterKeyError && e.missing;

export const MASTER_KEY_BYTES = 32;

export interface MasterKey {
  key: Buffer;
  /** Where it came from, for logs and errors: the file's path. */
  file: string;
  /** `file`: secrets.masterKeyFile; `credential`: $CREDENTIALS_DIRECTORY; `local`: secrets.localMasterKeyFile (generated if new). */
  origin: "file" | "credential" | "local";
  /** True when this start created the local file. */
  generated: boolean;
}

const HOWTO = "32 random bytes as base64 or hex, e.g. made with: openssl rand -base64 32";

/**
 * The key in a file's bytes: base64 (standard or url-safe) or hex text of 32 bytes, surrounding whitespace
 * ignored, or the 32 raw bytes themselves (`head -c 32 /dev/urandom`).
 */
export function parseMasterKey(bytes: Buffer, where: string): Buffer {
  const text = bytes.toString("latin1").trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, "hex");
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) key = Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64");
  else if (bytes.length === MASTER_KEY_BYTES) key = Buffer.from(bytes);
  if (!key || key.length !== MASTER_KEY_BYTES) throw new MasterKeyError(`${where}: not a master key: expected ${HOWTO}`);
  // A placeholder (all zeros, one byte repeated) is not a secret.
  if (key.every((b) => b === key[0])) throw new MasterKeyError(`${where}: the master key is one byte repeated, not a random key; make one with: openssl rand -base64 32`);
  return key;
}

/**
 * Reads and checks a master key file: a regular file that neither group nor others can read or change (the
 * mode is checked on the open file itself, so what is checked is what is read).
 */
export async function readMasterKeyFile(file: string, what: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new MasterKeyError(`${what}: no master key file at ${file}`, true);
    throw new MasterKeyError(`${what}: cannot open the master key file ${file}: ${code ?? (e as Error).message}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new MasterKeyError(`${what}: the master key file ${file} is not a regular file`);
    const mode = st.mode & 0o777;
    if (mode & 0o077)
      throw new MasterKeyError(
        `${what}: refusing the master key file ${file}: its mode is ${mode.toString(8).padStart(4, "0")}, so other users can read or change it ` +
          `(anyone holding it and a copy of the store can sign events as any hub). Fix with: chmod 600 ${file}`,
      );
    return parseMasterKey(await fh.readFile(), `${what} (${file})`);
  } finally {
    await fh.close();
  }
}

/** Creates `file` (0600, never over an existing one) with a fresh key; the folder is created 0700 if missing. */
async function generateMasterKeyFile(file: string): Promise<Buffer> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(MASTER_KEY_BYTES);
  const fh = await open(file, "wx", 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(`${key.toString("base64")}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return key;
}

export interface FindMasterKeyOptions {
  /** Where $CREDENTIALS_DIRECTORY is read from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The store is SQLite: the local file may be used (a PostgreSQL store is shared by instances that must share one key). */
  sqlite: boolean;
  /** Create the local file when it is missing (only for a store with no sealed key yet: a new key could only be the wrong one). */
  generate: boolean;
}

/**
 * The master key, looked for in order: `secrets.masterKeyFile` (if set, it must be there), the systemd
 * credential `secrets.masterKeyCredential`, then (SQLite only) `secrets.localMasterKeyFile`, created when
 * missing and `generate` says so. Null when none applies; what was looked at is in `describeSearch`.
 */
export async function findMasterKey(cfg: RelayConfig["secrets"], o: FindMasterKeyOptions): Promise<MasterKey | null> {
  if (cfg.masterKeyFile) return { key: await readMasterKeyFile(cfg.masterKeyFile, "secrets.masterKeyFile"), file: cfg.masterKeyFile, origin: "file", generated: false };
  const creds = (o.env ?? process.env).CREDENTIALS_DIRECTORY;
  if (creds) {
    const file = path.join(creds, cfg.masterKeyCredential);
    try {
      return { key: await readMasterKeyFile(file, `systemd credential ${cfg.masterKeyCredential}`), file, origin: "credential", generated: false };
    } catch (e) {
      // Another unit's credentials (or none of ours): carry on; anything else about ours is an error.
      if (!isMissing(e)) throw e;
    }
  }
  const local = cfg.localMasterKeyFile;
  if (!o.sqlite || !local) return null;
  try {
    return { key: await readMasterKeyFile(local, "secrets.localMasterKeyFile"), file: local, origin: "local", generated: false };
  } catch (e) {
    if (!isMissing(e)) throw e;
  }
  if (!o.generate) return null;
  try {
    return { key: await generateMasterKeyFile(local), file: local, origin: "local", generated: true };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Another process created it meanwhile: use theirs.
    if (code === "EEXIST") return { key: await readMasterKeyFile(local, "secrets.localMasterKeyFile"), file: local, origin: "local", generated: false };
    throw new MasterKeyError(`secrets.localMasterKeyFile: cannot create a master key at ${local}: ${code ?? (e as Error).message}; ${describeSearch(cfg, o)}`);
  }
}

/** What an operator should do when no master key was found: where the relay looked, and how to give one. */
export function describeSearch(cfg: RelayConfig["secrets"], o: Pick<FindMasterKeyOptions, "env" | "sqlite">): string {
  const creds = (o.env ?? process.env).CREDENTIALS_DIRECTORY;
  const looked = [
    creds ? `the systemd credential ${path.join(creds, cfg.masterKeyCredential)}` : `a systemd credential ${cfg.masterKeyCredential} ($CREDENTIALS_DIRECTORY is not set)`,
    ...(o.sqlite && cfg.localMasterKeyFile ? [`the local file ${cfg.localMasterKeyFile}`] : []),
  ];
  const why = o.sqlite ? "" : " (with a PostgreSQL store every instance must use the same master key, so none is made up locally)";
  return (
    `looked for ${looked.join(", then ")}${why}. Give the relay its master key with LoadCredentialEncrypted=${cfg.masterKeyCredential}:<file> ` +
    `in its systemd unit, or set secrets.masterKeyFile (docs/operations.md, "Master key")`
  );
}
