// Hub identities: enrolment with a one-time claim code, MQTT credentials, signing keys, revocation.
import { isHubId } from "../mqtt/topics.js";
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { EnrolResponse } from "../../../protocol/messages.js";
import type { HubAuthRow, Store } from "../store/store.js";
import { BatchedReads } from "./batched-reads.js";
import { HubKeyError, isSealed, parseClearKey, type KeyVault } from "./key-vault.js";
import { checkPassword, hashClaimCode, hashPassword, newClaimCode, newPassword, sameBytes, sha256 } from "./secrets.js";

export interface HubRecord {
  id: string;
  status: "pending" | "active" | "revoked";
  createdAt: number;
  lastSeenAt: number | null;
  online: boolean;
  lastBoot: number | null;
}

export class EnrolError extends Error {
  constructor(readonly code: "unknown_hub" | "bad_code" | "expired" | "used" | "revoked", message: string) {
    super(message);
    this.name = "EnrolError";
  }
}

/**
 * createClaim refused: not a valid hub id; the hub is active/revoked and `rotate` was not asked for (or the
 * caller is an installer, who may never rotate); or an installer asked for what only an admin may do.
 */
export class ClaimError extends Error {
  constructor(readonly code: "bad_hub_id" | "active" | "revoked" | "forbidden", message: string) {
    super(message);
    this.name = "ClaimError";
  }
}

/** What a claim did, for the audit log: a new hub, a new code for a pending one, a rotation, a re-admission. */
export type ClaimAction = "created" | "renewed" | "rotated" | "readmitted";

/** The audit log's action for each (recorded with the actor by the API's claim route and the CLI). */
export const CLAIM_AUDIT_ACTION: Record<ClaimAction, string> = {
  created: "hub.claim", // a new hub registered with its first code
  renewed: "hub.claim_renewed", // a fresh code for a hub that has not enrolled yet
  rotated: "hub.rotate", // a code for an enrolled hub: re-enrolling replaces its credentials and key
  readmitted: "hub.readmit", // a revoked hub admitted again (pending, no credentials)
};

export interface ClaimOptions {
  /** Issue a code for an enrolled hub (new credentials on re-enrolment) or admit a revoked one again. */
  rotate?: boolean;
  /**
   * The caller is an installer, named by its token id. An installer may register a hub the relay does not
   * know yet, which is then theirs, and ask again for a code for a hub of theirs that has not enrolled; it
   * may never rotate, re-admit, or touch a hub an admin or another installer registered. Without it the
   * caller is an admin (the API's admin role, the CLI on the relay host).
   */
  installer?: string;
}


/**
 * Successful logins are remembered for this long (per process), so reconnects skip the store and the hash. A revocation or
 * re-enrolment made in this process clears the entry at once; another relay instance sharing the store
 * still accepts the old password until its entry expires, i.e. for at most this long.
 */
export const CREDENTIAL_CACHE_MS = 60_000;
/** Signing keys (and "no key") are remembered this long: a revocation elsewhere takes effect within it. */
export const SIGNING_KEY_CACHE_MS = 5_000;
const CACHE_SWEEP_SIZE = 20_000;

interface Cached<T> {
  value: T;
  expires: number;
}

export class Registry {
  private readonly now: () => number;
  private readonly creds = new Map<string, Cached<Buffer>>(); // hub → sha256(password) of the last good login
  private readonly credsInFlight = new Map<string, Promise<string | null>>();
  private readonly keys = new Map<string, Cached<Buffer | null>>();
  private readonly keysInFlight = new Map<string, Promise<Buffer | null>>();
  /** Logins' and signing keys' reads of hub rows, many to a query (batched-reads.ts). */
  private readonly authReads: BatchedReads<HubAuthRow>;
  // Bumped on every local change to a hub, so a lookup that started before it cannot cache a stale answer.
  private readonly epochs = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly opts: {
      claimCodeTtlS: number;
      heartbeatS: number;
      mqttUrl: string;
      now?: () => number;
      log?: Logger;
      /**
       * Seals signing keys at rest (key-vault.ts), found when first needed. The daemon and the CLI always
       * give one; without it keys are stored in clear (unit tests and benchmarks only).
       */
      keys?: () => Promise<KeyVault>;
    },
  ) {
    this.now = opts.now ?? Date.now;
    this.authReads = new BatchedReads(async (ids) => new Map((await store.getHubAuths(ids)).map((r) => [r.id, r])));
  }

  /**
   * Adds a hub (or issues a fresh code for a pending one); returns the one-time claim code. Refused for an
   * active or revoked hub unless `rotate`; for an installer, see ClaimOptions.installer.
   */
  async createClaim(hub: string, opts: ClaimOptions = {}): Promise<{ code: string; expiresAt: number; action: ClaimAction }> {
    if (!isHubId(hub)) throw new ClaimError("bad_hub_id", `not a valid hub id (or one reserved for the relay): ${JSON.stringify(hub.slice(0, 80))}`);
    const installer = opts.installer;
    // A rotation hands out the means to become the hub (a revoked one included): never an installer's.
    if (installer !== undefined && opts.rotate) throw new ClaimError("forbidden", "only an admin may rotate a hub's credentials or admit a revoked hub again");
    const code = newClaimCode();
    const salt = randomBytes(16);
    const expiresAt = this.now() + this.opts.claimCodeTtlS * 1000;
    const claim = { claimHash: hashClaimCode(code, salt).toString("base64"), claimSalt: salt.toString("base64"), claimExpiresAt: expiresAt };
    // Conditional writes on the status (and owner) read just before; a concurrent change makes one of them
    // miss and we look again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await this.store.getHub(hub);
      if (!row) {
        if (await this.store.insertPendingHub(hub, claim, this.now(), installer ?? null)) return { code, expiresAt, action: "created" };
        continue;
      }
      if (row.status === "active" && !opts.rotate) {
        throw new ClaimError("active", installer !== undefined ? `hub ${hub} is enrolled; only an admin may rotate it` : `hub ${hub} is enrolled; ask for a rotation to issue a new code`);
      }
      if (row.status === "revoked" && !opts.rotate) {
        throw new ClaimError(
          "revoked",
          installer !== undefined ? `hub ${hub} is revoked; only an admin may admit it again` : `hub ${hub} is revoked; ask for a rotation to admit it again with new credentials`,
        );
      }
      if (installer !== undefined && row.claimOwner !== installer) {
        throw new ClaimError("forbidden", `hub ${hub} was registered by an admin or another installer; ask an admin for its claim code`);
      }
      // Rotating an active hub leaves its current credentials working until the new code is used, so
      // the hub stays on line while the installer re-enrols it.
      const readmit = row.status === "revoked";
      if (await this.store.setClaim(hub, row.status, claim, { readmit, ...(installer !== undefined ? { owner: installer } : {}) })) {
        this.invalidate(hub);
        return { code, expiresAt, action: readmit ? "readmitted" : row.status === "active" ? "rotated" : "renewed" };
      }
    }
    throw new Error(`hub ${hub} changed concurrently; try again`);
  }

  /** Exchanges a claim code for credentials and the signing key; the code works once. */
  async enrol(hub: string, code: string): Promise<EnrolResponse> {
    const row = await this.store.getHubAuth(hub);
    if (!row) throw new EnrolError("unknown_hub", `unknown hub ${hub}`);
    const check = (): void => {
      if (row.status === "revoked") throw new EnrolError("revoked", `hub ${hub} is revoked`);
      // The code is checked before anything about it is revealed (used, expired).
      const ok =
        row.claimHash !== null &&
        row.claimSalt !== null &&
        sameBytes(hashClaimCode(code, Buffer.from(row.claimSalt, "base64")), Buffer.from(row.claimHash, "base64"));
      if (!ok) throw new EnrolError("bad_code", `wrong claim code for hub ${hub}`);
      if (row.claimUsedAt !== null) throw new EnrolError("used", `the claim code for hub ${hub} was already used`);
      if (row.claimExpiresAt === null || row.claimExpiresAt <= this.now()) throw new EnrolError("expired", `the claim code for hub ${hub} has expired`);
    };
    check();

    const password = newPassword();
    const salt = randomBytes(16);
    // The relay verifies every signature with this key, so it cannot be hashed: it is sealed under the
    // master key instead (key-vault.ts), which never sits in the store. Sealed before the claim is spent,
    // so a relay without its master key refuses the enrolment and the code still works afterwards.
    const key = randomBytes(32);
    const creds = { passwordHash: hashPassword(password, salt), passwordSalt: salt.toString("base64"), keyB64: await this.sealKey(hub, key) };
    const now = this.now();
    if (!(await this.store.activateHub(hub, row.claimHash as string, creds, now))) {
      // Lost a race (the code was used, rotated or revoked meanwhile): report what it is now.
      const again = await this.store.getHubAuth(hub);
      if (!again) throw new EnrolError("unknown_hub", `unknown hub ${hub}`);
      Object.assign(row, again);
      check();
      throw new EnrolError("used", `the claim code for hub ${hub} was already used`);
    }
    this.invalidate(hub);
    return {
      hub,
      mqtt: { url: this.opts.mqttUrl, username: hub, password },
      key: key.toString("base64"),
      heartbeatS: this.opts.heartbeatS,
    };
  }

  async revoke(hub: string): Promise<boolean> {
    const done = await this.store.revokeHub(hub, this.now());
    this.invalidate(hub);
    return done;
  }

  async list(): Promise<HubRecord[]> {
    const rows = await this.store.listHubs();
    return rows.map((r) => ({ id: r.id, status: r.status, createdAt: r.createdAt, lastSeenAt: r.lastSeenAt, online: r.online, lastBoot: r.lastBoot }));
  }

  /**
   * MQTT login of a hub: username is the hub id. Resolves the hub id, or null (also when the store cannot
   * be reached: the error is logged and the hub simply retries its connection).
   */
  async verifyCredentials(username: string, password: string): Promise<string | null> {
    if (!isHubId(username) || password.length === 0 || password.length > 256) return null;
    const digest = sha256(password);
    const hit = this.creds.get(username);
    if (hit && hit.expires > this.now() && sameBytes(hit.value, digest)) return username;

    // A hub reconnecting in a loop must not start one store lookup and hash check per attempt.
    const flightKey = `${username}\n${digest.toString("hex")}`;
    const pending = this.credsInFlight.get(flightKey);
    if (pending) return pending;
    const epoch = this.epoch(username);
    const run = (async (): Promise<string | null> => {
      try {
        const row = await this.authReads.get(username);
        if (!row || row.status !== "active" || !row.passwordHash || !row.passwordSalt) return null;
        if (!(await checkPassword(password, Buffer.from(row.passwordSalt, "base64"), row.passwordHash))) return null;
        if (this.epoch(username) === epoch) this.remember(this.creds, username, digest, CREDENTIAL_CACHE_MS);
        return username;
      } catch (err) {
        this.opts.log?.error({ err, hub: username }, "credential check failed (store unavailable?)");
        return null;
      } finally {
        this.credsInFlight.delete(flightKey);
      }
    })();
    this.credsInFlight.set(flightKey, run);
    return run;
  }

  /**
   * The hub's HMAC key, or null when unknown or revoked (cached briefly; revocation takes effect within
   * seconds). Rejects when the store cannot be reached, and with a HubKeyError when the stored key does not
   * open (copied from another hub, damaged): never mistaken for an unknown hub.
   */
  async signingKey(hub: string): Promise<Buffer | null> {
    const hit = this.cachedSigningKey(hub);
    if (hit !== undefined) return hit;
    // A batch of events from one hub asks at once: one query answers all of them.
    const pending = this.keysInFlight.get(hub);
    if (pending) return pending;
    const epoch = this.epoch(hub);
    const run = (async (): Promise<Buffer | null> => {
      try {
        const row = await this.authReads.get(hub);
        const key = row && row.status === "active" && row.keyB64 ? await this.openKey(hub, row.keyB64) : null;
        if (this.epoch(hub) === epoch) this.remember(this.keys, hub, key, SIGNING_KEY_CACHE_MS);
        return key;
      } finally {
        this.keysInFlight.delete(hub);
      }
    })();
    this.keysInFlight.set(hub, run);
    return run;
  }

  /**
   * As signingKey, but a stored key that does not open counts as none (it is logged): for checks that must
   * not retry forever on one damaged row (signed planned stops). Store failures still reject.
   */
  async usableSigningKey(hub: string): Promise<Buffer | null> {
    try {
      return await this.signingKey(hub);
    } catch (e) {
      if (!(e instanceof HubKeyError)) throw e;
      this.opts.log?.error({ hub, err: e.message }, "hub signing key does not open; treated as none");
      return null;
    }
  }

  /** The signing key when the cache can answer now (null: unknown or revoked), undefined when it cannot. */
  cachedSigningKey(hub: string): Buffer | null | undefined {
    const hit = this.keys.get(hub);
    return hit && hit.expires > this.now() ? hit.value : undefined;
  }

  /** For tests and the external-broker tooling: issue credentials directly, without a claim code. */
  async provisionDirect(hub: string): Promise<EnrolResponse> {
    // No master key, no new claim: fail before anything about the hub changes.
    if (this.opts.keys) await this.opts.keys();
    const { code } = await this.createClaim(hub, { rotate: true });
    return this.enrol(hub, code);
  }

  /** Forgets cached logins and keys (one hub, or all): e.g. after a change made by another instance. */
  invalidate(hub?: string): void {
    if (hub === undefined) {
      for (const h of new Set([...this.creds.keys(), ...this.keys.keys()])) this.invalidate(h);
      return;
    }
    this.epochs.set(hub, this.epoch(hub) + 1);
    this.creds.delete(hub);
    this.keys.delete(hub);
    this.keysInFlight.delete(hub);
    for (const k of this.credsInFlight.keys()) if (k.startsWith(`${hub}\n`)) this.credsInFlight.delete(k);
  }

  private async sealKey(hub: string, key: Buffer): Promise<string> {
    return this.opts.keys ? (await this.opts.keys()).seal(hub, key) : key.toString("base64");
  }

  private async openKey(hub: string, stored: string): Promise<Buffer> {
    if (isSealed(stored)) {
      if (!this.opts.keys) throw new HubKeyError(hub, `the signing key of hub ${hub} is sealed, but this registry has no master key`);
      return (await this.opts.keys()).open(hub, stored);
    }
    // Written in clear by an earlier version (sealed at the daemon's next start). Accepted meanwhile, so a
    // rolling upgrade keeps every hub on line: whoever can write the store can insert events anyway.
    const clear = parseClearKey(stored);
    if (!clear) throw new HubKeyError(hub, `the stored signing key of hub ${hub} is neither sealed nor a key (damaged?); re-enrol the hub`);
    return clear;
  }

  private epoch(hub: string): number {
    return this.epochs.get(hub) ?? 0;
  }

  private remember<T>(cache: Map<string, Cached<T>>, hub: string, value: T, ttl: number): void {
    const now = this.now();
    if (cache.size >= CACHE_SWEEP_SIZE) for (const [k, v] of cache) if (v.expires <= now) cache.delete(k);
    cache.set(hub, { value, expires: now + ttl });
  }
}
