// `anxin-relay forwards …`: the dead letters of the forwarders' outbox. List them, look at one (its payload
// may hold the elder's address: the read is audited), and send one again once its receiver is fixed (audited:
// who, when). Like the other commands they open the store directly; a running relay delivers a resent row at
// its next poll (forwarders.pollMs).
import type { Command } from "commander";
import { getForward, listForwardSummaries, resendForward, ResendError, type ForwardSummary } from "../forwarders/outbox.js";
import type { ForwardState } from "../forwarders/table.js";
import { cliActor } from "./loop-commands.js";
import type { AdminHandle } from "./open-admin.js";

interface Helpers {
  withConfig(cmd: Command): Command;
  admin<T>(configFile: string, f: (a: AdminHandle) => Promise<T>): Promise<T>;
  fail(message: string, code?: number): never;
}

const when = (ms: number | null | undefined) => (ms ? `${new Date(ms).toISOString().replace("T", " ").slice(0, 19)} UTC` : "-");
const STATES: ForwardState[] = ["dead", "pending", "delivered"];

function table(rows: ForwardSummary[]): string {
  const t = [
    ["ID", "DESTINATION", "TRIES", "CREATED", "INCIDENT", "UPDATE", "LAST ERROR"],
    ...rows.map((r) => [r.id, r.destination, String(r.attempts), when(r.createdAt), r.incidentId ? `${r.incidentId} (${r.hub ?? "?"} ${r.type ?? "?"})` : "-", r.update ?? "-", r.lastError ?? "-"]),
  ];
  const widths = t[0]!.map((_, i) => Math.max(...t.map((r) => r[i]!.length)));
  return t.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n";
}

export function registerForwardCommands(program: Command, h: Helpers): void {
  const forwards = program.command("forwards").description("the forwarders' outbox: dead letters, what they hold, sending them again");

  h.withConfig(forwards.command("dead"))
    .description("list the forwards that could not be delivered (dead letters), newest first; no payloads")
    .option("--destination <name>", "only this destination")
    .option("--state <state>", "another state instead: pending or delivered", "dead")
    .option("--limit <n>", "at most this many", "100")
    .option("--json", "machine-readable")
    .action(async (opts: { config: string; destination?: string; state: string; limit: string; json?: boolean }) => {
      if (!STATES.includes(opts.state as ForwardState)) h.fail(`--state must be one of ${STATES.join(", ")}`, 2);
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) h.fail("--limit must be a whole number from 1 to 10000", 2);
      await h.admin(opts.config, async ({ db }) => {
        const rows = await listForwardSummaries(db, { state: opts.state as ForwardState, destination: opts.destination, limit });
        if (opts.json) return void process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        if (!rows.length) return void process.stdout.write(`no ${opts.state} forwards\n`);
        process.stdout.write(table(rows));
        if (opts.state === "dead") process.stdout.write(`\nonce the receiver is fixed: anxin-relay forwards resend <id>\n`);
      });
    });

  h.withConfig(forwards.command("show"))
    .description("one forward with its payload and who read or resent it (the read is recorded in the audit log)")
    .argument("<id>")
    .option("--purpose <why>", "recorded in the audit log with the read", "cli")
    .action(async (id: string, opts: { config: string; purpose: string }) => {
      await h.admin(opts.config, async ({ db }) => {
        const f = await getForward(db, id, { actor: cliActor(), purpose: opts.purpose.slice(0, 100), at: Date.now() });
        if (!f) h.fail(`no forward ${id}`);
        process.stdout.write(`${JSON.stringify(f, null, 2)}\n`);
      });
    });

  h.withConfig(forwards.command("resend"))
    .description("send a dead forward again (pending, due now, tries counted from zero); recorded in the audit log")
    .argument("<id>")
    .option("--reason <why>", "recorded in the audit log with the resend", "cli")
    .action(async (id: string, opts: { config: string; reason: string }) => {
      await h.admin(opts.config, async ({ db }) => {
        try {
          const f = await resendForward(db, id, { actor: cliActor(), purpose: opts.reason.slice(0, 100), at: Date.now() });
          process.stdout.write(`forward ${f.id} to ${f.destination} queued again (it died with: ${f.lastError ?? "-"}); a running relay sends it at its next poll\n`);
        } catch (e) {
          if (e instanceof ResendError) h.fail(e.message);
          throw e;
        }
      });
    });
}
