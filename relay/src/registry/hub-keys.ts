// Brings the store's hub signing keys and the master key together at start: finds the master key, proves it
// is the one the stored keys were sealed with (a wrong key stops the start, rather than every hub's events
// being refused as forged), and seals keys still stored in clear by an earlier version.
import type { Logger } from "pino";
import type { RelayConfig } from "../config/schema.js";
import type { Store } from "../store/store.js";
import { HubKeyError, isSealed, KeyVault, parseClearKey, sealedKeyId } from "./key-vault.js";
import { describeSearch, findMasterKey, MasterKeyError, type MasterKey } from "./master-key.js";

export interface HubKeysStart {
  vault: KeyVault;
  master: MasterKey;
  /** Clear keys sealed by this start. */
  sealedNow: number;
  /** Hubs whose stored key does not open or is not a key (their events are refused until they re-enrol). */
  damaged: string[];
}

interface KeyRow {
  id: string;
  key_b64: string;
}

const LOST =
  "If that master key is lost, the stored keys cannot be recovered: remove them and re-enrol every hub (docs/operations.md, \"Master key\")";

/** Finds the master key and checks it against the keys already sealed in the store. */
async function resolve(store: Store, config: RelayConfig, o: { env?: NodeJS.ProcessEnv; generate: boolean }): Promise<{ vault: KeyVault; master: MasterKey; rows: KeyRow[] }> {
  const rows = (await store.db.selectFrom("hubs").select(["id", "key_b64"]).where("key_b64", "is not", null).orderBy("id").execute()) as KeyRow[];
  const sealed = rows.filter((r) => isSealed(r.key_b64));
  const newer = sealed.find((r) => !r.key_b64.startsWith("v1:"));
  if (newer) throw new MasterKeyError(`hub ${newer.id}'s signing key is sealed as ${newer.key_b64.split(":")[0]}, which this relay version cannot open: a newer relay wrote it; run that version`);
  const kids = [...new Set(sealed.map((r) => sealedKeyId(r.key_b64)).filter((k): k is string => k !== undefined))];
  const search = { env: o.env, sqlite: config.store.kind === "sqlite" };
  // Never make up a key for a store whose keys are sealed already: it could only be the wrong one.
  const master = await findMasterKey(config.secrets, { ...search, generate: o.generate && sealed.length === 0 });
  if (!master) {
    throw new MasterKeyError(
      sealed.length > 0
        ? `no master key: the store holds ${sealed.length} hub signing key(s) sealed with master key ${kids.join(", ")}, and the relay cannot open them without it; ${describeSearch(config.secrets, search)}. ${LOST}`
        : `no master key to seal hub signing keys with; ${describeSearch(config.secrets, search)}`,
    );
  }
  const vault = new KeyVault(master.key);
  const foreign = kids.filter((k) => k !== vault.keyId);
  if (foreign.length > 0) {
    throw new MasterKeyError(
      `wrong master key: the hub signing keys in the store were sealed with master key ${foreign.join(", ")}, but ${master.file} holds master key ${vault.keyId}. ` +
        `Start the relay with the master key it used before (relay stores and their master keys are never mixed). ${LOST}`,
    );
  }
  return { vault, master, rows };
}

/**
 * The daemon's start: the vault to seal and open hub keys with, after sealing any clear rows in place. A
 * master key that does not match the sealed rows throws (MasterKeyError); single rows that do not open are
 * reported in `damaged` and logged, not fatal.
 */
export async function startHubKeys(store: Store, config: RelayConfig, o: { log: Logger; env?: NodeJS.ProcessEnv }): Promise<HubKeysStart> {
  const { vault, master, rows } = await resolve(store, config, { env: o.env, generate: true });
  const where = { masterKey: vault.keyId, file: master.file };
  if (master.generated) o.log.warn(where, "created a new master key for hub signing keys");
  if (master.origin === "local")
    o.log.warn(
      where,
      "the master key is a local file: a backup of the store alone no longer reveals hub signing keys, but keep this file out of that backup, and in production give the key through systemd credentials (docs/operations.md, \"Master key\")",
    );
  const damaged: string[] = [];
  let sealedNow = 0;
  for (const r of rows) {
    if (isSealed(r.key_b64)) {
      try {
        // The key id matched (resolve), so a row that does not open is that row's problem, not the key's.
        vault.open(r.id, r.key_b64);
      } catch (e) {
        if (!(e instanceof HubKeyError)) throw e;
        damaged.push(r.id);
      }
      continue;
    }
    const clear = parseClearKey(r.key_b64);
    if (!clear) {
      damaged.push(r.id);
      continue;
    }
    // Conditional on the clear text: another instance sealing the same row at the same time wins once.
    const res = await store.db.updateTable("hubs").set({ key_b64: vault.seal(r.id, clear) }).where("id", "=", r.id).where("key_b64", "=", r.key_b64).executeTakeFirst();
    sealedNow += Number(res.numUpdatedRows);
  }
  if (sealedNow > 0) o.log.warn({ ...where, sealed: sealedNow }, "sealed hub signing keys that were stored in clear");
  if (damaged.length > 0)
    o.log.error(
      { ...where, count: damaged.length, hubs: damaged.slice(0, 20) },
      "stored signing keys that do not open (copied from another hub, or damaged): these hubs' events are refused until they are re-enrolled (anxin-relay hubs rotate <hub>)",
    );
  o.log.info({ ...where, origin: master.origin, hubKeys: rows.length - damaged.length }, "hub signing keys ready");
  return { vault, master, sealedNow, damaged };
}

/**
 * For the operator's commands: the vault, found when first needed (most commands never touch a key). Found
 * as the daemon finds it (so `hubs add --direct` works on a fresh SQLite install before the daemon first
 * ran), but rows are never rewritten here, and a key that does not match the store is refused: a command
 * cannot seal one hub's key under a master key the daemon does not have.
 */
export function lazyHubKeys(store: Store, config: RelayConfig, o: { env?: NodeJS.ProcessEnv } = {}): () => Promise<KeyVault> {
  let found: Promise<KeyVault> | undefined;
  return () => (found ??= resolve(store, config, { env: o.env, generate: true }).then((r) => r.vault));
}
