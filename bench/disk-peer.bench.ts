// Disk peer: the hub journal's durable commits against a bare better-sqlite3 loop on the same storage choice.
// The journal is the real one (gateway/src/journal/journal.ts: envelope, worker thread, group commit); the
// bare loop opens a database with the journal's own tables (copied from the journal's file) and pragmas (read
// back from the journal's writer connection) and inserts the very rows the journal committed, one plain
// INSERT each, in the same transactions: one row per commit, the batch sizes the journal's group commit made
// under 64 concurrent appenders, and appendMany(100). The journal's store on its own (JournalStore in this
// thread: same SQL, no worker, no envelope) sits in between. Rounds alternate the variants; medians reported.
// Run: node --import tsx bench/disk-peer.bench.ts
// BENCH_DIR (disk), BENCH_DISK_ROUNDS (5), BENCH_DISK_SINGLE (3,000 events one per commit), BENCH_DISK_EVENTS
// (30,000 events in the batched runs).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { Journal } from "../gateway/src/journal/journal.js";
import type { EventRow } from "../gateway/src/journal/messages.js";
import { JournalStore } from "../gateway/src/journal/store.js";
import { benchAlarmDraft, describeMachine, loadNow, mountOf, onCleanup, packageVersion } from "./peer-support.js";
import { pct, r2, rawFdatasync } from "./support.js";

const ROUNDS = Number(process.env.BENCH_DISK_ROUNDS ?? 5);
const SINGLE = Number(process.env.BENCH_DISK_SINGLE ?? 3000);
const EVENTS = Number(process.env.BENCH_DISK_EVENTS ?? 30_000);
const CONCURRENT = 64;
const MANY = 100;
/** The pragmas that shape a commit's cost, read back from the journal's writer connection and set on the bare one. */
const PRAGMAS = ["journal_mode", "synchronous", "journal_size_limit", "busy_timeout", "page_size", "cache_size", "wal_autocheckpoint", "locking_mode", "temp_store"];

const dir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), "anxin-disk-peer-"));
const removeDir = onCleanup(() => rmSync(dir, { recursive: true, force: true }));
let dbNo = 0;
const freshPath = (what: string): string => join(dir, `${what}-${++dbNo}.db`);

interface Run {
  rows: number;
  commits: number;
  seconds: number;
  commitsPerSec: number;
  rowsPerSec: number;
}
const result = (rows: number, commits: number, ms: number): Run => ({
  rows,
  commits,
  seconds: r2(ms / 1000),
  commitsPerSec: Math.round(commits / (ms / 1000)),
  rowsPerSec: Math.round(rows / (ms / 1000)),
});

/** What a journal run leaves for its peers: the rows as committed, the batch sizes, the pragmas and schema. */
interface JournalRun extends Run {
  committed: EventRow[];
  batches: number[];
  pragmas: Record<string, unknown>;
  schema: string[];
}

/**
 * Counts the journal's commits: its worker posts one message per committed group (worker.ts, commitGroup), so
 * each message is one transaction. Appends resolved by that message run their continuations right after it,
 * before the next one, which is how `took()` attributes each row to its commit.
 */
function commitCounter(j: Journal): { batches: number[]; took(): void } {
  const worker = (j as unknown as { worker: Worker | null }).worker;
  if (!worker) throw new Error("journal worker not running");
  const batches: number[] = [];
  worker.on("message", () => batches.push(0));
  return {
    batches,
    took: () => {
      batches[batches.length - 1] = (batches.at(-1) ?? 0) + 1;
    },
  };
}

async function journalRun(mode: "single" | "concurrent" | "many", n: number): Promise<JournalRun> {
  const path = freshPath(`journal-${mode}`);
  const j = await Journal.open({ path, hub: "bench" });
  const pragmas: Record<string, unknown> = {};
  for (const p of PRAGMAS) pragmas[p] = await j._testPragma(p);
  const counter = commitCounter(j);
  let ms: number;
  try {
    const t0 = performance.now();
    if (mode === "single") {
      for (let i = 0; i < n; i++) {
        await j.append(benchAlarmDraft(i));
        counter.took();
      }
    } else if (mode === "concurrent") {
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENT }, async () => {
          while (next < n) {
            await j.append(benchAlarmDraft(next++));
            counter.took();
          }
        }),
      );
    } else {
      for (let i = 0; i < n; i += MANY) {
        const envs = await j.appendMany(Array.from({ length: Math.min(MANY, n - i) }, (_, k) => benchAlarmDraft(i + k)));
        for (let k = 0; k < envs.length; k++) counter.took();
      }
    }
    ms = performance.now() - t0;
  } finally {
    await j.close();
  }
  // The close's own reply is one more message; only batches that carried rows were commits of this run.
  const batches = counter.batches.filter((b) => b > 0);
  const rowsSeen = batches.reduce((a, b) => a + b, 0);
  if (rowsSeen !== n) throw new Error(`journal ${mode}: attributed ${rowsSeen} of ${n} rows to commits`);
  const db = new Database(path, { readonly: true });
  try {
    const committed = db
      .prepare(
        `SELECT event_id AS id, boot, seq, ts, kind, type, severity, rank, payload, size, created_at AS createdAt
         FROM events ORDER BY rowid`,
      )
      .all() as EventRow[];
    if (committed.length !== n) throw new Error(`journal ${mode}: ${committed.length} rows stored, ${n} appended`);
    const schema = (db.prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid").pluck().all() as string[]).map((s) =>
      s.replace(/^CREATE (TABLE|INDEX)/, "CREATE $1 IF NOT EXISTS"),
    );
    return { ...result(n, batches.length, ms), committed, batches, pragmas, schema };
  } finally {
    db.close();
  }
}

/** The bare peer: the journal's tables and pragmas, a plain INSERT per row, `batches` rows per transaction. */
function bareRun(src: JournalRun, batches: number[]): Run & { sqliteVersion: string } {
  const db = new Database(freshPath("bare"));
  try {
    for (const p of ["journal_mode", ...PRAGMAS.filter((p) => p !== "journal_mode")]) db.pragma(`${p} = ${String(src.pragmas[p])}`);
    for (const p of PRAGMAS) {
      const got = db.pragma(p, { simple: true });
      if (String(got) !== String(src.pragmas[p])) throw new Error(`bare: pragma ${p} is ${String(got)}, the journal's is ${String(src.pragmas[p])}`);
    }
    for (const sql of src.schema) db.exec(sql);
    const insert = db.prepare(
      `INSERT INTO events (event_id, boot, seq, ts, kind, type, severity, rank, payload, size, created_at)
       VALUES (@id, @boot, @seq, @ts, @kind, @type, @severity, @rank, @payload, @size, @createdAt)`,
    );
    const tx = db.transaction((rows: EventRow[]) => {
      for (const row of rows) insert.run(row);
    });
    const rows = src.committed;
    const t0 = performance.now();
    let at = 0;
    for (const size of batches) {
      tx.immediate(size === 1 ? [rows[at] as EventRow] : rows.slice(at, at + size));
      at += size;
    }
    const ms = performance.now() - t0;
    const stored = db.prepare("SELECT count(*) FROM events").pluck().get() as number;
    if (stored !== rows.length) throw new Error(`bare: ${stored} rows stored of ${rows.length}`);
    return { ...result(rows.length, batches.length, ms), sqliteVersion: db.prepare("SELECT sqlite_version()").pluck().get() as string };
  } finally {
    db.close();
  }
}

/** The journal's store in this thread: the journal's SQL per commit (insert, last id, row count), no worker. */
function storeRun(src: JournalRun, batches: number[]): Run {
  const store = new JournalStore(freshPath("store"), 200_000, true);
  try {
    const rows = src.committed;
    const t0 = performance.now();
    let at = 0;
    for (const size of batches) {
      store.append(rows.slice(at, at + size));
      at += size;
    }
    const ms = performance.now() - t0;
    if (store.stats().rows !== rows.length) throw new Error("store: row count differs");
    return result(rows.length, batches.length, ms);
  } finally {
    store.close();
  }
}

type Mode = "single" | "concurrent" | "many";
const MODES: Array<{ mode: Mode; label: string; n: number }> = [
  { mode: "single", label: "one event per commit (append, awaited)", n: SINGLE },
  { mode: "concurrent", label: `group commit (${CONCURRENT} concurrent appends)`, n: EVENTS },
  { mode: "many", label: `appendMany(${MANY})`, n: EVENTS },
];

const machine = { ...describeMachine(), dir, disk: mountOf(dir) };
console.log(`disk: ${machine.disk.device} ${machine.disk.fsType} on ${machine.disk.mount} (bench dir ${dir})`);

try {
  const fsync = rawFdatasync(dir, 200);
  const perMode = new Map<Mode, Array<{ journal: JournalRun; store: Run; bare: Run }>>(MODES.map((m) => [m.mode, []]));
  let sqliteVersion = "?";
  let pragmas: Record<string, unknown> = {};
  for (let round = 1; round <= ROUNDS; round++) {
    for (const { mode, n } of MODES) {
      const journal = await journalRun(mode, n);
      pragmas = journal.pragmas;
      // The peers commit the same rows in the same transactions; their order alternates between rounds.
      const batches = journal.batches;
      let bare: Run & { sqliteVersion: string };
      let store: Run;
      if (round % 2) {
        bare = bareRun(journal, batches);
        store = storeRun(journal, batches);
      } else {
        store = storeRun(journal, batches);
        bare = bareRun(journal, batches);
      }
      sqliteVersion = bare.sqliteVersion;
      perMode.get(mode)?.push({ journal, store, bare });
      console.log(
        `round ${round}, ${mode}: journal ${journal.commitsPerSec} commits/s (${journal.rowsPerSec} rows/s, mean batch ${r2(journal.rows / journal.commits)}), ` +
          `store ${store.commitsPerSec}, bare ${bare.commitsPerSec} commits/s; load ${loadNow().join(" ")}`,
      );
    }
  }

  const median = (xs: number[]): number => pct([...xs].sort((a, b) => a - b), 50);
  const summary = MODES.map(({ mode, label }) => {
    const runs = perMode.get(mode) ?? [];
    const pick = (k: "journal" | "store" | "bare", f: "commitsPerSec" | "rowsPerSec") => median(runs.map((r) => r[k][f]));
    const j = runs[0]?.journal as JournalRun;
    const sizes = [...j.batches].sort((a, b) => a - b);
    return {
      mode,
      label,
      rows: j.rows,
      commits: median(runs.map((r) => r.journal.commits)),
      batchRows: { mean: r2(j.rows / j.commits), p50: pct(sizes, 50), p99: pct(sizes, 99), max: sizes.at(-1) ?? 0 },
      journal: { commitsPerSec: pick("journal", "commitsPerSec"), rowsPerSec: pick("journal", "rowsPerSec") },
      store: { commitsPerSec: pick("store", "commitsPerSec"), rowsPerSec: pick("store", "rowsPerSec") },
      bare: { commitsPerSec: pick("bare", "commitsPerSec"), rowsPerSec: pick("bare", "rowsPerSec") },
      /** Per round, journal ÷ bare on the same rows and transactions; the median of those. */
      ratioJournalToBare: r2(median(runs.map((r) => r.journal.rowsPerSec / r.bare.rowsPerSec))),
      ratioStoreToBare: r2(median(runs.map((r) => r.store.rowsPerSec / r.bare.rowsPerSec))),
      rounds: runs.map((r) => ({ journal: r.journal.rowsPerSec, store: r.store.rowsPerSec, bare: r.bare.rowsPerSec, journalCommits: r.journal.commits })),
    };
  });
  machine.loadEnd = loadNow();
  const versions = { node: process.version, betterSqlite3: packageVersion("better-sqlite3"), sqlite: sqliteVersion };

  console.log("");
  console.log(`raw 4 KiB write + fdatasync: ${fsync.perSec}/s (p50 ${fsync.p50} ms, p99 ${fsync.p99} ms)`);
  console.log(
    `journal pragmas (set on the bare peer too): ${Object.entries(pragmas)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(", ")}`,
  );
  console.log(`versions: better-sqlite3 ${versions.betterSqlite3}, SQLite ${versions.sqlite}, Node ${versions.node}; medians of ${ROUNDS} rounds`);
  const table: Record<string, Record<string, number | string>> = {};
  for (const s of summary) {
    table[s.label] = {
      rows: s.rows,
      commits: s.commits,
      "rows/commit": s.batchRows.mean,
      "journal commits/s": s.journal.commitsPerSec,
      "journal rows/s": s.journal.rowsPerSec,
      "store commits/s": s.store.commitsPerSec,
      "store rows/s": s.store.rowsPerSec,
      "bare commits/s": s.bare.commitsPerSec,
      "bare rows/s": s.bare.rowsPerSec,
      "journal / bare": s.ratioJournalToBare,
      "store / bare": s.ratioStoreToBare,
    };
  }
  console.table(table);
  console.log(`load average at end: ${machine.loadEnd.join(" ")}`);
  console.log(
    JSON.stringify({
      bench: "disk-peer",
      machine,
      versions,
      pragmas,
      rounds: ROUNDS,
      fdatasync4k: fsync,
      eventBytes: perMode.get("single")?.[0]?.journal.committed[0]?.size ?? 0,
      results: summary,
      peer: "bare better-sqlite3: the journal's tables and pragmas, a plain INSERT per row, the journal's rows in the journal's transactions",
    }),
  );
} finally {
  await removeDir();
}
