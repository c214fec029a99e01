// Reads a configured secret from an owner-only file or an environment variable. A file other users can
// read (or write) is refused: the secret would no longer be one.
import { readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";

export class SecretSourceError extends Error {
  override readonly name = "SecretSourceError";
}

export interface SecretSource {
  /** Path to a file (relative paths resolve against `baseDir`). */
  file?: string | undefined;
  /** Name of an environment variable. */
  env?: string | undefined;
  /** Inline value (tests; discouraged in configuration files). */
  value?: string | undefined;
}

/**
 * Returns the secret (surrounding whitespace trimmed). `what` names the configuration key in errors, e.g.
 * "telephony.secretFile".
 */
export function readSecret(src: SecretSource, what: string, opts: { baseDir?: string; env?: NodeJS.ProcessEnv } = {}): string {
  let out: string | undefined;
  if (src.value !== undefined) out = src.value;
  else if (src.file !== undefined) {
    const file = isAbsolute(src.file) || !opts.baseDir ? src.file : resolve(opts.baseDir, src.file);
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch (err) {
      throw new SecretSourceError(`${what}: cannot read ${file}: ${(err as Error).message}`);
    }
    if (mode & 0o077) throw new SecretSourceError(`${what}: refusing ${file}: other users can access it (mode ${mode.toString(8)}); chmod 600 it`);
    out = readFileSync(file, "utf8");
  } else if (src.env !== undefined) {
    out = (opts.env ?? process.env)[src.env];
    if (out === undefined) throw new SecretSourceError(`${what}: environment variable ${src.env} is not set`);
  }
  out = out?.trim();
  if (!out) throw new SecretSourceError(`${what}: the secret is empty or not configured`);
  return out;
}
