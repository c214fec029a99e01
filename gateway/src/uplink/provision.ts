// Enrolment: exchanges a one-time claim code at the relay for this hub's MQTT credentials and signing
// key, and stores them in the secrets file. Never prints or logs the password or the key.
import { chmod, mkdir, stat } from "node:fs/promises";
import { enrolRequestSchema, enrolResponseSchema } from "../../../protocol/messages.js";
import { displayUrl, isLoopback, PLAINTEXT_PROTOCOLS } from "./settings.js";
import { writeSecrets } from "./secrets.js";

export { isLoopback } from "./settings.js";

export class ProvisionError extends Error {
  override name = "ProvisionError";
  /** 2: bad input on our side; 1: the relay refused or could not be reached. */
  constructor(message: string, readonly exitCode: 1 | 2 = 1) {
    super(message);
  }
}

export interface ProvisionOptions {
  relay: string;
  hub: string;
  code: string;
  secretsFile: string;
  /** Created 0700 when missing. */
  dataDir: string;
  timeoutMs?: number;
  /**
   * Allow plain http to a relay that is not on this machine (the claim code and the credentials then cross
   * the network unencrypted). Without it such a URL is refused before anything is sent; http to a loopback
   * address is allowed with a warning.
   */
  insecure?: boolean;
  /** Where the plain-http warning goes, before anything is sent; default stderr. */
  warn?: (message: string) => void;
}

export interface ProvisionResult {
  hub: string;
  relay: string;
  /** Broker URL without credentials. */
  mqttUrl: string;
  username: string;
  heartbeatS: number;
  secretsFile: string;
  replaced: boolean;
}

export async function provision(o: ProvisionOptions): Promise<ProvisionResult> {
  let relay: URL;
  try {
    relay = new URL(o.relay);
  } catch {
    throw new ProvisionError(`--relay ${JSON.stringify(o.relay)} is not a URL (expected http(s)://host[:port])`, 2);
  }
  if (relay.protocol !== "https:" && relay.protocol !== "http:") throw new ProvisionError(`--relay must be an http:// or https:// URL, not ${relay.protocol}`, 2);
  const request = enrolRequestSchema.safeParse({ hub: o.hub, code: o.code });
  if (!request.success) {
    const i = request.error.issues[0];
    throw new ProvisionError(`--${String(i?.path[0] ?? "hub")}: ${i?.message ?? "invalid"}`, 2);
  }
  if (relay.protocol === "http:") {
    // Checked before anything is sent: the claim code goes out in the request, the credentials come back.
    const local = isLoopback(relay.hostname);
    if (!local && !o.insecure) {
      throw new ProvisionError(
        `refusing to send the claim code over plain http to ${displayUrl(relay.href)}: use the relay's https:// URL (or --insecure, if this network is trusted)`,
        2,
      );
    }
    (o.warn ?? ((m: string) => process.stderr.write(`anxin-hub: warning: ${m}\n`)))(
      `the relay is reached over plain http${local ? " (this machine)" : ""}; the claim code and the credentials cross ${local ? "the loopback interface" : "the network"} unencrypted`,
    );
  }
  const endpoint = new URL("v1/enrol", relay.href.endsWith("/") ? relay.href : `${relay.href}/`);

  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(request.data),
      signal: AbortSignal.timeout(o.timeoutMs ?? 15_000),
    });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === "TimeoutError" ? "no answer in time" : (err.cause?.code ?? err.cause?.message ?? err.message);
    throw new ProvisionError(`cannot reach the relay at ${displayUrl(endpoint.href)}: ${why}`);
  }
  const text = await res.text().catch(() => "");
  if (!res.ok) throw new ProvisionError(`the relay refused the enrolment (HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}): ${relayReason(text)}`);

  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ProvisionError(`the relay's answer is not JSON (HTTP ${res.status}, ${res.headers.get("content-type") ?? "no content type"}); nothing was written`);
  }
  const parsed = enrolResponseSchema.safeParse(body);
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`).join("; ");
    throw new ProvisionError(`the relay's answer is not a valid enrolment (${what}); nothing was written`);
  }
  const record = parsed.data;
  if (record.hub !== o.hub) throw new ProvisionError(`the relay enrolled hub '${record.hub}', not '${o.hub}'; nothing was written`);

  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  await chmod(o.dataDir, 0o700);
  const replaced = await stat(o.secretsFile).then(() => true, () => false);
  await writeSecrets(o.secretsFile, record);
  warnPlaintextBroker(record.mqtt.url, o.warn);
  return {
    hub: record.hub,
    relay: displayUrl(relay.href),
    mqttUrl: displayUrl(record.mqtt.url),
    username: record.mqtt.username,
    heartbeatS: record.heartbeatS,
    secretsFile: o.secretsFile,
    replaced,
  };
}

/** The relay gave a broker URL without TLS on another machine: the uplink will refuse it unless told (settings.ts). */
function warnPlaintextBroker(url: string, warn?: (message: string) => void): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return;
  }
  if (!(PLAINTEXT_PROTOCOLS as readonly string[]).includes(u.protocol) || isLoopback(u.hostname)) return;
  (warn ?? ((m: string) => process.stderr.write(`anxin-hub: warning: ${m}\n`)))(
    `the relay's broker ${displayUrl(url)} is not encrypted: the uplink will not connect to it unless uplink.allowPlaintext: true is set (or uplink.url names the relay's mqtts:// URL)`,
  );
}

/** The relay's `{error, message}` when it sent one, else the start of its body. */
function relayReason(text: string): string {
  try {
    const b = JSON.parse(text) as { error?: unknown; message?: unknown };
    const parts = [b.error, b.message].filter((x): x is string => typeof x === "string" && x.length > 0);
    if (parts.length) return parts.join(": ").slice(0, 500);
  } catch {
    // not JSON
  }
  const t = text.trim().replace(/\s+/g, " ");
  return t ? t.slice(0, 200) : "(no details)";
}
