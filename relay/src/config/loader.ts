// Loads and checks the relay configuration. Like the hub's loader, every problem is reported with its
// file, line and key path, all at once, so an operator fixes them in one pass. The YAML + zod part is
// generic (readYamlFile) so other relay files (care plans later) can report errors the same way.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { relayConfigSchema, type RelayConfig } from "./schema.js";

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
  lineOf(parts: Array<string | number>): number | undefined;
  /** A problem at a key path, with its line. */
  problem(parts: Array<string | number>, message: string): ConfigProblem;
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

export interface LoadedRelayConfig {
  config: RelayConfig;
  file: string;
  lineOf(parts: Array<string | number>): number | undefined;
}

/**
 * Reads the relay configuration. Relative paths (dataDir, TLS and CA files) resolve against the file's
 * folder; a relative SQLite path resolves against dataDir.
 */
export async function readRelayConfig(file: string): Promise<LoadedRelayConfig> {
  const loaded = await readYamlFile(file, relayConfigSchema);
  const config = loaded.value;
  const problems = crossCheck(config, loaded.problem);
  if (problems.length) throw new ConfigError(problems);

  const base = path.dirname(loaded.file);
  config.relay.dataDir = path.resolve(base, config.relay.dataDir);
  if (config.store.kind === "sqlite") config.store.path = path.resolve(config.relay.dataDir, config.store.path);
  const b = config.broker;
  if (b.kind === "embedded" && b.tls) b.tls = { certFile: path.resolve(base, b.tls.certFile), keyFile: path.resolve(base, b.tls.keyFile) };
  if (b.kind === "external" && b.caFile) b.caFile = path.resolve(base, b.caFile);
  return { config, file: loaded.file, lineOf: loaded.lineOf };
}

function crossCheck(c: RelayConfig, problem: LoadedYaml<unknown>["problem"]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const url = (parts: Array<string | number>, value: string | undefined, protocols: string[]) => {
    if (value === undefined) return;
    let u: URL;
    try {
      u = new URL(value);
    } catch {
      out.push(problem(parts, `not a URL: '${value}'`));
      return;
    }
    if (!protocols.includes(u.protocol)) out.push(problem(parts, `must start with ${protocols.map((p) => `${p}//`).join(" or ")}`));
  };
  url(["http", "publicUrl"], c.http.publicUrl, ["http:", "https:"]);
  const b = c.broker;
  url(["broker", "publicUrl"], b.publicUrl, ["mqtt:", "mqtts:"]);
  if (b.kind === "embedded" && b.port === 0)
    out.push(problem(["broker", "port"], "0 would pick a random port that hubs cannot be told about; choose a port (1883, or 8883 with TLS)"));
  if (b.kind === "external") {
    url(["broker", "url"], b.url, ["mqtt:", "mqtts:"]);
    if (b.password !== undefined && b.username === undefined) out.push(problem(["broker", "password"], "a password needs a username"));
  }
  return out;
}

/** The broker URL hubs are given at enrolment. */
export function hubMqttUrl(c: RelayConfig): string {
  const b = c.broker;
  if (b.publicUrl) return b.publicUrl;
  if (b.kind === "external") return b.url;
  const scheme = b.tls ? "mqtts" : "mqtt";
  const host = c.http.publicUrl ? new URL(c.http.publicUrl).hostname : wildcard(b.host) ? "localhost" : b.host;
  return `${scheme}://${bracket(host)}:${b.port}`;
}

/** The enrolment URL an installer passes to `anxin-hub provision --relay`. */
export function relayPublicUrl(c: RelayConfig): string {
  if (c.http.publicUrl) return c.http.publicUrl.replace(/\/+$/, "");
  return `http://${bracket(wildcard(c.http.host) ? "localhost" : c.http.host)}:${c.http.port}`;
}

const wildcard = (host: string) => host === "0.0.0.0" || host === "::" || host === "";
const bracket = (host: string) => (host.includes(":") && !host.startsWith("[") ? `[${host}]` : host);
