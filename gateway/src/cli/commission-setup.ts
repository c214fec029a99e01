// `anxin-hub commission --kit <file>`: before the steps, the planned devices the configuration lacks are found
// by the daemon (set-up from the plan), written into hub.yaml as new entries (the installer's own lines kept,
// a dated backup beside it), the new file checked exactly as the daemon will load it, and the daemon reloaded.
// A standard home needs no hand-edited YAML; anything not found is listed and blocks the commissioning later.
import { copyFile, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import type { RelayPlan } from "../commission/plan.js";
import type { SetupProgress, SetupResult } from "../commission/setup.js";
import { KINDS } from "../commission/texts.js";
import { readKitFile } from "../commission/kit.js";
import { addEntries, ConfigEditError } from "../config/edit.js";
import { ConfigError } from "../config/loader.js";
import { callDaemon, streamDaemon } from "../control/client.js";
import { loadAndCheck } from "../daemon/run.js";

type Fail = (message: string, code?: number) => never;

export interface SetupOpts {
  sock: string;
  plan: Record<string, unknown>;
  kitFile: string;
  pairSeconds: number;
  installer: string;
  household?: string;
  out: NodeJS.WritableStream & { isTTY?: boolean };
}

/** How long the daemon may take to come back after a reload (Zigbee's coordinator start is the long part). */
const RELOAD_WAIT_MS = 90_000;

export async function setUpFromPlan(o: SetupOpts, fail: Fail): Promise<SetupResult> {
  const kit = await readKitFile(o.kitFile).catch((e: Error) => fail(e instanceof ConfigError ? e.message.replace("invalid configuration", `kit ${o.kitFile}`) : e.message, 2));
  const tty = o.out.isTTY === true;
  const show = (p: SetupProgress) => {
    const line = `${p.text.zh} / ${p.text.en}${p.secondsLeft !== undefined ? ` — ${p.secondsLeft}s` : ""}`;
    if (p.secondsLeft === undefined) o.out.write(`${tty ? "\r\x1b[2K" : ""}${line}\n`);
    else if (tty) o.out.write(`\r\x1b[2K${line}`);
  };
  const r = await streamDaemon(o.sock, { cmd: "commission_setup", plan: o.plan, kit, pairSeconds: o.pairSeconds }, (p) => show(p as SetupProgress), (o.pairSeconds + 60) * 1000).catch((e: Error) => fail(e.message));
  if (!r.ok) fail(`set-up from the plan: ${r.error}${r.details?.length ? `:\n  - ${r.details.join("\n  - ")}` : ""}`);
  const res = r.result as SetupResult & { configFile: string | null };
  if (tty) o.out.write("\r\x1b[2K");
  for (const c of res.configured) o.out.write(`= ${c.slot}: already configured as ${c.id}\n`);
  for (const p of res.placements) o.out.write(`+ ${KINDS[p.kind].name.zh} / ${KINDS[p.kind].name.en} @ ${p.room}: ${p.id} (${p.address})\n`);
  for (const u of res.unplaced) o.out.write(`✘ ${KINDS[u.kind].name.zh} / ${KINDS[u.kind].name.en} @ ${u.room}: ${u.reason}\n`);
  if (res.placements.length === 0) return res;
  if (!res.configFile) fail("the daemon did not say which configuration file it runs from; add the devices above to it by hand");

  const plan = o.plan as Partial<RelayPlan>;
  const note = `added by anxin-hub commission for ${o.household ? `household ${o.household}, ` : ""}plan v${plan.version ?? "?"}, installer ${o.installer}, ${new Date().toISOString()}`;
  await writeConfig(res.configFile, (text) => addEntries(text, res.placements.map((p, i) => ({ section: p.section, entry: p.entry, comment: i === 0 ? note : undefined }))), fail);
  o.out.write(`configuration written: ${res.configFile} (${res.placements.length} devices added; the previous file kept as a .bak beside it)\n`);
  await reloadAndWait(o.sock, o.installer, fail);
  o.out.write("daemon reloaded with the new devices / 已按新配置重新加载\n");
  return res;
}

/** Edits the file through a checked copy: the new text must load as the daemon will load it before it replaces the old. */
async function writeConfig(file: string, edit: (text: string) => string, fail: Fail): Promise<void> {
  const old = await readFile(file, "utf8").catch((e: Error) => fail(`cannot read ${file}: ${e.message}`));
  let text: string;
  try {
    text = edit(old);
  } catch (e) {
    return fail(`${file}: ${(e as Error).message}`, e instanceof ConfigEditError ? 2 : 1);
  }
  const mode = (await stat(file)).mode & 0o777;
  const next = `${file}.new`;
  await writeFile(next, text, { mode }).catch((e: Error) => fail(`cannot write ${next}: ${e.message} (run as the user who may change the hub's configuration, e.g. with sudo)`));
  try {
    await loadAndCheck(next);
  } catch (e) {
    await rm(next, { force: true });
    fail(`the configuration with the new devices would not load, so ${file} was left as it was:\n${(e as Error).message}`, 2);
  }
  await copyFile(file, `${file}.${new Date().toISOString().replace(/[:.]/g, "-")}.bak`);
  await rename(next, file);
}

async function reloadAndWait(sock: string, by: string, fail: Fail): Promise<void> {
  const before = await callDaemon(sock, { cmd: "status" }).catch((e: Error) => fail(e.message));
  const boot = before.ok ? (before.result as { boot?: unknown }).boot : undefined;
  const r = await callDaemon(sock, { cmd: "reload", by }).catch((e: Error) => fail(e.message));
  if (!r.ok) fail(`the configuration was written but the daemon did not reload: ${r.error}${r.details?.length ? `:\n  - ${r.details.join("\n  - ")}` : ""}\nrun \`anxin-hub reload --by <name>\` when it can`);
  const until = Date.now() + RELOAD_WAIT_MS;
  while (Date.now() < until) {
    await new Promise((res) => setTimeout(res, 300));
    const s = await callDaemon(sock, { cmd: "status" }, 3000).catch(() => null);
    if (s?.ok && (s.result as { boot?: unknown }).boot !== boot) return;
  }
  fail(`the daemon did not come back within ${RELOAD_WAIT_MS / 1000} s after the reload: see its log (journalctl -u anxin-hub)`);
}
