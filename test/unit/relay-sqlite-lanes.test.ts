// The relay's SQLite driver (relay/src/store/sqlite-driver.ts): two kysely instances over one real
// better-sqlite3 connection, the urgent lane served first whenever the connection frees, the normal lane
// never starved, the redoable lane committing without its own fsync, savepoints and streaming as kysely's own driver has them, statements prepared once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Kysely, sql, type Generated } from "kysely";
import { sqliteLanes } from "../../relay/src/store/sqlite-driver.js";

interface Db {
  log: { n: Generated<number>; who: string };
}

function open() {
  const dir = mkdtempSync(join(tmpdir(), "anxin-lanes-"));
  const raw = new Database(join(dir, "t.db"));
  raw.pragma("journal_mode = WAL");
  raw.exec("create table log (n integer primary key autoincrement, who text not null)");
  raw.pragma("synchronous = FULL");
  const lanes = sqliteLanes(raw);
  const normal = new Kysely<Db>({ dialect: lanes.normal });
  const urgent = new Kysely<Db>({ dialect: lanes.urgent });
  const redoable = new Kysely<Db>({ dialect: lanes.redoable });
  return {
    raw,
    normal,
    urgent,
    redoable,
    close: async () => {
      await urgent.destroy();
      await redoable.destroy();
      await normal.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const order = async (db: Kysely<Db>) => (await db.selectFrom("log").select("who").orderBy("n").execute()).map((r) => r.who);

test("while a transaction holds the connection, waiting urgent work goes before waiting normal work, and normal work still gets every other turn", async () => {
  const t = open();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  // Holds the connection until released, as a slow escalation transaction would.
  const holder = t.normal.transaction().execute(async (trx) => {
    await trx.insertInto("log").values({ who: "holder" }).execute();
    await gate;
  });
  await new Promise((r) => setImmediate(r));
  const waits = [
    t.normal.insertInto("log").values({ who: "n1" }).execute(),
    t.normal.insertInto("log").values({ who: "n2" }).execute(),
    t.urgent.insertInto("log").values({ who: "u1" }).execute(),
    t.urgent.insertInto("log").values({ who: "u2" }).execute(),
    t.urgent.insertInto("log").values({ who: "u3" }).execute(),
  ];
  release();
  await holder;
  await Promise.all(waits);
  assert.deepEqual(await order(t.normal), ["holder", "u1", "n1", "u2", "n2", "u3"]);
  await t.close();
});

test("the redoable lane commits with synchronous=NORMAL (no fsync of its own); the urgent and normal lanes with FULL", async () => {
  const t = open();
  // 2 = FULL, 1 = NORMAL; read through the lane's own connection turn, where its commit will run.
  const level = (db: Kysely<Db>) =>
    db.transaction().execute(async (trx) => {
      await trx.insertInto("log").values({ who: "x" }).execute();
      return t.raw.pragma("synchronous", { simple: true });
    });
  assert.equal(await level(t.normal), 2);
  assert.equal(await level(t.redoable), 1);
  assert.equal(await level(t.urgent), 2);
  assert.equal(await level(t.redoable), 1);
  assert.equal(await level(t.normal), 2);
  // Queued behind a holder, each still gets its own level when its turn comes.
  const order: Array<[string, unknown]> = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const holder = t.normal.transaction().execute(async () => {
    await gate;
  });
  await new Promise((r) => setImmediate(r));
  const runs = (["redoable", "normal", "urgent", "redoable"] as const).map((lane) =>
    t[lane].transaction().execute(async () => {
      order.push([lane, t.raw.pragma("synchronous", { simple: true })]);
    }),
  );
  release();
  await holder;
  await Promise.all(runs);
  assert.deepEqual(order, [
    ["urgent", 2],
    ["redoable", 1],
    ["normal", 2],
    ["redoable", 1],
  ]);
  await t.close();
});

test("an urgent transaction commits; a rolled-back savepoint undoes only its part", async () => {
  const t = open();
  await t.urgent.transaction().execute(async (trx) => {
    await trx.insertInto("log").values({ who: "kept" }).execute();
    // As ingest keeps one alarm's failure to its own savepoint (relay/src/daemon/guarded-opening.ts).
    await sql`SAVEPOINT one_alarm`.execute(trx);
    await trx.insertInto("log").values({ who: "undone" }).execute();
    await sql`ROLLBACK TO SAVEPOINT one_alarm`.execute(trx);
    await sql`RELEASE SAVEPOINT one_alarm`.execute(trx);
    await trx.insertInto("log").values({ who: "after" }).execute();
  });
  assert.deepEqual(await order(t.normal), ["kept", "after"]);
  // A failed transaction rolls back and frees the connection for the next.
  await assert.rejects(
    t.normal.transaction().execute(async (trx) => {
      await trx.insertInto("log").values({ who: "lost" }).execute();
      throw new Error("boom");
    }),
    /boom/,
  );
  assert.deepEqual(await order(t.urgent), ["kept", "after"]);
  await t.close();
});

test("statements are prepared once per SQL text; streaming works beside a cached statement", async () => {
  const t = open();
  let prepared = 0;
  const prepare = t.raw.prepare.bind(t.raw);
  t.raw.prepare = (source: string) => {
    prepared++;
    return prepare(source);
  };
  for (let i = 0; i < 20; i++) await t.normal.insertInto("log").values({ who: `w${i}` }).execute();
  for (let i = 0; i < 20; i++) await t.urgent.selectFrom("log").select("who").where("n", "=", i).execute();
  assert.equal(prepared, 2, "one insert and one select, each prepared once");
  const seen: string[] = [];
  for await (const row of t.normal.selectFrom("log").select("who").orderBy("n").stream()) seen.push(row.who);
  assert.equal(seen.length, 20);
  const { rows } = await sql<{ c: number }>`select count(*) as c from log`.execute(t.urgent);
  assert.equal(rows[0]?.c, 20);
  const r = await t.normal.updateTable("log").set({ who: "x" }).where("n", "<=", 3).executeTakeFirst();
  assert.equal(r.numUpdatedRows, 3n);
  await t.close();
});
