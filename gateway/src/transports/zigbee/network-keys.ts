// The Zigbee network's secrets: a random network key, PAN id and extended PAN id, made on first start
// and kept (mode 0600) for every later start. herdsman's built-in key is public, so it is never used.
import { randomBytes, randomInt } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

const byteArray = (n: number) => z.array(z.number().int().min(0).max(255)).length(n);

export const networkFileSchema = z
  .object({
    networkKey: byteArray(16),
    panID: z.number().int().min(1).max(0xfffe),
    extendedPanID: byteArray(8),
    createdAt: z.string(),
  })
  .strict();
export type NetworkSecrets = z.infer<typeof networkFileSchema>;

export function generateNetworkSecrets(now = new Date()): NetworkSecrets {
  let ext = [...randomBytes(8)];
  // All-zero and all-0xFF extended PAN ids have special meanings in Zigbee.
  while (ext.every((b) => b === 0) || ext.every((b) => b === 0xff)) ext = [...randomBytes(8)];
  return { networkKey: [...randomBytes(16)], panID: randomInt(1, 0xfffe + 1), extendedPanID: ext, createdAt: now.toISOString() };
}

/** Reads <dir>/network.json, or creates it (0600) when missing. A corrupt file is an error, never replaced. */
export async function loadOrCreateNetworkSecrets(dir: string): Promise<{ secrets: NetworkSecrets; file: string; created: boolean }> {
  const file = path.join(dir, "network.json");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let text: string | undefined;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (text !== undefined) {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new Error(`${file} is not JSON: restore it from backup (a new key would orphan every paired device)`);
    }
    const parsed = networkFileSchema.safeParse(raw);
    if (!parsed.success)
      throw new Error(`${file} is not a valid Zigbee network file (${parsed.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`).join("; ")}): restore it from backup`);
    await chmod(file, 0o600).catch(() => {});
    return { secrets: parsed.data, file, created: false };
  }
  const secrets = generateNetworkSecrets();
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
  return { secrets, file, created: true };
}
