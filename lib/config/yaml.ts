// Reading a YAML file against a zod schema, reporting every problem with its file, line and key path
// at once, so whoever edits it (installer or operator) fixes them in one pass. Both daemons use it.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";

export interface ConfigProblem {
  file: string;
  line?: number;
  field: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: ConfigProblem[]) {
    super(`invalid configuration:\n${formatConfigProblems(problems)}`);
    this.name = "ConfigError";
  }
}

export function formatConfigProblems(problems: ConfigProblem[]): string {
  return problems.map((p) => `  ${p.file}${p.line ? `:${p.line}` : ""}: ${p.field || "(top)"}: ${p.message}`).join("\n");
}

export function joinPath(p: ReadonlyArray<PropertyKey>): string {
  return p.map((k, i) => (typeof k === "number" ? `[${k}]` : `${i ? "." : ""}${String(k)}`)).join("");
}

export interface LoadedYaml<T> {
  value: T;
  /** Absolute path of the file read. */
  file: string;
  /** Where a key path sits in the file (the nearest existing parent when the key itself is absent). */
  lineOf: (parts: Array<string | number>) => number | undefined;
  /** A problem at a key path, with its line. */
  problem: (parts: Array<string | number>, message: string) => ConfigProblem;
}

/** Reads one YAML file and checks it against `schema`. Throws ConfigError with every problem found. */
export async function readYamlFile<S extends z.ZodType>(file: string, schema: S): Promise<LoadedYaml<z.output<S>>> {
  const abs = path.resolve(file);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (e) {
    throw new ConfigError([{ file: abs, field: "", message: `cannot read: ${(e as Error).message}` }]);
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    throw new ConfigError(doc.errors.map((e) => ({ file: abs, line: lc.linePos(e.pos[0]).line, field: "", message: `YAML: ${e.message.split("\n")[0]}` })));
  }
  const lineOf = (parts: Array<string | number>): number | undefined => {
    for (let n = parts.length; n > 0; n--) {
      const node = doc.getIn(parts.slice(0, n), true) as { range?: [number, number, number] } | undefined;
      if (node && typeof node === "object" && node.range) return lc.linePos(node.range[0]).line;
    }
    return undefined;
  };
  const parsed = schema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) throw new ConfigError(zodProblems(parsed.error, abs, lineOf));
  return {
    value: parsed.data,
    file: abs,
    lineOf,
    problem: (parts, message) => ({ file: abs, line: lineOf(parts), field: joinPath(parts), message }),
  };
}

function zodProblems(err: z.ZodError, file: string, lineOf: (parts: Array<string | number>) => number | undefined): ConfigProblem[] {
  return err.issues.map((i) => {
    const parts = i.path.filter((k): k is string | number => typeof k !== "symbol");
    let message = i.message;
    const single = i.code === "unrecognized_keys" && i.keys.length === 1;
    if (i.code === "unrecognized_keys") message = `unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => `'${k}'`).join(", ")}`;
    const at = single ? [...parts, i.keys[0]!] : parts;
    return { file, line: lineOf(at), field: joinPath(at), message };
  });
}
