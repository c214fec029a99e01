// The hub's uplink secrets: the relay's enrolment answer (MQTT credentials and the event signing key),
// kept in one file readable by the daemon's user only. Nothing here ever logs or prints a secret value.
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { enrolResponseSchema, type EnrolResponse } from "../../../protocol/messages.js";

export class SecretsError extends Error {
  override name = "SecretsError";
}

export interface HubSecrets {
  hub: string;
  url: string;
  username: string;
  password: string;
  key: Buffer;
  heartbeatS: number;
}

const MIN_KEY_BYTES = 16;

export function provisionHint(hub: string): string {
  return `enrol this hub with: anxin-hub provision --relay <https://relay> --hub ${hub} --code <claim code> --config <hub.yaml>`;
}

/** Reads and checks the secrets file; refuses one that group or others could read or change. */
export async function readSecrets(file: string, hub: string): Promise<HubSecrets> {
  let fh;
  try {
    fh = await open(file, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new SecretsError(`uplink: no secrets file at ${file}; ${provisionHint(hub)}`);
    throw new SecretsError(`uplink: cannot open the secrets file ${file}: ${code ?? (e as Error).message}`);
  }
  let text: string;
  try {
    // Checked on the open file itself, so what is checked is what is read.
    const st = await fh.stat();
    if (!st.isFile()) throw new SecretsError(`uplink: the secrets file ${file} is not a regular file`);
    const mode = st.mode & 0o777;
    if (mode & 0o077) {
      throw new SecretsError(
        `uplink: refusing to use ${file}: its mode is ${mode.toString(8).padStart(4, "0")}, so other users can read or change the hub's ` +
          `MQTT password and signing key (anyone holding them can send events as this hub). Fix with: chmod 600 ${file}`,
      );
    }
    text = await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
  return parseSecrets(text, file, hub);
}

export function parseSecrets(text: string, file: string, hub: string): HubSecrets {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new SecretsError(`uplink: the secrets file ${file} is not valid JSON; ${provisionHint(hub)}`);
  }
  const parsed = enrolResponseSchema.safeParse(raw);
  if (!parsed.success) {
    // Field names and rule only: a message must never echo a secret value.
    const what = parsed.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`).join("; ");
    throw new SecretsError(`uplink: the secrets file ${file} is not an enrolment record (${what}); ${provisionHint(hub)}`);
  }
  const s = parsed.data;
  if (s.hub !== hub) {
    throw new SecretsError(
      `uplink: the secrets file ${file} belongs to hub '${s.hub}', but this configuration is hub '${hub}'; ` +
        `point uplink.secretsFile at this hub's file, or ${provisionHint(hub)}`,
    );
  }
  const key = Buffer.from(s.key, "base64");
  if (key.length < MIN_KEY_BYTES || key.toString("base64").replace(/=+$/, "") !== s.key.replace(/=+$/, "")) {
    throw new SecretsError(`uplink: the signing key in ${file} is not a base64 key of at least ${MIN_KEY_BYTES} bytes; ${provisionHint(hub)}`);
  }
  return { hub: s.hub, url: s.mqtt.url, username: s.mqtt.username, password: s.mqtt.password, key, heartbeatS: s.heartbeatS };
}

/**
 * Writes the enrolment record atomically: a fresh 0600 temporary file in the same folder, flushed, then
 * renamed over the old one, so a crash leaves either the old file or the new one, never half of one.
 * The folder is created 0700 if missing.
 */
export async function writeSecrets(file: string, record: EnrolResponse): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  const fh = await open(tmp, "wx", 0o600);
  try {
    await fh.chmod(0o600); // the umask cannot widen it, but make the intent explicit
    await fh.writeFile(`${JSON.stringify(record, null, 2)}\n`);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  // The rename itself is durable only once the folder is flushed.
  const d = await open(dir, "r").catch(() => null);
  if (d) {
    await d.sync().catch(() => {});
    await d.close();
  }
  await chmod(file, 0o600);
}
