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
import { setUpFromPlan } from "./commission-setup.js";

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
  kit?: string;
  pairSeconds: string;
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

/** Where the report is: at the relay, on its way, or kept on the hub because it has no uplink. */
function delivery(r: { reportAckedAt: number | null; uplink?: boolean }): string {
  if (r.reportAckedAt) return "stored at the relay 已送达平台";
  return r.uplink === false ? "journaled on the hub; this hub has no uplink, so it reaches no relay 本网关未连接平台" : "journaled, waiting for the relay 待送达";
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

/** Columns a character takes on a terminal: East Asian wide and full-width forms two, combining marks none. */
function charWidth(cp: number): number {
  if ((cp >= 0x300 && cp <= 0x36f) || (cp >= 0x200b && cp <= 0x200f) || cp === 0xfe0f) return 0;
  return (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e) || (cp >= 0x3041 && cp <= 0x33ff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xa000 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) || (cp >= 0x20000 && cp <= 0x3fffd)
    ? 2
    : 1;
}

/** Rows a line takes on a terminal `cols` wide that wraps long lines (a wide character that does not fit moves down whole). */
function terminalRows(text: string, cols: number | undefined): number {
  if (!cols || cols < 2) return 1;
  let rows = 1;
  let col = 0;
  for (const ch of text) {
    const w = charWidth(ch.codePointAt(0)!);
    if (col + w > cols) {
      rows++;
      col = 0;
    }
    col += w;
  }
  return rows;
}

/**
 * The bottom of the installer's screen: lines that stay, and below them one live line (a countdown) redrawn in
 * place on a terminal. The live line is erased before anything else is written, every row of it: the search's
 * line is wider than a usual terminal and wraps, and erasing only the last row would leave a copy of the others
 * behind at every redraw. Off a terminal there is no live line, only the lines that stay.
 */
class LiveLine {
  /** Rows the live line takes now, counted up from the cursor's row (0: the cursor is on an empty row). */
  private rows = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    readonly tty: boolean,
  ) {}

  private erase(): string {
    if (!this.tty) return "";
    const up = this.rows > 1 ? `\x1b[${this.rows - 1}A\x1b[J` : "";
    this.rows = 0;
    return `\r\x1b[2K${up}`;
  }

  draw(text: string): void {
    if (!this.tty) return;
    const s = `${this.erase()}${text}`;
    this.rows = terminalRows(text, this.out.columns);
    this.out.write(s);
  }

  line(text: string): void {
    this.out.write(`${this.erase()}${text}\n`);
  }

  /** Enter typed at the terminal: its echo took the cursor one row down, under the live line; the next erase takes that row too. */
  typedEnter(): void {
    if (this.tty) this.rows = Math.max(this.rows, 1) + 1;
  }

  /** What is written next starts on a row of its own; a live line stays as last drawn. */
  settle(): void {
    if (this.tty && this.rows > 0) this.out.write("\n");
    this.rows = 0;
  }
}

/**
 * Shows the session's progress: each state change as a line; on a terminal the countdown of the step (or of the
 * search) redrawn in place. When standard input is a terminal, Enter reopens the valve while a gas valve step
 * waits for it: the installer's own on-site act, as `anxin-hub valve reopen`. Enter at any other time does
 * nothing (it is not kept for later: a key typed ahead must not reopen the valve when its step comes).
 */
function progressView(out: NodeJS.WriteStream, o: { sock: string; installer: string; keys?: boolean }): { show(p: Progress): void; end(): void } {
  const live = new LiveLine(out, out.isTTY === true);
  const shown = new Set<string>();
  const valveWaiting = new Set<string>();
  let input: ReturnType<typeof createInterface> | undefined;
  if (process.stdin.isTTY && o.keys !== false) {
    input = createInterface({ input: process.stdin, terminal: false });
    input.on("line", () => {
      // The terminal echoed the Enter as a new row (the progress is shown on the same terminal).
      live.typedEnter();
      if (valveWaiting.size === 0) return;
      callDaemon(o.sock, { cmd: "valve_reopen", by: o.installer, osUser: os.userInfo().username }).then(
        (r) => live.line(r.ok ? "valve reopen sent / 已发送开阀" : `valve reopen refused / 开阀被拒绝: ${r.details?.length ? r.details.join("; ") : r.error}`),
        (e: Error) => live.line(`valve reopen not sent / 未能发送开阀: ${e.message}`),
      );
    });
    // Reading the keyboard must not keep the command alive once the session is over.
    process.stdin.unref?.();
  }
  return {
    show(p: Progress) {
      if (p.event === "find") return live.draw(`… ${p.text.zh} / ${p.text.en} — ${p.missing} waiting, ${p.secondsLeft}s`);
      if (p.event === "report") return live.line(`report journaled as event ${p.eventId}`);
      if (p.event === "second_path") return live.line(secondPathLine(p.check));
      if (p.step.kind === "gas_valve") {
        if (p.step.state === "waiting") valveWaiting.add(p.step.key);
        else valveWaiting.delete(p.step.key);
      }
      // A state change is a line; its countdown is the live line (on a terminal; off one it is not shown).
      const key = `${p.step.key}:${p.step.state}`;
      if (p.secondsLeft === undefined || !shown.has(key)) {
        shown.add(key);
        live.line(stepLine(p.step));
      }
      if (p.secondsLeft !== undefined) live.draw(stepLine(p.step, p.secondsLeft).split("\n")[0]!);
    },
    end() {
      valveWaiting.clear();
      input?.close();
      live.settle();
    },
  };
}

function secondPathLine(c: Extract<Progress, { event: "second_path" }>["check"]): string {
  const state = c.result === "passed" ? "PASSED / 通过" : c.result === "waived" ? `WAIVED / 豁免 (${c.waiver?.reason ?? ""})` : "FAILED / 失败";
  const module = c.sim ? `SIM ${c.sim}, ${c.registration ?? "?"}, ${c.operator ?? "-"}, ${c.rssiDbm ?? "?"} dBm` : "module not answering";
  return `second path (cellular) / 备用通道（蜂窝）: ${state} — ${module}; longest alarm SMS ${c.longestSms}/160${c.mr !== undefined ? `; test SMS ref ${c.mr}` : ""}${c.detail ? `; ${c.detail}` : ""}`;
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
    .option("--kit <yaml>", "the district's standard kit: first add the planned devices hub.yaml lacks (found on the bus, paired, or by USB port), then reload the daemon")
    .option("--pair-seconds <s>", "with --kit: how long Zigbee pairing stays open", "120")
    .action(async (o: CommissionOpts) => {
      const stepTimeoutS = Number(o.timeoutPerStep);
      if (!Number.isInteger(stepTimeoutS) || stepTimeoutS < 1 || stepTimeoutS > 3600) fail("--timeout-per-step must be a whole number of seconds from 1 to 3600", 2);
      const waivers = parseWaivers(o.waive, fail);
      const plan = await loadPlan(o, fail);
      if (typeof plan !== "object" || plan === null || Array.isArray(plan)) fail("the plan is not a JSON object", 2);
      const sock = await socketPath(o);
      if (o.kit) {
        const pairSeconds = Number(o.pairSeconds);
        if (!Number.isInteger(pairSeconds) || pairSeconds < 1 || pairSeconds > 254) fail("--pair-seconds must be a whole number of seconds from 1 to 254", 2);
        await setUpFromPlan({ sock, plan: plan as Record<string, unknown>, kitFile: o.kit, pairSeconds, installer: o.installer, household: o.household, out: o.json ? process.stderr : process.stdout }, fail);
      }
      const out = o.json ? process.stderr : process.stdout;
      const view = progressView(out, { sock, installer: o.installer });
      const r = await streamDaemon(sock, { cmd: "commission_start", plan: plan as Record<string, unknown>, household: o.household, installer: o.installer, waivers, stepTimeoutS }, (p) => view.show(p as Progress), (stepTimeoutS + 30) * 1000).finally(() => view.end()).catch((e: Error) => fail(e.message));
      if (!r.ok) fail(`${r.error}${r.details?.length ? `:\n  - ${r.details.join("\n  - ")}` : ""}`);
      const result = r.result as { report: CommissioningReport; reportEventId: string; reportAckedAt: number | null; uplink?: boolean };
      if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else process.stdout.write(`\n${renderReport(result.report)}report event ${result.reportEventId}: ${delivery(result)}\n`);
      process.exit(result.report.state === "commissioned" ? 0 : 1);
    });
}

/** `anxin-hub commission-watch`: follows the session another terminal runs (a supervisor, a second installer). */
export function registerCommissionWatch(cmd: Command, socketPath: (o: { socket?: string; config?: string }) => Promise<string>, fail: Fail): Command {
  return cmd
    .description("follow the commissioning session running on this hub, live, until it ends (the installer's terminal drives it)")
    .action(async (o: { socket?: string; config?: string }) => {
      const sock = await socketPath(o);
      // Only the installer's own terminal reopens a valve: here Enter does nothing.
      const view = progressView(process.stdout, { sock, installer: "", keys: false });
      const r = await streamDaemon(sock, { cmd: "commission_status", watch: true }, (p) => view.show(p as Progress), 24 * 3600_000).finally(() => view.end()).catch((e: Error) => fail(e.message));
      if (!r.ok) fail(r.error);
      const st = r.result as { running: boolean; steps?: StepView[]; report?: CommissioningReport; reportEventId?: string };
      if (!st.steps) fail("no commissioning session is running on this hub");
      if (st.report) process.stdout.write(`\n${renderReport(st.report)}report event ${st.reportEventId}\n`);
      else for (const step of st.steps) process.stdout.write(`${stepLine(step)}\n`);
      process.exit(st.report?.state === "commissioned" ? 0 : 1);
    });
}
