// Writes device-profiles/profile.schema.json from the zod schema, so editors can check and
// complete profiles as they are typed. `--check` exits 1 when the committed file is stale.
//   node --import tsx gateway/src/profiles/write-json-schema.ts [--check] [path]
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { z } from "zod";
import { writeOrCheckGenerated } from "../../../lib/config/generated-file.js";
import { profileSchema } from "./schema.js";
import { radarProfileSchema } from "./radar-schema.js";

export const SCHEMA_FILE_NAME = "profile.schema.json";

/** The JSON Schema text, byte for byte what is committed. */
export function renderProfileJsonSchema(): string {
  // "input": fields with defaults stay optional, as they are when a profile is written by hand.
  const { $schema, ...rest } = z.toJSONSchema(z.union([profileSchema, radarProfileSchema]), { io: "input" }) as Record<string, unknown>;
  const doc = {
    $schema,
    title: "Anxin device profile",
    description:
      "One device model: a Modbus RTU register map and how the hub reads and commands it (addresses are 0-based PDU addresses), " +
      "or a radar on a serial line (transport uart-frame): its frame protocol and the readings it gives. " +
      "Generated from gateway/src/profiles/schema.ts and radar-schema.ts; the hub's loader also checks what a schema cannot (see docs/device-profiles.md).",
    ...rest,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/** device-profiles/profile.schema.json in the project root, found from this file (src or dist). */
export function defaultSchemaPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, "package.json")) && existsSync(path.join(dir, "device-profiles"))) return path.join(dir, "device-profiles", SCHEMA_FILE_NAME);
    const up = path.dirname(dir);
    if (up === dir) throw new Error("cannot find the project's device-profiles folder");
    dir = up;
  }
}

function main(argv: string[]): Promise<number> {
  const file = argv.find((a) => !a.startsWith("--")) ?? defaultSchemaPath();
  return writeOrCheckGenerated(file, renderProfileJsonSchema(), { check: argv.includes("--check"), regenerate: "npm run profiles:schema" });
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: Error) => {
      console.error(e.message);
      process.exitCode = 2;
    },
  );
}
