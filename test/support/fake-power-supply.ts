// A folder laid out like /sys/class/power_supply for the power watch's tests: one sub-folder per supply, one
// small file per attribute, each holding the value and a newline as the kernel writes it.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

export type SupplyAttrs = Record<string, string | number>;

export class FakePowerSupplies {
  private constructor(readonly dir: string) {}

  static async create(): Promise<FakePowerSupplies> {
    return new FakePowerSupplies(await mkdtemp(path.join(tmpdir(), "anxin-power-")));
  }

  /** Adds (or rewrites) a supply with these attributes. */
  async add(name: string, attrs: SupplyAttrs): Promise<void> {
    await mkdir(path.join(this.dir, name), { recursive: true });
    await this.set(name, attrs);
  }

  /** Writes attributes as the kernel shows them ("value\n"). */
  async set(name: string, attrs: SupplyAttrs): Promise<void> {
    for (const [k, v] of Object.entries(attrs)) await writeFile(path.join(this.dir, name, k), `${v}\n`);
  }

  /** Writes an attribute's bytes exactly as given (garbage, no newline, oversized). */
  async raw(name: string, attr: string, bytes: string | Buffer): Promise<void> {
    await writeFile(path.join(this.dir, name, attr), bytes);
  }

  /** The supply is gone, as when a HAT's driver is unloaded. */
  async remove(name: string): Promise<void> {
    await rm(path.join(this.dir, name), { recursive: true, force: true });
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A mains adapter as a Pi UPS HAT's driver shows it. */
export const mainsSupply = (online: 0 | 1): SupplyAttrs => ({ type: "Mains", online });

/** A battery with a fuel gauge (MAX17048 class): capacity in %, voltage_now in µV. */
export const batterySupply = (capacity: number, status: string, over: SupplyAttrs = {}): SupplyAttrs => ({
  type: "Battery", present: 1, status, capacity, voltage_now: 3_700_000 + capacity * 5000, scope: "System", ...over,
});
