// `anxin-hub commission`: the installer's guided walk through the home. The plan comes from the relay (or a
// file offline); the daemon runs the steps (it alone sees the events and the relay's acks) and streams
// progress, which this command shows live, in Chinese and English, and ends with the report.
import os from "node:os";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { callDaemon, streamDaemon } from "../control/client.js";
import type { CommissioningReport } from "../../../protocol/commissioning.js";
import type { Progress, StepView } from "../commission/session.js";
import { KINDS } from "../commission/texts.js";

export interface CommissionOpts {
  socket?: string;
  config?: string;
  planFile?: string;
  relay?: string;
  token?: string;
  household?: string;
  installer: string;
  waive: string[];
  timeoutPerStep: string;
  json?: boolean;
}

type Fail = (message: string, code?: number) => never;

/** The plan from a file, or from the relay's installer API (the plan only: no names or addresses). */
export async function loadPlan(o: CommissionOpts, fail: Fail): Promise<unknown> {
  if (o.planFile) {
    const text = await readFile(o.planFile, "utf8").catch((e: Error) => fail(`--plan-file ${o.planFile}: ${e.message}`, 2));
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      return fail(`--plan-file ${o.planFile}: not JSON: ${(e as Error).message}`, 2);
    }
  }
  if (!o.relay || !o.token || !o.household) return fail("give --plan-file <json>, or --relay <url> --token <installer token> --household <id>", 2);
  const url = `${o.relay.replace(/\/+$/, "")}/v1/households/${encodeURIComponent(o.household)}/plan`;
  const res = await fetch(url, { headers: { authorization: `Bearer ${o.token}` } }).catch((e: Error) => fail(`cannot reach the relay at ${o.relay}: ${e.message}`));
  const body = await res.text();
  if (!res.ok) fail(`the relay refused the plan of household ${o.household} (HTTP ${res.status}): ${body.slice(0, 300)}`);
  return JSON.parse(body) as unknown;
}

export function parseWaivers(list: string[], fail: Fail): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of list) {
    const eq = w.indexOf("=");
    if (eq <= 0 || eq === w.length - 1) fail(`--waive ${w}: expected <device-or-kind>=<reason>, e.g. camera="no consent given"`, 2);
    out[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return out;
}

const MARK: Record<string, string> = { passed: "✔", waived: "~", failed: "✘", missing: "✘", pending: "·", finding: "…", waiting: "▶", proving: "⇡" };

function stepLine(s: StepView, secondsLeft?: number): string {
  const name = KINDS[s.kind];
  const who = s.device ?? "(none)";
  const head = `${MARK[s.state] ?? "?"} ${name.name.zh} / ${name.name.en} @ ${s.room} [${who}]: ${s.state}`;
  const left = secondsLeft !== undefined ? ` — ${secondsLeft}s` : "";
  const what = s.state === "waiting" && s.instruction ? `\n    ${s.instruction.zh}\n    ${s.instruction.en}` : s.state === "proving" ? "\n    正在确认测试事件已送达平台 / Proving the test event reached the relay" : "";
  const why = s.detail && (s.state === "failed" || s.state === "missing") ? ` (${s.detail})` : "";
  return `${head}${why}${left}${what}`;
}

export function renderReport(r: CommissioningReport): string {
  const lines = [
    `Commissioning report — hub ${r.hub}${r.household ? `, household ${r.household}` : ""}, plan v${r.plan.version} (${r.plan.level}), installer ${r.installer}`,
    `State: ${r.state === "commissioned" ? "COMMISSIONED 已完成调试" : "BLOCKED 未完成调试"}`,
  ];
  for (const d of r.devices) {
    lines.push(`  ${MARK[d.result]} ${d.kind} ${d.id ?? "(none)"}${d.model ? ` ${d.model}` : ""}${d.address ? ` ${d.address}` : ""} @ ${d.room ?? "?"}: ${d.result}` +
      `${d.signal !== undefined ? ` LQI ${d.signal}` : ""}${d.battery !== undefined ? ` battery ${d.battery}%` : ""}${d.ackedAt ? ` acked ${new Date(d.ackedAt).toISOString()}` : ""}` +
      `${d.detail ? ` — ${d.detail}` : ""}${d.waiver ? ` — waived by ${d.waiver.by}: ${d.waiver.reason}` : ""}`);
  }
  const blocking = r.devices.filter((d) => d.result === "failed" || d.result === "missing");
  if (blocking.length) {
    lines.push("Blocking (fix and run again, or waive with --waive <device-or-kind>=<reason>) / 阻止完成（修复后重试，或用 --waive 豁免并写明原因）:");
    for (const d of blocking) lines.push(`  - ${d.id ?? d.kind} (${d.kind} @ ${d.room ?? "?"}): ${d.result}${d.detail ? `: ${d.detail}` : ""}`);
  }
  return `${lines.join("\n")}\n`;
}

export function registerCommission(cmd: Command, socketPath: (o: CommissionOpts) => Promise<string>, fail: Fail): Command {
  return cmd
    .description("walk the home with its plan: find each planned device, have it triggered for real, prove each test reaches the relay, and file the signed report")
    .option("--plan-file <json>", "the household plan as a file (offline)")
    .option("--relay <url>", "the relay to fetch the plan from")
    .option("--token <token>", "your installer token at the relay")
    .option("--household <id>", "the household at the relay")
    .requiredOption("--installer <name>", "who commissions (recorded in the report)")
    .option("--waive <device-or-kind=reason>", "accept a device as not installed or not working, with the reason (repeatable)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--timeout-per-step <s>", "how long each step waits", "120")
    .option("--json", "the result as JSON on standard output; progress to standard error")
    .action(async (o: CommissionOpts) => {
      const stepTimeoutS = Number(o.timeoutPerStep);
      if (!Number.isInteger(stepTimeoutS) || stepTimeoutS < 1 || stepTimeoutS > 3600) fail("--timeout-per-step must be a whole number of seconds from 1 to 3600", 2);
      const waivers = parseWaivers(o.waive, fail);
      const plan = await loadPlan(o, fail);
      if (typeof plan !== "object" || plan === null || Array.isArray(plan)) fail("the plan is not a JSON object", 2);
      const sock = await socketPath(o);
      const out = o.json ? process.stderr : process.stdout;
      const tty = out.isTTY === true;
      const steps = new Map<string, string>();
      let reopenAsked = false;
      const show = (p: Progress) => {
        if (p.event === "find") {
          if (tty) out.write(`\r\x1b[2K… ${p.text.zh} / ${p.text.en} — ${p.missing} waiting, ${p.secondsLeft}s`);
          return;
        }
        if (p.event === "report") return void out.write(`${tty ? "\r\x1b[2K" : ""}report journaled as event ${p.eventId}\n`);
        const line = stepLine(p.step, p.secondsLeft);
        const key = `${p.step.key}:${p.step.state}`;
        if (p.secondsLeft !== undefined && steps.has(key)) {
          // The countdown redraws in place on a terminal; off a terminal only state changes are written.
          if (tty) out.write(`\r\x1b[2K${line.split("\n")[0]}`);
          return;
        }
        steps.set(key, line);
        out.write(`${tty ? "\r\x1b[2K" : ""}${line}\n`);
        // At a terminal, Enter reopens the valve: the installer's own on-site act, as `anxin-hub valve reopen`.
        if (p.step.kind === "gas_valve" && p.step.state === "waiting" && process.stdin.isTTY && !reopenAsked) {
          reopenAsked = true;
          const rl = createInterface({ input: process.stdin });
          rl.on("line", () => {
            void callDaemon(sock, { cmd: "valve_reopen", by: o.installer, osUser: os.userInfo().username }).then((r) =>
              out.write(r.ok ? "valve reopen sent / 已发送开阀\n" : `valve reopen refused: ${r.error} ${(r as { details?: string[] }).details?.join("; ") ?? ""}\n`),
            );
          });
          process.stdin.unref?.();
        }
      };
      const r = await streamDaemon(sock, { cmd: "commission_start", plan: plan as Record<string, unknown>, household: o.household, installer: o.installer, waivers, stepTimeoutS }, (p) => show(p as Progress), (stepTimeoutS + 30) * 1000).catch((e: Error) => fail(e.message));
      if (!r.ok) fail(`${r.error}${r.details?.length ? `:\n  - ${r.details.join("\n  - ")}` : ""}`);
      const result = r.result as { report: CommissioningReport; reportEventId: string; reportAckedAt: number | null };
      if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else process.stdout.write(`\n${renderReport(result.report)}report event ${result.reportEventId}: ${result.reportAckedAt ? "stored at the relay 已送达平台" : "journaled, waiting for the relay 待送达"}\n`);
      process.exit(result.report.state === "commissioned" ? 0 : 1);
    });
}
