// What the duty console's tests share: the page built once per test process, a real relay serving it,
// named accounts, hubs provisioned straight into the registry with Wang Lan's care plan (and, when asked, a
// household), and signed alarms fed through the relay's real ingest.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { ulid } from "ulid";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import { buildConsole } from "../../relay/console/build.js";
import type { Role } from "../../relay/src/auth/tokens.js";
import { parseCarePlan, setCarePlan } from "../../relay/src/careplans/store.js";
import { createAccount } from "../../relay/src/console/auth/accounts.js";
import { consoleAuthDb } from "../../relay/src/console/auth/tables.js";
import type { RunningRelay } from "../../relay/src/daemon/run.js";
import { createHousehold } from "../../relay/src/households/store.js";
import { listIncidents } from "../../relay/src/incidents/repo.js";
import { carePlan } from "./care-plan-fixture.js";
import { startRelayForTest, type RelayRig, type RelayRigOptions } from "./relay-rig.js";
import { waitFor } from "./wait.js";

export const CONSOLE_PASSWORD = "correct horse battery";

let built: Promise<string> | undefined;

/** The console page, built once per test process into a temp dir (removed at exit). */
export function builtConsole(): Promise<string> {
  built ??= (async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-console-build-"));
    process.once("exit", () => void rm(dir, { recursive: true, force: true }));
    await buildConsole({ outDir: dir });
    return dir;
  })();
  return built;
}

// Calls are never answered unless a test says so: the call tree stands at its first step.
export const SILENT_TELEPHONY = { kind: "console", otherwise: { status: "no_answer", afterMs: 600_000 } };

/** A real relay serving the built console (SQLite, embedded broker), with a console telephony that never answers. */
export async function startConsoleRelay(opts: RelayRigOptions = {}): Promise<RelayRig> {
  return startRelayForTest({ ...opts, consoleDir: await builtConsole(), config: { telephony: SILENT_TELEPHONY, ...opts.config } });
}

/** A console account with the shared test password. */
export async function addAccount(relay: RunningRelay, username: string, displayName: string, role: Role, streets?: string[]): Promise<void> {
  await createAccount(consoleAuthDb(relay.db), { username, displayName, role, password: CONSOLE_PASSWORD, ...(streets ? { streets } : {}) }, { actor: "test", purpose: "test setup", at: Date.now() });
}

export interface TestHub {
  hub: string;
  key: Buffer;
}

/** A hub straight into the registry, with Wang Lan's care plan and, when given, her household. */
export async function provisionHub(relay: RunningRelay, hub: string, household?: { address: string; street: string }): Promise<TestHub> {
  const key = Buffer.from((await relay.registry.provisionDirect(hub)).key, "base64");
  const at = Date.now();
  await setCarePlan(relay.db, hub, parseCarePlan(carePlan(), "test"), { actor: "test", purpose: "setup", at });
  if (household) await createHousehold(relay.db, { hub, elder: { name: "Wang Lan" }, address: household.address, street: household.street, community: "Community 1" }, { actor: "test", purpose: "setup", at, owner: null });
  return { hub, key };
}

let seq = 0;

/** A signed event through the relay's real ingest; resolves once committed. */
export async function sendEvent(relay: RunningRelay, h: TestHub, fields: Pick<Envelope, "kind" | "type" | "severity"> & Partial<Envelope>): Promise<void> {
  const env = signEnvelope({ v: 1, hub: h.hub, boot: 1, seq: ++seq, id: ulid(), ts: Date.now(), device: `${fields.type}-1`, ...fields }, h.key);
  relay.ingest.handle(h.hub, Buffer.from(JSON.stringify(env)));
  await relay.ingest.flush();
}

/** A signed alarm through the relay's real ingest; resolves once committed. */
export const alarm = (relay: RunningRelay, h: TestHub, type: string, severity: Envelope["severity"]) => sendEvent(relay, h, { kind: "alarm", type, severity });

/** The hub's newest incident, once there is one. */
export const incidentOf = async (relay: RunningRelay, hub: string) => waitFor(`an incident at ${hub}`, async () => (await listIncidents(relay.db, { hub }))[0]);

/** Signs in on the console page (Chinese labels, the default language). */
export async function signInPage(page: Page, url: string, username: string): Promise<void> {
  await page.goto(url);
  await page.getByRole("heading", { name: "值班人员登录" }).waitFor();
  await page.getByLabel("用户名").fill(username);
  await page.getByLabel("密码").fill(CONSOLE_PASSWORD);
  await page.getByRole("button", { name: "登录" }).click();
}
