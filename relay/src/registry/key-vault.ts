// Hub signing keys at rest: sealed with AES-256-GCM under a key derived (HKDF) from the relay's master key,
// bound to the hub they belong to. A copy of the database alone (a backup, a dump) then gives nobody the
// means to sign events as a hub; the master key lives elsewhere (systemd credentials, master-key.ts).
//
// Stored text: `v1:<key id>:<nonce>:<ciphertext and tag>` (base64 parts). The version says how to open it,
// so the scheme can change later; the key id names the master key that sealed it, so a relay started
// with another master key says so plainly instead of failing every hub's signature.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

export class HubKeyError extends Error {
  override readonly name = "HubKeyError";
  constructor(
    readonly hub: string,
    message: string,
  ) {
    super(message);
  }
}

const VERSION = "v1";
const SALT = Buffer.from("anxin-relay master key");
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const SEALED = /^v1:([A-Za-z0-9_-]{8}):([A-Za-z0-9+/]{16}):([A-Za-z0-9+/]+={0,2})$/;
/** Legacy rows: the key in clear, standard base64 (what enrolment wrote before sealing). */
const CLEAR = /^[A-Za-z0-9+/]+={0,2}$/;

/** A stored value written by some version of the sealing (`v<n>:`), as opposed to a legacy clear key. */
export function isSealed(stored: string): boolean {
  return /^v\d+:/.test(stored);
}

/** The master key id a sealed value names, or undefined when it is not a v1 sealed value. */
export function sealedKeyId(stored: string): string | undefined {
  return SEALED.exec(stored)?.[1];
}

/** A legacy clear key, or null when the text is not one (damaged, or sealed). */
export function parseClearKey(stored: string): Buffer | null {
  if (!CLEAR.test(stored)) return null;
  const key = Buffer.from(stored, "base64");
  return key.length >= 16 && key.toString("base64") === stored ? key : null;
}

export class KeyVault {
  /** Names the master key (8 characters, derived one way from it): safe to log and to store. */
  readonly keyId: string;
  private readonly aesKey: Buffer;

  constructor(master: Buffer) {
    if (master.length !== 32) throw new Error(`the master key must be 32 bytes (got ${master.length})`);
    // Separate derivations: the id reveals nothing about the sealing key.
    this.aesKey = Buffer.from(hkdfSync("sha256", master, SALT, "anxin-relay hub signing keys v1", 32));
    this.keyId = Buffer.from(hkdfSync("sha256", master, SALT, "anxin-relay master key id", 6)).toString("base64url");
  }

  /** The text to store for `hub`'s signing key. */
  seal(hub: string, key: Buffer): string {
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv("aes-256-gcm", this.aesKey, nonce, { authTagLength: TAG_BYTES });
    c.setAAD(this.aad(hub, this.keyId));
    const body = Buffer.concat([c.update(key), c.final(), c.getAuthTag()]);
    return `${VERSION}:${this.keyId}:${nonce.toString("base64")}:${body.toString("base64")}`;
  }

  /**
   * The signing key sealed in `stored` for `hub`. Throws HubKeyError when it does not open: sealed by
   * another master key, for another hub (a row copied across), damaged, or of a version this relay does not know.
   */
  open(hub: string, stored: string): Buffer {
    const m = SEALED.exec(stored);
    if (!m) {
      const version = /^(v\d+):/.exec(stored)?.[1];
      throw new HubKeyError(
        hub,
        version && version !== VERSION
          ? `the stored signing key of hub ${hub} is sealed as ${version}, which this relay version cannot open (a newer relay wrote it?)`
          : `the stored signing key of hub ${hub} is not in the sealed format (damaged?); re-enrol the hub`,
      );
    }
    const [, kid, nonceB64, bodyB64] = m as unknown as [string, string, string, string];
    if (kid !== this.keyId)
      throw new HubKeyError(hub, `the stored signing key of hub ${hub} was sealed with master key ${kid}, but this relay has master key ${this.keyId}`);
    const body = Buffer.from(bodyB64, "base64");
    if (body.length <= TAG_BYTES) throw new HubKeyError(hub, `the stored signing key of hub ${hub} is truncated; re-enrol the hub`);
    try {
      const d = createDecipheriv("aes-256-gcm", this.aesKey, Buffer.from(nonceB64, "base64"), { authTagLength: TAG_BYTES });
      d.setAAD(this.aad(hub, kid));
      d.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([d.update(body.subarray(0, body.length - TAG_BYTES)), d.final()]);
    } catch {
      throw new HubKeyError(hub, `the stored signing key of hub ${hub} does not open: it belongs to another hub (a copied row) or is damaged; re-enrol the hub`);
    }
  }

  // The hub id is authenticated with the key: a row copied to another hub does not open there.
  private aad(hub: string, kid: string): Buffer {
    return Buffer.from(`anxin-relay hub key ${VERSION}\0${kid}\0${hub}`, "utf8");
  }
}
