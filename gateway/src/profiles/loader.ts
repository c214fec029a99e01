// Loads device profiles and checks them beyond the schema. Every problem is reported with its
// file, key path and line, so an installer fixes a profile in one pass; bad input never throws.
// Severity: an error keeps the profile out of the set, a warning does not.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import {
  commandSchema,
  pointSchema,
  pollSchema,
  profileSchema,
  serialSchema,
  signalConditionSchema,
  signalSourceSchema,
  SIGNALS,
  writeSchema,
  type Point,
  type Profile,
  type SignalCondition,
  type SignalName,
  type SignalSource,
} from "./schema.js";
import { radarProfileSchema, type RadarProfile } from "./radar-schema.js";

export type ProblemSeverity = "error" | "warning";

export interface ProfileProblem {
  file: string;
  /** Key path such as `points[2].address` or `signals.co_ppm.point`; "" for the file as a whole. */
  field: string;
  message: string;
  severity: ProblemSeverity;
  line?: number;
  col?: number;
}

export interface ProfileSet {
  /** Only profiles without errors, by id (RS-485 Modbus devices). */
  profiles: Map<string, Profile>;
  /** Radars on a serial line (`transport: uart-frame`), by id; ids are unique across both maps. */
  radars: Map<string, RadarProfile>;
  problems: ProfileProblem[];
}

export interface ProfileFileResult {
  /** Absent when the file has any error, or when it is a radar profile. */
  profile?: Profile;
  /** A `uart-frame` radar profile without errors. */
  radar?: RadarProfile;
  problems: ProfileProblem[];
}

export type ProfilePath = ReadonlyArray<string | number>;
type Path = ProfilePath;

/** A problem found in a parsed profile, before it is tied to a file. */
export interface ProfileFinding {
  path: Path;
  message: string;
  severity: ProblemSeverity;
}

export function formatPath(parts: Path): string {
  let out = "";
  for (const k of parts) {
    if (typeof k === "number") out += `[${k}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(k)) out += (out ? "." : "") + k;
    else out += `[${JSON.stringify(k)}]`;
  }
  return out;
}

/** One line per problem: `file:line:col: field: message`. */
export function formatProblems(problems: readonly ProfileProblem[]): string {
  return problems
    .map((p) => {
      const where = p.line ? `:${p.line}${p.col ? `:${p.col}` : ""}` : "";
      return `${p.file}${where}: ${p.field || "(top)"}: ${p.severity === "warning" ? "warning: " : ""}${p.message}`;
    })
    .join("\n");
}

export function hasErrors(problems: readonly ProfileProblem[]): boolean {
  return problems.some((p) => p.severity === "error");
}

// ---------------------------------------------------------------------------------------------
// Loading

/** Loads every *.yaml / *.yml directly in `dir` (sorted by name, so results are repeatable). */
export async function loadProfiles(dir: string): Promise<ProfileSet> {
  const profiles = new Map<string, Profile>();
  const radars = new Map<string, RadarProfile>();
  const problems: ProfileProblem[] = [];
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && /\.ya?ml$/i.test(e.name))
      .map((e) => e.name)
      .sort();
  } catch (e) {
    problems.push({ file: dir, field: "", message: `cannot read the profile folder: ${(e as Error).message}`, severity: "error" });
    return { profiles, radars, problems };
  }
  if (names.length === 0) problems.push({ file: dir, field: "", message: "no *.yaml profiles in this folder", severity: "warning" });

  const owner = new Map<string, string>();
  for (const n of names) {
    const file = path.join(dir, n);
    const r = await analyseFile(file);
    problems.push(...r.problems);
    const loaded = r.profile ?? r.radar;
    if (!loaded) continue;
    const first = owner.get(loaded.id);
    if (first !== undefined) {
      problems.push({ file, field: "id", message: `id "${loaded.id}" is already used by ${first}; this file is ignored`, severity: "error", ...r.where(["id"]) });
      continue;
    }
    owner.set(loaded.id, file);
    if (r.profile) profiles.set(r.profile.id, r.profile);
    else if (r.radar) radars.set(r.radar.id, r.radar);
  }
  return { profiles, radars, problems };
}

export async function loadProfileFile(file: string): Promise<ProfileFileResult> {
  const { profile, radar, problems } = await analyseFile(file);
  return profile ? { profile, problems } : radar ? { radar, problems } : { problems };
}

/** Checks profile text as if read from `file` (the name is used for messages and the <id>.yaml check). */
export function parseProfileText(text: string, file: string): ProfileFileResult {
  const { profile, radar, problems } = analyse(text, file);
  return profile ? { profile, problems } : radar ? { radar, problems } : { problems };
}

interface Analysis extends ProfileFileResult {
  where(parts: Path): { line?: number; col?: number };
}

async function analyseFile(file: string): Promise<Analysis> {
  try {
    return analyse(await readFile(file, "utf8"), file);
  } catch (e) {
    return { problems: [{ file, field: "", message: `cannot read: ${(e as Error).message}`, severity: "error" }], where: () => ({}) };
  }
}

function analyse(text: string, file: string): Analysis {
  const problems: ProfileProblem[] = [];
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const where = (parts: Path) => locate(doc, lc, parts);
  const add = (parts: Path, message: string, severity: ProblemSeverity = "error") =>
    problems.push({ file, field: formatPath(parts), message, severity, ...where(parts) });

  for (const [list, severity] of [[doc.errors, "error"], [doc.warnings, "warning"]] as const) {
    for (const e of list) {
      const { line, col } = lc.linePos(e.pos[0]);
      problems.push({ file, field: "", message: `YAML: ${e.message.split("\n")[0]}`, severity, line, col });
    }
  }
  if (doc.errors.length) return { problems, where };

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    add([], `YAML: ${(e as Error).message}`);
    return { problems, where };
  }
  if (data === null || data === undefined) {
    add([], "the file is empty");
    return { problems, where };
  }

  const stem = path.basename(file).replace(/\.ya?ml$/i, "");
  if (typeof data === "object" && (data as { transport?: unknown }).transport === "uart-frame") {
    const radar = radarProfileSchema.safeParse(data, { reportInput: true });
    if (!radar.success) {
      for (const f of zodFindings(radar.error)) add(f.path, f.message, f.severity);
      return { problems, where };
    }
    if (stem !== radar.data.id) add(["id"], `the file should be named ${radar.data.id}.yaml (is ${path.basename(file)})`, "warning");
    return { radar: radar.data, problems, where };
  }

  const parsed = profileSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    for (const f of zodFindings(parsed.error)) add(f.path, f.message, f.severity);
    return { problems, where };
  }
  const profile = parsed.data;
  for (const f of checkProfile(profile)) add(f.path, f.message, f.severity);

  if (stem !== profile.id) add(["id"], `the file should be named ${profile.id}.yaml (is ${path.basename(file)})`, "warning");

  return hasErrors(problems) ? { problems, where } : { profile, problems, where };
}

/** Line and column of the deepest node on `parts` that exists (a map entry points at its key). */
function locate(doc: Document, lc: LineCounter, parts: Path): { line?: number; col?: number } {
  let node: unknown = doc.contents;
  let start = rangeStart(node);
  for (const k of parts) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(k));
      if (!pair) break;
      start = rangeStart(pair.key) ?? start;
      node = pair.value;
    } else if (isSeq(node) && typeof k === "number" && k < node.items.length) {
      node = node.items[k];
      start = rangeStart(node) ?? start;
    } else break;
  }
  return start === undefined ? {} : lc.linePos(start);
}

function rangeStart(n: unknown): number | undefined {
  const r = n && typeof n === "object" && "range" in n ? (n as { range?: unknown }).range : undefined;
  return Array.isArray(r) && typeof r[0] === "number" ? r[0] : undefined;
}

// ---------------------------------------------------------------------------------------------
// Schema issues → findings

const COMMAND_NAMES = Object.keys(profileSchema.shape.commands.unwrap().keyType.enum);

/** Known keys at a path, for "did you mean" hints on unknown keys. */
function keysAt(parts: Path): readonly string[] {
  const shape = (s: { shape: object }) => Object.keys(s.shape);
  const [a, , c] = parts;
  const n = parts.length;
  if (n === 0) return shape(profileSchema);
  if (a === "serial" && n === 1) return shape(serialSchema);
  if (a === "points" && n === 2) return shape(pointSchema);
  if (a === "poll" && n === 2) return shape(pollSchema);
  if (a === "signals") {
    if (n === 1) return SIGNALS;
    if (n === 2) return shape(signalSourceSchema);
    if (n === 4 && c === "any") return shape(signalConditionSchema);
  }
  if (a === "commands") {
    if (n === 1) return COMMAND_NAMES;
    if (n === 2) return shape(commandSchema);
    if (n === 3 && c === "verify") return shape(commandSchema.shape.verify.unwrap());
    if (n === 4 && c === "write") return shape(writeSchema);
  }
  return [];
}

function zodFindings(err: z.ZodError): ProfileFinding[] {
  const out: ProfileFinding[] = [];
  for (const issue of err.issues) {
    const parts = issue.path.filter((k): k is string | number => typeof k !== "symbol");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: [...parts, key], message: `unknown key "${key}"${hint(key, keysAt(parts))}`, severity: "error" });
      continue;
    }
    out.push({ path: parts, message: issueMessage(issue), severity: "error" });
  }
  return out;
}

function describeInput(v: unknown): string {
  if (v === null) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `"${v}"`;
  return typeof v === "number" || typeof v === "boolean" || typeof v === "bigint" ? String(v) : typeof v;
}

function issueMessage(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case "invalid_type":
      if (input === undefined) return `required ${issue.expected} is missing`;
      return `expected ${issue.expected}, got ${describeInput(input)}`;
    case "invalid_value": {
      const vals = issue.values.map((v) => (typeof v === "string" ? v : String(v)));
      return `${describeInput(input)} is not allowed: use one of ${vals.join(", ")}${typeof input === "string" ? hint(input, vals) : ""}`;
    }
    case "invalid_union": {
      // Report the branch that came closest; "expected a or b" when every branch failed on type.
      const firsts = issue.errors.map((b) => b[0]).filter((i): i is z.core.$ZodIssue => i !== undefined);
      const typeOnly = firsts.filter((i) => i.code === "invalid_type");
      if (typeOnly.length === firsts.length && firsts.length > 0)
        return `expected ${[...new Set(typeOnly.map((i) => i.expected))].join(" or ")}, got ${describeInput(input)}`;
      const closer = firsts.filter((i) => i.code !== "invalid_type");
      if (closer.length === 1) return issueMessage({ ...closer[0]!, input } as z.core.$ZodIssue);
      return issue.message;
    }
    default:
      return issue.message;
  }
}

function hint(word: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= (word.length <= 3 ? 1 : 2) ? ` (did you mean "${best}"?)` : "";
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------------------------------------
// Checks on a schema-valid profile

/** Numeric signals and the unit their point must declare; every other signal is true/false. */
export const SIGNAL_UNITS: Readonly<Partial<Record<SignalName, string>>> = {
  gas_lel: "%LEL",
  gas_setpoint_lel: "%LEL",
  co_ppm: "ppm",
  co_setpoint_ppm: "ppm",
};

const FC_NAME = { 1: "coil", 2: "discrete input", 3: "holding register", 4: "input register" } as const;
const is32 = (p: Point) => p.type === "u32" || p.type === "s32" || p.type === "f32";
export const pointWidth = (p: Point): number => (is32(p) ? 2 : 1);
/** Coils, discrete inputs and register bits read as true/false; everything else is a number. */
export const isBooleanPoint = (p: Point): boolean => p.fc === 1 || p.fc === 2 || p.bit !== undefined;

function rawRange(p: Point): [number, number] {
  if (p.byte) return [0, 255];
  switch (p.type) {
    case "s16":
      return [-32768, 32767];
    case "u32":
      return [0, 4294967295];
    case "s32":
      return [-2147483648, 2147483647];
    default:
      return [0, 65535];
  }
}

/** Everything the schema alone cannot see. Pure: the same profile gives the same findings. */
export function checkProfile(p: Profile): ProfileFinding[] {
  const out: ProfileFinding[] = [];
  const err = (path: Path, message: string) => out.push({ path, message, severity: "error" });
  const warn = (path: Path, message: string) => out.push({ path, message, severity: "warning" });

  // Points
  const points = new Map<string, { p: Point; i: number }>();
  p.points.forEach((pt, i) => {
    const at = (...k: Array<string | number>) => ["points", i, ...k];
    const first = points.get(pt.name);
    if (first) err(at("name"), `point name "${pt.name}" is already used by points[${first.i}]`);
    else points.set(pt.name, { p: pt, i });

    if (pt.fc === 1 || pt.fc === 2) {
      if (pt.type !== "bool") err(at("type"), `a ${FC_NAME[pt.fc]} is one bit: set type: bool`);
      if (pt.byte !== undefined) err(at("byte"), `byte applies to registers (fc 3/4), not to a ${FC_NAME[pt.fc]}`);
      if (pt.bit !== undefined) err(at("bit"), `bit applies to registers (fc 3/4), not to a ${FC_NAME[pt.fc]}`);
    } else {
      if (pt.type === "bool") err(at("type"), "a register is not a bool: keep its register type (u16) and add bit: N to read one bit as true/false");
      else if (is32(pt) && (pt.byte !== undefined || pt.bit !== undefined))
        err(at(pt.byte !== undefined ? "byte" : "bit"), `byte and bit apply to 16-bit registers, not to ${pt.type}`);
      if (pt.byte !== undefined && pt.bit !== undefined && pt.bit > 7) err(at("bit"), "a byte has bits 0 to 7");
    }

    if (isBooleanPoint(pt)) {
      if (pt.scale !== 1) err(at("scale"), "a true/false point has no scale");
      if (pt.offset !== 0) err(at("offset"), "a true/false point has no offset");
      if (pt.range) err(at("range"), "a true/false point has no range");
      if (pt.enum) err(at("enum"), "a true/false point has no enum");
    } else if (pt.enum) {
      if (pt.type === "f32") err(at("enum"), "enum labels whole raw values; an f32 point cannot have one");
      if (pt.scale !== 1 || pt.offset !== 0) err(at(pt.scale !== 1 ? "scale" : "offset"), "enum labels raw values: leave scale 1 and offset 0");
      const [lo, hi] = rawRange(pt);
      const labels = new Map<string, string>();
      for (const [raw, label] of Object.entries(pt.enum)) {
        const n = Number(raw);
        if (n < lo || n > hi) err(at("enum", raw), `${raw} can never be read: a ${pt.byte ? "byte" : pt.type} holds ${lo} to ${hi}`);
        const dup = labels.get(label);
        if (dup !== undefined) err(at("enum", raw), `label "${label}" is also used for ${dup}: signals could not tell them apart`);
        else labels.set(label, raw);
      }
    }

    const w = pointWidth(pt);
    const inside = p.poll.some((b) => b.fc === pt.fc && b.address <= pt.address && pt.address + w <= b.address + b.count);
    if (!inside) {
      const same = p.poll.filter((b) => b.fc === pt.fc).map((b) => `${b.address}–${b.address + b.count - 1}`);
      const what = `${FC_NAME[pt.fc]} ${pt.address}${w === 2 ? `–${pt.address + 1}` : ""}`;
      err(at("address"), `${what} is not inside a poll block (fc ${pt.fc} blocks: ${same.length ? same.join(", ") : "none"})`);
    }
  });

  // Poll blocks
  p.poll.forEach((b, i) => {
    const end = b.address + b.count;
    if (!p.points.some((pt) => pt.fc === b.fc && pt.address < end && pt.address + pointWidth(pt) > b.address))
      warn(["poll", i], `no point reads from fc ${b.fc} ${b.address}–${end - 1}: this block only costs bus time`);
    for (let j = 0; j < i; j++) {
      const o = p.poll[j]!;
      if (o.fc === b.fc && o.address < end && b.address < o.address + o.count) warn(["poll", i], `overlaps poll[${j}]: the same data is read twice each poll`);
    }
  });

  const pointRef = (name: string, at: Path) => {
    const found = points.get(name);
    if (!found) err(at, `no point named "${name}"${hint(name, [...points.keys()])}`);
    return found;
  };

  const checkValue = (pt: Point, v: number | string | boolean, at: Path) => {
    if (isBooleanPoint(pt)) {
      if (typeof v !== "boolean") err(at, `point "${pt.name}" is true/false: compare it with true or false`);
    } else if (pt.enum) {
      const e = pt.enum;
      if (typeof v === "string" && !Object.values(e).includes(v))
        err(at, `"${v}" is not a label of point "${pt.name}" (labels: ${Object.values(e).join(", ")})${hint(v, Object.values(e))}`);
      else if (typeof v === "number" && e[String(v)] === undefined)
        err(at, `${v} is not a value of point "${pt.name}" (values: ${Object.keys(e).join(", ")}); unlisted values are rejected, so this would never match`);
      else if (typeof v === "boolean") err(at, `point "${pt.name}" has an enum: compare it with a label or a raw value`);
    } else if (typeof v === "string") err(at, `point "${pt.name}" has no enum labels: compare it with a number`);
  };

  const checkCondition = (c: SignalCondition, at: Path) => {
    const found = pointRef(c.point, [...at, "point"]);
    if (!found) return;
    const pt = found.p;
    if (c.equals === undefined && c.in === undefined && c.above === undefined && !isBooleanPoint(pt))
      err(at, `point "${pt.name}" is a number: add equals, in or above to make it true/false`);
    if (c.equals !== undefined) checkValue(pt, c.equals, [...at, "equals"]);
    if (c.in) {
      if (isBooleanPoint(pt)) err([...at, "in"], `point "${pt.name}" is true/false: use equals`);
      else c.in.forEach((v, k) => checkValue(pt, v, [...at, "in", k]));
    }
    if (c.above !== undefined) {
      if (isBooleanPoint(pt)) err([...at, "above"], `point "${pt.name}" is true/false: use equals`);
      else if (pt.enum) err([...at, "above"], `point "${pt.name}" has an enum: use equals or in`);
    }
  };

  // Signals
  for (const [sig, src] of Object.entries(p.signals) as Array<[SignalName, SignalSource | undefined]>) {
    if (!src) continue;
    const at: Path = ["signals", sig];
    const unit = SIGNAL_UNITS[sig];
    if (unit === undefined) {
      if (src.any) src.any.forEach((c, k) => checkCondition(c, [...at, "any", k]));
      else if (src.point !== undefined) checkCondition({ ...src, point: src.point }, at);
      continue;
    }
    if (src.any) {
      err([...at, "any"], `${sig} is a number (${unit}): it is one point's value, not any`);
      continue;
    }
    for (const k of ["equals", "in", "above", "invert"] as const)
      if (src[k] !== undefined) err([...at, k], `${sig} is a number (${unit}): it is the point's value, without ${k}`);
    if (src.point === undefined) continue;
    const found = pointRef(src.point, [...at, "point"]);
    if (!found) continue;
    const { p: pt, i } = found;
    if (isBooleanPoint(pt)) err([...at, "point"], `${sig} is a number but point "${pt.name}" is true/false`);
    else if (pt.enum) err([...at, "point"], `${sig} is a number but point "${pt.name}" has an enum`);
    if (pt.unit !== unit)
      err(["points", i, "unit"], `point "${pt.name}" feeds ${sig}, so its unit must be "${unit}" (${pt.unit === undefined ? "none given" : `is "${pt.unit}"`})`);
    if (!pt.range) warn(["points", i, "range"], `point "${pt.name}" feeds ${sig}: give its valid range so impossible readings are rejected`);
  }

  // Commands
  for (const [cmd, c] of Object.entries(p.commands)) {
    if (!c) continue;
    const at: Path = ["commands", cmd];
    if (p.readOnly) err(at, "the profile is readOnly (the manual forbids writes): it cannot have commands");
    c.write.forEach((w, k) => {
      if (w.fc === 5 && typeof w.value !== "boolean") err([...at, "write", k, "value"], "fc 5 writes a coil: value must be true or false");
      if (w.fc === 6 && typeof w.value !== "number") err([...at, "write", k, "value"], "fc 6 writes a register: value must be a number 0 to 65535");
    });
    if (c.verify) {
      const s = c.verify.signal;
      if (!p.signals[s]) err([...at, "verify", "signal"], `signal ${s} is not defined in signals, so this command could never be verified`);
      else if (SIGNAL_UNITS[s] !== undefined) err([...at, "verify", "signal"], `${s} is a number: verify needs a true/false signal`);
    } else if (c.ratedMs !== undefined) warn([...at, "ratedMs"], "ratedMs has no effect without verify");
  }

  // Roles
  const has = (s: SignalName) => p.signals[s] !== undefined;
  const seen = new Set<string>();
  p.roles.forEach((role, i) => {
    if (seen.has(role)) warn(["roles", i], `role ${role} is listed twice`);
    seen.add(role);
  });
  if (seen.has("gas_detector") && !has("gas_lel") && !has("alarm")) err(["signals"], "role gas_detector needs signal gas_lel or alarm");
  if (seen.has("co_detector") && !has("co_ppm") && !has("alarm")) err(["signals"], "role co_detector needs signal co_ppm or alarm");
  if (seen.has("presence") && !has("presence")) err(["signals"], "role presence needs signal presence");
  if (seen.has("valve")) {
    if (!has("valve_closed")) err(["signals"], "role valve needs signal valve_closed (the closed limit)");
    const close = p.commands.close;
    if (!close) err(["commands"], "role valve needs a close command");
    else {
      if (!close.verify) err(["commands", "close"], "a valve's close needs verify: { signal: valve_closed, equals: true }");
      else if (close.verify.signal !== "valve_closed" || close.verify.equals !== true)
        err(["commands", "close", "verify"], "only the closed limit proves a valve closed: verify signal valve_closed, equals true");
      if (close.ratedMs === undefined) err(["commands", "close"], "a valve's close needs ratedMs (its rated closing time), or a valve that never closes goes unnoticed");
    }
  }
  if (seen.has("siren"))
    for (const c of ["siren_on", "siren_off"] as const) if (!p.commands[c]) err(["commands"], `role siren needs a ${c} command`);
  for (const c of ["close", "open"] as const) if (p.commands[c] && !seen.has("valve")) warn(["commands", c], `${c} is a valve command but the profile has no valve role`);
  for (const c of ["siren_on", "siren_off"] as const) if (p.commands[c] && !seen.has("siren")) warn(["commands", c], `${c} is a siren command but the profile has no siren role`);

  return out;
}
