// Generated files kept in the repository (a JSON schema, the converters' model index): their scripts
// write them, or with --check say whether the committed copy is current.
import { readFile, writeFile } from "node:fs/promises";

/** Writes `want` to `file`, or (check) compares: 0 written or current, 1 stale or missing, with `regenerate` in the message. */
export async function writeOrCheckGenerated(file: string, want: string, o: { check: boolean; regenerate: string }): Promise<number> {
  if (o.check) {
    const have = await readFile(file, "utf8").catch(() => null);
    if (have === want) {
      console.log(`${file} is up to date`);
      return 0;
    }
    console.error(`${file} is ${have === null ? "missing" : "out of date"}: run ${o.regenerate}`);
    return 1;
  }
  await writeFile(file, want);
  console.log(`wrote ${file}`);
  return 0;
}
