// `anxin-relay ledger`: the district ledger as CSV, an Excel workbook or JSON, written to a file or stdout,
// audited like GET /v1/ledger. `anxin-relay upkeep status|run`: the upkeep sweep's next run and a sweep now
// (it takes the same database claim as the daemons, so it never runs beside one of theirs).
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import pino from "pino";
import { LEDGER_AUDIT_ACTION } from "../api/operator/ledger-routes.js";
import { recordAudit } from "../careplans/audit.js";
import { claimOwner } from "../daemon/claims.js";
import { ledgerRows } from "../households/ledger.js";
import { ledgerCsv, ledgerPeriod, ledgerXlsx, LEDGER_FORMATS, LEDGER_LANGS, type LedgerFormat, type LedgerLang } from "../households/ledger-export.js";
import { pendingUpkeep, pullUpkeep, scheduleUpkeep, UpkeepSweeper } from "../households/upkeep-sweep.js";
import { upkeepDb } from "../households/upkeep-table.js";
import { cliActor } from "./loop-commands.js";
import type { AdminHandle } from "./open-admin.js";

interface Helpers {
  withConfig(cmd: Command): Command;
  admin<T>(configFile: string, f: (a: AdminHandle) => Promise<T>): Promise<T>;
  fail(message: string, code?: number): never;
}

interface LedgerOpts {
  config: string;
  street?: string;
  community?: string;
  from?: string;
  to?: string;
  format?: string;
  lang: string;
  out?: string;
}

export function registerLedgerCommands(program: Command, h: Helpers): void {
  h.withConfig(program.command("ledger"))
    .description("the district ledger: every home by street and community with kit, health, incidents and upkeep (audited; the elder's name masked)")
    .option("--street <name>", "only this street (街道)")
    .option("--community <name>", "only this community (社区)")
    .option("--from <when>", "incidents opened from: YYYY-MM-DD (00:00 UTC+8), an ISO time or ms; default 30 days before --to")
    .option("--to <when>", "…until: a date includes that whole day; default now")
    .option("--format <format>", `${LEDGER_FORMATS.join("|")}; default: from --out's extension, else json`)
    .option("--lang <lang>", `column headers: ${LEDGER_LANGS.join("|")}`, "zh")
    .option("--out <file>", "write here instead of stdout")
    .action(async (o: LedgerOpts) => {
      const ext = o.out?.match(/\.(csv|xlsx|json)$/i)?.[1]?.toLowerCase();
      const format = (o.format ?? ext ?? "json") as LedgerFormat;
      if (!(LEDGER_FORMATS as readonly string[]).includes(format)) h.fail(`--format: "${o.format}" is not one of ${LEDGER_FORMATS.join(", ")}`, 2);
      if (!(LEDGER_LANGS as readonly string[]).includes(o.lang)) h.fail(`--lang: "${o.lang}" is not one of ${LEDGER_LANGS.join(", ")}`, 2);
      if (format === "xlsx" && !o.out && process.stdout.isTTY) h.fail("--format xlsx writes a binary workbook: give --out <file>", 2);
      const now = Date.now();
      const period = ledgerPeriod(o.from, o.to, now);
      if ("error" in period) h.fail(`--${period.error}`, 2);
      await h.admin(o.config, async (a) => {
        const rows = await ledgerRows(a.db, { street: o.street, community: o.community, ...period }, a.config.households.upkeep, now);
        const filters = [o.street !== undefined ? "street" : "", o.community !== undefined ? "community" : ""].filter(Boolean).join(",");
        await recordAudit(a.db, { actor: cliActor(), action: LEDGER_AUDIT_ACTION, subject: "*", purpose: `cli; ${rows.length} household(s) as ${format}${filters ? ` by ${filters}` : ""}`, at: now });
        const lang = o.lang as LedgerLang;
        const data =
          format === "csv"
            ? ledgerCsv(rows, lang)
            : format === "xlsx"
              ? await ledgerXlsx(rows, lang, { generatedAt: now, ...period })
              : Buffer.from(`${JSON.stringify({ generatedAt: now, ...period, rows }, null, 2)}\n`);
        if (o.out) {
          // Owner-only: the file lists homes served (masked names, but still a list of elders living alone).
          await writeFile(o.out, data, { mode: 0o600 });
          process.stderr.write(`wrote ${rows.length} household(s) to ${o.out}\n`);
        } else process.stdout.write(data);
      });
    });

  const upkeep = program.command("upkeep").description("the upkeep sweep: due dates and overdue alerts (docs/households.md)");
  h.withConfig(upkeep.command("status"))
    .description("the next upkeep sweep and the last ones (counts only)")
    .action(async (o: { config: string }) => {
      await h.admin(o.config, async (a) => {
        const db = upkeepDb(a.db);
        const next = await pendingUpkeep(db);
        const runs = await db.selectFrom("upkeep_runs").selectAll().where("pending_key", "is", null).orderBy("finished_at", "desc").limit(10).execute();
        process.stdout.write(`${JSON.stringify({ enabled: a.config.households.upkeep.enabled, next: next ? { dueAt: next.due_at, claimedBy: next.claimed_by } : null, runs }, null, 2)}\n`);
      });
    });
  h.withConfig(upkeep.command("run"))
    .description("run the upkeep sweep now, here (refused while another instance is running it)")
    .action(async (o: { config: string }) => {
      await h.admin(o.config, async (a) => {
        const db = upkeepDb(a.db);
        const now = Date.now();
        await scheduleUpkeep(db, now);
        await pullUpkeep(db, now);
        const sweeper = new UpkeepSweeper({ db: a.db, config: a.config.households.upkeep, owner: claimOwner(`${a.config.relay.id}-cli`), log: pino({ level: "silent" }) });
        const r = await sweeper.runDue();
        if (!r) h.fail("an upkeep sweep is running on another instance; see anxin-relay upkeep status", 1);
        process.stdout.write(`upkeep sweep ${r.id}: ${r.result}; ${r.items} item(s), ${r.overdue} overdue, ${r.alerts} alert(s) raised, ${r.cleared} cleared${r.error ? `; error: ${r.error}` : ""}\n`);
        if (r.result === "failed") process.exitCode = 1;
      });
    });
}
