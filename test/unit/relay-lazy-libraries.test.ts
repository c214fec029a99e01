// A relay loads the heavy libraries of rare paths only when one is taken: the PostgreSQL client when the
// store is PostgreSQL, exceljs on the first Excel export. Both used to come with every start (about 10 MB
// of a SQLite relay's resident memory; docs/benchmarks.md, "The relay at rest").
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { ledgerXlsx } from "../../relay/src/households/ledger-export.js";
import { startRelayForTest } from "../support/relay-rig.js";

const loaded = (name: string): boolean => Object.keys(createRequire(import.meta.url).cache).some((k) => k.includes(`/node_modules/${name}/`));

test("a SQLite relay starts without the PostgreSQL client and exceljs; the first Excel export loads exceljs and still works", async (t) => {
  const rig = await startRelayForTest({});
  t.after(() => rig.stop());
  assert.equal(loaded("pg"), false, "pg loaded by a SQLite relay");
  assert.equal(loaded("exceljs"), false, "exceljs loaded before any export");

  const xlsx = await ledgerXlsx([], "en", { generatedAt: Date.UTC(2026, 11, 6), from: Date.UTC(2026, 10, 1), to: Date.UTC(2026, 11, 1) });
  assert.equal(loaded("exceljs"), true);
  assert.equal(xlsx.subarray(0, 2).toString("latin1"), "PK", "an xlsx file is a zip archive");
  assert.equal(loaded("pg"), false);
});
