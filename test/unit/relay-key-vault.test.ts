// Hub signing keys at rest: the vault's sealing (hub-bound, versioned, key-named), the master key file's
// checks, and the start-up check against the store (wrong key, clear legacy rows, copied rows).
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pino } from "pino";
import { relayConfigSchema, type RelayConfig } from "../../relay/src/config/schema.js";
import { startHubKeys, lazyHubKeys } from "../../relay/src/registry/hub-keys.js";
import { HubKeyError, isSealed, KeyVault, parseClearKey } from "../../relay/src/registry/key-vault.js";
import { findMasterKey, MasterKeyError, parseMasterKey, readMasterKeyFile } from "../../relay/src/registry/master-key.js";
import { Registry } from "../../relay/src/registry/registry.js";
import { openStore, type Store } from "../../relay/src/store/store.js";

const silent = pino({ level: "silent" });

async function tempDir(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-key-vault-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function keyFile(dir: string, name: string, key = randomBytes(32), mode = 0o600): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, `${key.toString("base64")}\n`, { mode });
  await chmod(file, mode); // whatever the umask
  return file;
}

function configFor(dir: string, secrets: Partial<RelayConfig["secrets"]> = {}): RelayConfig {
  const c = relayConfigSchema.parse({ relay: { dataDir: dir } });
  c.secrets = { ...c.secrets, localMasterKeyFile: path.join(dir, "relay-master.key"), ...secrets };
  return c;
}

async function sqlite(t: { after(fn: () => unknown): void }, dir: string): Promise<Store> {
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, dir);
  t.after(() => store.close());
  return store;
}

const registryOn = (store: Store, vault?: KeyVault) =>
  new Registry(store, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://relay:1883", ...(vault ? { keys: async () => vault } : {}) });

test("vault: sealed text is versioned and names the master key; it opens for its hub only", () => {
  const vault = new KeyVault(randomBytes(32));
  const key = randomBytes(32);
  const sealed = vault.seal("hub-1", key);
  assert.match(sealed, new RegExp(`^v1:${vault.keyId}:[A-Za-z0-9+/]{16}:[A-Za-z0-9+/=]+$`));
  assert.ok(isSealed(sealed));
  assert.ok(!sealed.includes(key.toString("base64")) && !sealed.includes(key.toString("hex")));
  assert.notEqual(vault.seal("hub-1", key), sealed, "a fresh nonce every time");
  assert.deepEqual(vault.open("hub-1", sealed), key);
  assert.throws(() => vault.open("hub-2", sealed), (e: unknown) => e instanceof HubKeyError && /another hub/.test(e.message));
  // Another master key: refused by its key id, before any decryption.
  assert.throws(() => new KeyVault(randomBytes(32)).open("hub-1", sealed), /sealed with master key/);
  // A flipped bit in the ciphertext.
  const parts = sealed.split(":");
  const body = Buffer.from(parts[3]!, "base64");
  body[0] = body[0]! ^ 1;
  assert.throws(() => vault.open("hub-1", [...parts.slice(0, 3), body.toString("base64")].join(":")), HubKeyError);
  assert.throws(() => vault.open("hub-1", `v2:${sealed.slice(3)}`), /sealed as v2/);
  assert.equal(parseClearKey(key.toString("base64"))?.equals(key), true);
  assert.equal(parseClearKey(sealed), null);
});

test("master key: base64, hex or raw 32 bytes; anything else, or a placeholder, is refused saying how to make one", () => {
  const key = randomBytes(32);
  assert.deepEqual(parseMasterKey(Buffer.from(`${key.toString("base64")}\n`), "f"), key);
  assert.deepEqual(parseMasterKey(Buffer.from(key.toString("base64url")), "f"), key);
  assert.deepEqual(parseMasterKey(Buffer.from(`  ${key.toString("hex")}\r\n`), "f"), key);
  assert.deepEqual(parseMasterKey(key, "f"), key);
  assert.throws(() => parseMasterKey(Buffer.from(randomBytes(16).toString("base64")), "f"), /f: not a master key: expected 32 random bytes.*openssl rand -base64 32/);
  assert.throws(() => parseMasterKey(Buffer.from("change-me\n"), "f"), MasterKeyError);
  assert.throws(() => parseMasterKey(Buffer.from(Buffer.alloc(32).toString("base64")), "f"), /one byte repeated/);
});

test("master key file: group- or world-readable is refused with the fix; 0600 and 0400 are read", async (t) => {
  const dir = await tempDir(t);
  const key = randomBytes(32);
  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    const file = await keyFile(dir, `k${mode.toString(8)}`, key, mode);
    await assert.rejects(readMasterKeyFile(file, "secrets.masterKeyFile"), (e: unknown) => {
      assert.ok(e instanceof MasterKeyError);
      assert.match(e.message, new RegExp(`secrets.masterKeyFile: refusing the master key file ${file}: its mode is 0${mode.toString(8)}.*chmod 600 ${file}`));
      assert.ok(!e.message.includes(key.toString("base64")), "the key is never in a message");
      return true;
    });
  }
  assert.deepEqual(await readMasterKeyFile(await keyFile(dir, "k600", key, 0o600), "x"), key);
  assert.deepEqual(await readMasterKeyFile(await keyFile(dir, "k400", key, 0o400), "x"), key);
  await assert.rejects(readMasterKeyFile(path.join(dir, "missing"), "x"), (e: unknown) => e instanceof MasterKeyError && e.missing);
  await assert.rejects(readMasterKeyFile(dir, "x"), /not a regular file/);
});

test("master key search: the configured file, then the systemd credential, then (SQLite) the local file, made 0600 once", async (t) => {
  const dir = await tempDir(t);
  const creds = path.join(dir, "creds");
  const cfg = configFor(dir).secrets;
  const env = { CREDENTIALS_DIRECTORY: creds };

  // Nothing anywhere, no generation: none; a PostgreSQL store never uses the local file.
  assert.equal(await findMasterKey(cfg, { env, sqlite: true, generate: false }), null);
  assert.equal(await findMasterKey(cfg, { env, sqlite: false, generate: true }), null);

  const made = await findMasterKey(cfg, { env, sqlite: true, generate: true });
  assert.equal(made?.origin, "local");
  assert.equal(made?.generated, true);
  assert.equal((await stat(cfg.localMasterKeyFile!)).mode & 0o777, 0o600);
  assert.deepEqual(parseMasterKey(await readFile(cfg.localMasterKeyFile!), "x"), made?.key);
  const again = await findMasterKey(cfg, { env, sqlite: true, generate: true });
  assert.deepEqual([again?.generated, again?.key], [false, made?.key], "made once, then read");

  // A credential named as configured wins over the local file.
  await mkdir(creds);
  const credKey = randomBytes(32);
  await keyFile(creds, "anxin-relay-master-key", credKey, 0o400);
  const fromCred = await findMasterKey(cfg, { env, sqlite: true, generate: true });
  assert.deepEqual([fromCred?.origin, fromCred?.key], ["credential", credKey]);

  // The configured file wins over both; when it is missing that is an error, not a fallback.
  const own = randomBytes(32);
  const ownFile = await keyFile(dir, "own.key", own);
  assert.deepEqual((await findMasterKey({ ...cfg, masterKeyFile: ownFile }, { env, sqlite: true, generate: true }))?.key, own);
  await assert.rejects(findMasterKey({ ...cfg, masterKeyFile: path.join(dir, "nope.key") }, { env, sqlite: true, generate: true }), /secrets.masterKeyFile: no master key file/);
});

test("start on SQLite: clear legacy rows are sealed in place and still verify; a second start seals none", async (t) => {
  const dir = await tempDir(t);
  const store = await sqlite(t, dir);
  // Enrolled by a relay that stored keys in clear.
  const legacy = registryOn(store);
  const a = await legacy.provisionDirect("hub-a");
  const b = await legacy.provisionDirect("hub-b");
  assert.equal((await store.getHubAuth("hub-a"))?.keyB64, a.key, "precondition: stored in clear");

  const config = configFor(dir);
  const first = await startHubKeys(store, config, { log: silent, env: {} });
  assert.equal(first.sealedNow, 2);
  assert.deepEqual(first.damaged, []);
  assert.equal(first.master.generated, true);
  for (const [hub, res] of [["hub-a", a], ["hub-b", b]] as const) {
    const stored = (await store.getHubAuth(hub))?.keyB64 ?? "";
    assert.match(stored, /^v1:/);
    assert.ok(!stored.includes(res.key));
    assert.deepEqual(await registryOn(store, first.vault).signingKey(hub), Buffer.from(res.key, "base64"));
  }
  const second = await startHubKeys(store, config, { log: silent, env: {} });
  assert.equal(second.sealedNow, 0);
  assert.equal(second.vault.keyId, first.vault.keyId);
});

test("start with the wrong master key fails, naming both keys; no new key is made up for a sealed store", async (t) => {
  const dir = await tempDir(t);
  const store = await sqlite(t, dir);
  const right = await keyFile(dir, "right.key");
  const started = await startHubKeys(store, configFor(dir, { masterKeyFile: right }), { log: silent, env: {} });
  await registryOn(store, started.vault).provisionDirect("hub-1");

  const wrong = await keyFile(dir, "wrong.key");
  await assert.rejects(startHubKeys(store, configFor(dir, { masterKeyFile: wrong }), { log: silent, env: {} }), (e: unknown) => {
    assert.ok(e instanceof MasterKeyError);
    assert.match(e.message, new RegExp(`^wrong master key: the hub signing keys in the store were sealed with master key ${started.vault.keyId}, but ${wrong} holds master key`));
    assert.match(e.message, /re-enrol every hub/);
    return true;
  });
  // The same through the CLI's lazy lookup: it must not seal a hub's key under a key the daemon lacks.
  await assert.rejects(lazyHubKeys(store, configFor(dir, { masterKeyFile: wrong }), { env: {} })(), /wrong master key/);
  // No configured key at all: the local default is not created for a store that has sealed keys.
  const local = path.join(dir, "relay-master.key");
  await assert.rejects(startHubKeys(store, configFor(dir), { log: silent, env: {} }), new RegExp(`no master key: the store holds 1 hub signing key\\(s\\) sealed with master key ${started.vault.keyId}`));
  await assert.rejects(stat(local), /ENOENT/);
});

test("a sealed row copied to another hub does not open there: refused loudly, never taken as an unknown hub", async (t) => {
  const dir = await tempDir(t);
  const store = await sqlite(t, dir);
  const config = configFor(dir);
  const { vault } = await startHubKeys(store, config, { log: silent, env: {} });
  const reg = registryOn(store, vault);
  const a = await reg.provisionDirect("hub-a");
  await reg.provisionDirect("hub-b");
  const rowA = await store.db.selectFrom("hubs").select("key_b64").where("id", "=", "hub-a").executeTakeFirstOrThrow();
  await store.db.updateTable("hubs").set({ key_b64: rowA.key_b64 }).where("id", "=", "hub-b").execute();

  const fresh = registryOn(store, vault);
  await assert.rejects(fresh.signingKey("hub-b"), (e: unknown) => e instanceof HubKeyError && e.hub === "hub-b" && /another hub/.test(e.message));
  assert.equal(await fresh.usableSigningKey("hub-b"), null, "planned stops: treated as no key, not retried forever");
  assert.deepEqual(await fresh.signingKey("hub-a"), Buffer.from(a.key, "base64"), "the original still opens");
  // At start the copied row is reported, and the relay still starts for every other hub.
  const restarted = await startHubKeys(store, config, { log: silent, env: {} });
  assert.deepEqual(restarted.damaged, ["hub-b"]);
});

test("a registry without its master key refuses a sealed key, and the CLI path enrols nothing without one", async (t) => {
  const dir = await tempDir(t);
  const store = await sqlite(t, dir);
  const { vault } = await startHubKeys(store, configFor(dir), { log: silent, env: {} });
  await registryOn(store, vault).provisionDirect("hub-1");
  await assert.rejects(registryOn(store).signingKey("hub-1"), /sealed, but this registry has no master key/);

  // A PostgreSQL-like setup (no local file allowed) with no key: `hubs add --direct` fails before any change.
  const cfg = configFor(dir, { localMasterKeyFile: null });
  const cli = new Registry(store, { claimCodeTtlS: 3600, heartbeatS: 60, mqttUrl: "mqtt://relay:1883", keys: lazyHubKeys(store, cfg, { env: {} }) });
  await assert.rejects(cli.provisionDirect("hub-2"), /no master key/);
  assert.equal(await store.getHub("hub-2"), undefined, "no hub row was created");
});

test("the relay unit loads the credential under the name the relay looks for by default", async () => {
  const unit = await readFile(path.resolve(import.meta.dirname, "../../systemd/anxin-relay.service"), "utf8");
  const name = /^LoadCredential(?:Encrypted)?=([^:\s]+):/m.exec(unit)?.[1];
  assert.equal(name, relayConfigSchema.parse({ relay: { dataDir: "/x" } }).secrets.masterKeyCredential);
});
