// Devices retired by the relay because the elder withdrew consent (a vital-sign radar): kept in the hub's
// data folder, owner-only, so a retired device stays off across restarts and reloads even while hub.yaml
// still names it. The daemon does not rewrite the installer's file; the next visit removes the line.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

const entrySchema = z
  .object({
    id: z.string().min(1).max(64),
    reason: z.string().min(1).max(64),
    at: z.number().int(),
    command: z.string().min(1).max(128),
    /** Where the device was (a Zigbee device's IEEE address keeps it from rejoining under another id). */
    address: z.string().max(256).optional(),
  })
  .strict();
const fileSchema = z.object({ v: z.literal(1), devices: z.array(entrySchema).max(500) }).strict();
export type RetiredDevice = z.infer<typeof entrySchema>;

export const RETIRED_FILE = "retired-devices.json";

export class RetiredDevices {
  private constructor(
    private readonly file: string,
    private list: RetiredDevice[],
  ) {}

  /** Reads the list; a missing file is an empty list, a damaged one an error (a retired radar must not come back). */
  static async open(dataDir: string): Promise<RetiredDevices> {
    const file = path.join(dataDir, RETIRED_FILE);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return new RetiredDevices(file, []);
      throw new Error(`${file}: cannot read the retired devices: ${(e as Error).message}`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new Error(`${file}: not JSON (${(e as Error).message}); restore it from a backup, or remove it only if no device was retired`);
    }
    const parsed = fileSchema.safeParse(raw);
    if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues[0]!.path.join(".") || "(top)"}: ${parsed.error.issues[0]!.message}`);
    return new RetiredDevices(file, parsed.data.devices);
  }

  all(): readonly RetiredDevice[] {
    return this.list;
  }

  has(id: string): boolean {
    return this.list.some((d) => d.id === id);
  }

  addresses(): Set<string> {
    return new Set(this.list.map((d) => d.address?.toLowerCase()).filter((a): a is string => !!a));
  }

  /** Adds a device and writes the file (atomically, owner-only) before returning. */
  async add(d: RetiredDevice): Promise<void> {
    const next = [...this.list.filter((x) => x.id !== d.id), d];
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ v: 1, devices: next }, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, this.file);
    this.list = next;
  }
}
