// The daemon with sealed hub signing keys, on SQLite and PostgreSQL: after enrolment the store holds no
// key in any encoding, the hub's signed events still verify, clear rows of an earlier version are sealed at
// start, and a wrong or badly protected master key stops the start with a clear error.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { ulid } from "ulid";
import type { EnrolResponse } from "../../protocol/messages.js";
import { signEnvelope } from "../../protocol/signing.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import { Registry } from "../../relay/src/registry/registry.js";
import { openStore } from "../../relay/src/store/store.js";
import { waitFor } from "../support/hub-rig.js";
import { dropPgSchema, PG_URL, pgSkipReason, uniquePgSchema } from "../support/pg.js";
import { startRelayForTest, type RelayRig } from "../support/relay-rig.js";

type StoreCfg = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string; schema: string; poolSize: number };

interface Backend {
  name: string;
  /** A fresh store configuration (its schema dropped after the test). */
  store(t: TestContext): StoreCfg | undefined;
  /** Every text the store holds (SQLite: the database files' bytes; PostgreSQL: every row of the schema). */
  contents(rig: RelayRig, cfg: StoreCfg | undefined): Promise<Buffer>;
}

const BACKENDS: Backend[] = [
  {
    name: "SQLite",
    store: () => undefined,
    contents: async (rig) => {
      const dataDir = path.join(rig.dir, "data");
      const files = (await readdir(dataDir)).filter((f) => f.startsWith("relay.db"));
      assert.ok(files.includes("relay.db"));
      return Buffer.concat(await Promise.all(files.map((f) => readFile(path.join(dataDir, f)))));
    },
  },
  {
    name: "PostgreSQL",
    store: (t) => {
      const schema = uniquePgSchema("anxin_mkey");
      t.after(() => dropPgSchema(PG_URL as string, schema));
      return { kind: "postgres", url: PG_URL as string, schema, poolSize: 4 };
    },
    contents: async (_rig, cfg) => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        const schema = (cfg as { schema: string }).schema;
        const tables = await c.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = $1", [schema]);
        assert.ok(tables.rows.some((r) => r.table_name === "hubs"));
        const out: string[] = [];
        for (const { table_name } of tables.rows) {
          const rows = await c.query<{ t: string }>(`SELECT t::text AS t FROM "${schema}"."${table_name}" t`);
          out.push(...rows.rows.map((r) => r.t));
        }
        return Buffer.from(out.join("\n"));
      } finally {
        await c.end();
      }
    },
  },
];

function each(name: string, fn: (t: TestContext, b: Backend) => Promise<void>): void {
  for (const b of BACKENDS)
    test(`${name} [${b.name}]`, async (t) => {
      if (b.name === "PostgreSQL" && !PG_URL) return t.skip(pgSkipReason("sealed hub keys on PostgreSQL"));
      await fn(t, b);
    });
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-mkey-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function writeKey(file: string, mode = 0o600): Promise<string> {
  await writeFile(file, `${randomBytes(32).toString("base64")}\n`, { mode });
  await chmod(file, mode);
  return file;
}

/** Every way the key could have been written down. */
function encodings(keyB64: string): Array<[string, Buffer]> {
  const key = Buffer.from(keyB64, "base64");
  return [
    ["raw", key],
    ["base64", Buffer.from(key.toString("base64"))],
    ["base64 unpadded", Buffer.from(key.toString("base64").replace(/=+$/, ""))],
    ["base64url", Buffer.from(key.toString("base64url"))],
    ["hex", Buffer.from(key.toString("hex"))],
    ["HEX", Buffer.from(key.toString("hex").toUpperCase())],
    ["PostgreSQL bytea", Buffer.from(`\\x${key.toString("hex")}`)],
  ];
}

/** A signed heartbeat from the hub, through ingest; resolves once it is committed (i.e. it verified). */
async function sendSigned(relay: RunningRelay, hub: string, keyB64: string, seq: number): Promise<void> {
  const before = await relay.store.countEvents(hub);
  const env = signEnvelope({ v: 1, hub, boot: 1, seq, id: ulid(), ts: Date.now(), kind: "heartbeat", type: "heartbeat", severity: "info" }, Buffer.from(keyB64, "base64"));
  relay.ingest.handle(hub, Buffer.from(JSON.stringify(env)));
  await waitFor(`event ${seq} of ${hub} committed`, async () => (await relay.store.countEvents(hub)) > before, 10_000);
}

async function start(t: TestContext, o: { store?: StoreCfg; dir?: string; secrets?: Record<string, unknown> } = {}): Promise<RelayRig> {
  const rig = await startRelayForTest({ ...(o.dir ? { dir: o.dir } : {}), config: { ...(o.store ? { store: o.store } : {}), ...(o.secrets ? { secrets: o.secrets } : {}) } });
  t.after(() => rig.stop());
  return rig;
}

each("after enrolment the store holds no signing key in any encoding, and the hub's signed events verify", async (t, b) => {
  const store = b.store(t);
  const rig = await start(t, { store, dir: await tempDir(t) });
  const res: EnrolResponse = await rig.enrolHub("hub-1");
  assert.equal(Buffer.from(res.key, "base64").length, 32, "the hub still gets its key in clear (over TLS)");
  const row = await rig.relay.store.getHubAuth("hub-1");
  assert.match(row?.keyB64 ?? "", /^v1:[A-Za-z0-9_-]{8}:/);
  await sendSigned(rig.relay, "hub-1", res.key, 1);
  // A forged event (another key) is still refused: the registry gives the real key, not just any.
  const forged = signEnvelope({ v: 1, hub: "hub-1", boot: 1, seq: 2, id: ulid(), ts: Date.now(), kind: "heartbeat", type: "heartbeat", severity: "info" }, randomBytes(32));
  rig.relay.ingest.handle("hub-1", Buffer.from(JSON.stringify(forged)));
  await rig.relay.ingest.flush();
  await sendSigned(rig.relay, "hub-1", res.key, 3);
  assert.equal(await rig.relay.store.countEvents("hub-1"), 2, "the forged event was not committed");

  const cfg = store;
  if (b.name === "SQLite") await rig.stop(); // checkpointed: the files hold everything
  const bytes = await b.contents(rig, cfg);
  assert.ok(bytes.includes(Buffer.from("hub-1")), "the scan sees the store's contents");
  for (const [how, needle] of encodings(res.key)) assert.ok(!bytes.includes(needle), `the signing key is in the store (${how})`);
});

each("clear keys written by an earlier version are sealed at start, and those hubs' events still verify", async (t, b) => {
  const cfg = b.store(t);
  const dir = await tempDir(t);
  // The earlier relay: the same store, keys in clear.
  const dataDir = path.join(dir, "data");
  const legacyStore = await openStore(cfg ?? { kind: "sqlite", path: path.join(dataDir, "relay.db") }, dataDir, { migrations: relayExtraMigrations });
  const legacy = new Registry(legacyStore, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://relay:1883" });
  const old = await legacy.provisionDirect("hub-old");
  assert.equal((await legacyStore.getHubAuth("hub-old"))?.keyB64, old.key, "precondition: stored in clear");
  await legacyStore.close();

  const rig = await start(t, { store: cfg, dir });
  const sealed = (await rig.relay.store.getHubAuth("hub-old"))?.keyB64 ?? "";
  assert.match(sealed, /^v1:/);
  await sendSigned(rig.relay, "hub-old", old.key, 1);
  if (b.name === "SQLite") await rig.stop();
  const bytes = await b.contents(rig, cfg);
  for (const [how, needle] of encodings(old.key)) assert.ok(!bytes.includes(needle), `the legacy key is still in the store (${how})`);
});

each("a relay given the wrong master key for a sealed store does not start, and says why", async (t, b) => {
  const cfg = b.store(t);
  const dir = await tempDir(t);
  const right = await writeKey(path.join(dir, "right.key"));
  const first = await start(t, { store: cfg, dir, secrets: { masterKeyFile: right } });
  const res = await first.enrolHub("hub-1");
  await first.stop();

  const wrong = await writeKey(path.join(dir, "wrong.key"));
  await assert.rejects(startRelayForTest({ dir, config: { ...(cfg ? { store: cfg } : {}), secrets: { masterKeyFile: wrong } } }), (e: unknown) => {
    assert.match((e as Error).message, new RegExp(`^wrong master key: the hub signing keys in the store were sealed with master key [A-Za-z0-9_-]{8}, but ${wrong} holds master key`));
    return true;
  });
  // Without any configured key the default local file is not made up for a sealed store either.
  await assert.rejects(startRelayForTest({ dir, config: { ...(cfg ? { store: cfg } : {}), secrets: {} } }), /no master key: the store holds 1 hub signing key/);
  // With the right key it starts, and the hub's events verify as before.
  const again = await start(t, { store: cfg, dir, secrets: { masterKeyFile: right } });
  await sendSigned(again.relay, "hub-1", res.key, 1);
});

each("a master key file other users can read (0644) is refused at start with the fix", async (t, b) => {
  const cfg = b.store(t);
  const dir = await tempDir(t);
  const open = await writeKey(path.join(dir, "open.key"), 0o644);
  await assert.rejects(
    startRelayForTest({ dir, config: { ...(cfg ? { store: cfg } : {}), secrets: { masterKeyFile: open } } }),
    new RegExp(`secrets.masterKeyFile: refusing the master key file ${open}: its mode is 0644.*chmod 600 ${open}`),
  );
});

test("without any master key configured, an embedded SQLite relay makes its own beside the configuration, 0600, and keeps using it", async (t) => {
  const dir = await tempDir(t);
  const first = await start(t, { dir });
  const res = await first.enrolHub("hub-1");
  await first.stop();
  const file = path.join(dir, "relay-master.key");
  const { mode } = await stat(file);
  assert.equal(mode & 0o777, 0o600);
  assert.ok(!(await readdir(path.join(dir, "data"))).some((f) => f.includes("master")), "not inside dataDir, so a backup of it leaves the key out");
  const again = await start(t, { dir });
  await sendSigned(again.relay, "hub-1", res.key, 1);
});

test("a PostgreSQL relay never makes up a master key: instances sharing the store must share one", async (t) => {
  if (!PG_URL) return t.skip(pgSkipReason("the PostgreSQL master key rule"));
  const schema = uniquePgSchema("anxin_mkey");
  t.after(() => dropPgSchema(PG_URL as string, schema));
  const dir = await tempDir(t);
  await assert.rejects(
    startRelayForTest({ dir, config: { store: { kind: "postgres", url: PG_URL, schema, poolSize: 2 }, secrets: {} } }),
    /no master key to seal hub signing keys with; .*with a PostgreSQL store every instance must use the same master key/,
  );
  await assert.rejects(stat(path.join(dir, "relay-master.key")), /ENOENT/);
});
