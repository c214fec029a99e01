// The relay's store with every migration the daemon applies, on SQLite in a temp dir and on PostgreSQL in a
// schema of its own (when ANXIN_TEST_PG_URL is set): one test per store running the same check.
import { test } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import { openStore, type Store } from "../../relay/src/store/store.js";
import { dropPgSchema, PG_URL, pgSkipReason, uniquePgSchema } from "./pg.js";

export function testOnBothStores(name: string, check: (store: Store) => Promise<void>): void {
  test(`SQLite: ${name}`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "anxin-store-"));
    const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir, { migrations: relayExtraMigrations });
    try {
      await check(store);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test(`PostgreSQL: ${name}`, { skip: PG_URL ? false : pgSkipReason(`${name} on PostgreSQL`) }, async () => {
    const schema = uniquePgSchema("anxin_test");
    const store = await openStore({ kind: "postgres", url: PG_URL!, schema, poolSize: 5 }, "/nonexistent", { migrations: relayExtraMigrations });
    try {
      await check(store);
    } finally {
      await store.close();
      await dropPgSchema(PG_URL!, schema);
    }
  });
}
