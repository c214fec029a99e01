// The console's translation catalogues: Chinese and English say the same things (every key in both, with
// the same placeholders), and every error code the relay's HTTP side answers with has a sentence in both,
// so an operator never sees a bare code or the server's English message. The codes are read from the
// relay's sources, so a new refusal without a translation fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CATALOGUES, mergeCatalogues } from "../../relay/console/src/locales.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

type Catalogue = { [key: string]: string | Catalogue };

function flatten(c: Catalogue, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === "string") out.set(prefix + k, v);
    else for (const [kk, vv] of flatten(v, `${prefix}${k}.`)) out.set(kk, vv);
  }
  return out;
}

const placeholders = (s: string) => [...s.matchAll(/\{\{\s*(\w+)/g)].map((m) => m[1]).sort();

test("Chinese and English catalogues have the same keys and the same placeholders", () => {
  const zh = flatten(CATALOGUES["zh-CN"]);
  const en = flatten(CATALOGUES.en);
  assert.deepEqual([...zh.keys()].filter((k) => !en.has(k)), [], "keys only in zh-CN");
  assert.deepEqual([...en.keys()].filter((k) => !zh.has(k)), [], "keys only in en");
  for (const [k, v] of zh) {
    assert.deepEqual(placeholders(v), placeholders(en.get(k) ?? ""), `placeholders of ${k}`);
    assert.notEqual(v.trim(), "", `empty text for ${k}`);
  }
});

test("a key defined twice with different words is refused, not silently overwritten", () => {
  assert.throws(() => mergeCatalogues({ error: { x: "a" } }, { error: { x: "b" } }), /error|x/);
  assert.deepEqual(mergeCatalogues({ a: { b: "1" } }, { a: { c: "2" } }), { a: { b: "1", c: "2" } });
});

async function sourcesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourcesUnder(p)));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

/** The `error` codes the relay's HTTP side can answer with (telephony's callbacks excepted: no person reads those). */
async function relayErrorCodes(): Promise<Set<string>> {
  const codes = new Set<string>();
  const files = (await sourcesUnder(path.join(ROOT, "relay", "src"))).filter((f) => !f.includes(`${path.sep}telephony${path.sep}`) && !f.endsWith("telephony-callbacks.ts"));
  for (const f of files) {
    const text = await readFile(f, "utf8");
    for (const m of text.matchAll(/HttpError\(\s*\d{3},\s*"([a-z_]+)"/g)) codes.add(m[1] as string);
    for (const m of text.matchAll(/\berror: "([a-z_]+)"/g)) codes.add(m[1] as string);
    // The code unions of the errors the routes turn into answers (IncidentError, TakeError, HouseholdError…).
    for (const m of text.matchAll(/(?:readonly code:|type \w*ErrorCode =)\s*((?:"[a-z_]+"\s*\|?\s*)+)/g)) for (const c of (m[1] as string).matchAll(/"([a-z_]+)"/g)) codes.add(c[1] as string);
  }
  return codes;
}

test("every error code the relay answers with has a sentence in both languages", async () => {
  const codes = await relayErrorCodes();
  assert.ok(codes.has("not_allowed") && codes.has("csrf") && codes.has("bad_query"), "the scan finds the relay's codes");
  for (const lang of ["zh-CN", "en"] as const) {
    const errors = CATALOGUES[lang].error as Catalogue;
    const missing = [...codes].filter((c) => typeof errors[c] !== "string").sort();
    assert.deepEqual(missing, [], `error codes without a ${lang} sentence`);
  }
});
