// `anxin-relay retention status|run`: what the retention sweep deleted and when, what is configured, and a
// sweep now. `run` takes the same database claim as the daemons, so it never runs beside a sweep of theirs.
import type { Command } from "commander";
import pino from "pino";
import { claimOwner } from "../daemon/claims.js";
import type { AdminHandle } from "../cli/open-admin.js";
import { keepsForever, retentionRules } from "./rules.js";
import { listRuns, pendingSweep, pullSweep, scheduleSweep } from "./schedule.js";
import { RetentionSweeper } from "./sweeper.js";
import { retentionDb } from "./table.js";

interface Helpers {
  withConfig(cmd: Command): Command;
  admin<T>(configFile: string, f: (a: AdminHandle) => Promise<T>): Promise<T>;
  fail(message: string, code?: number): never;
}

const when = (ms: number | null | undefined) => (ms ? `${new Date(ms).toISOString().replace("T", " ").slice(0, 19)} UTC` : "-");
const counts = (d: Record<string, number>) => Object.entries(d).map(([k, v]) => `${k}=${v}`).join(" ") || "nothing";

export function registerRetentionCommands(program: Command, h: Helpers): void {
  const retention = program.command("retention").description("how long rows are kept, and the sweep that deletes the rest");

  h.withConfig(retention.command("status"))
    .description("the configured retention, the next sweep and what recent sweeps deleted (counts only)")
    .option("--limit <n>", "this many recent sweeps", "10")
    .option("--json", "machine-readable")
    .action(async (opts: { config: string; limit: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) h.fail("--limit must be a whole number from 1 to 1000", 2);
      await h.admin(opts.config, async (a) => {
        const db = retentionDb(a.db);
        const c = a.config.retention;
        const keep = Object.fromEntries(retentionRules(c).map((r) => [r.name, keepsForever(r.days) ? null : r.days]));
        const next = await pendingSweep(db);
        const runs = await listRuns(db, limit);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ enabled: c.enabled, everyS: c.everyS, days: keep, next: next ? { dueAt: next.due_at, claimedBy: next.claimed_by, claimedUntil: next.claimed_until } : null, runs }, null, 2)}\n`);
          return;
        }
        process.stdout.write(`retention ${c.enabled ? "enabled" : "DISABLED (nothing is deleted)"}, a sweep every ${c.everyS} s\n`);
        for (const [k, d] of Object.entries(keep)) process.stdout.write(`  ${k.padEnd(20)} ${d === null ? "kept forever" : `${d} days`}\n`);
        const running = next?.claimed_until && next.claimed_until > Date.now() ? `, running on ${next.claimed_by} since ${when(next.started_at)}` : "";
        process.stdout.write(`next sweep: ${next ? `${when(next.due_at)}${running}` : "none scheduled (no relay has started with retention enabled)"}\n`);
        if (runs.length === 0) process.stdout.write("no sweep has finished yet\n");
        for (const r of runs) process.stdout.write(`${when(r.finishedAt)}  ${(r.result ?? "?").padEnd(11)} ${String(r.total).padStart(8)} deleted  by ${r.claimedBy ?? "?"}  ${counts(r.deleted)}${r.error ? `  error: ${r.error}` : ""}\n`);
      });
    });

  h.withConfig(retention.command("run"))
    .description("run a retention sweep now, here (refused while another instance is running one)")
    .action(async (opts: { config: string }) => {
      await h.admin(opts.config, async (a) => {
        const c = a.config.retention;
        if (!c.enabled) h.fail("retention is disabled in this configuration (retention.enabled: false): nothing to run", 1);
        const db = retentionDb(a.db);
        const now = Date.now();
        await scheduleSweep(db, now);
        await pullSweep(db, now);
        const sweeper = new RetentionSweeper({ db: a.db, config: c, owner: claimOwner(`${a.config.relay.id}-cli`), log: pino({ level: "silent" }) });
        const report = await sweeper.runDue();
        if (!report) {
          const p = await pendingSweep(db);
          h.fail(`a sweep is running on ${p?.claimed_by ?? "another instance"}; see anxin-relay retention status`, 1);
        }
        process.stdout.write(`sweep ${report.id}: ${report.result}, ${report.total} deleted (${counts(report.deleted)})${report.error ? `; error: ${report.error}` : ""}\n`);
        if (report.result === "failed") process.exitCode = 1;
      });
    });
}
