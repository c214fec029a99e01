// The closed loop's commands: care plans (audited), API tokens, the escalation policies in force, and the
// operator API's OpenAPI description. Like the hub commands they open the store directly.
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { openApiDocument } from "../api/operator/openapi.js";
import { EventsQueryError, operatorRoutes, readEventsAudited } from "../api/operator/routes.js";
import { listEventsQuery } from "../api/operator/schemas.js";
import { addToken, listTokens, revokeToken, roleSchema, tokenNameSchema, tokenStreetsSchema } from "../auth/tokens.js";
import { listAudit } from "../careplans/audit.js";
import { CarePlanError, deleteCarePlan, loadCarePlanFile, readCarePlan, setCarePlan } from "../careplans/store.js";
import { loadPolicySet, readPolicyFile } from "../escalation/policy.js";
import { RELAY_VERSION } from "../version.js";
import { isHubId } from "../mqtt/topics.js";
import type { AdminHandle } from "./open-admin.js";

interface Helpers {
  withConfig(cmd: Command): Command;
  admin<T>(configFile: string, f: (a: AdminHandle) => Promise<T>): Promise<T>;
  fail(message: string, code?: number): never;
}

/** The person at the keyboard, for the audit log. */
export const cliActor = () => `cli:${(() => {
  try {
    return os.userInfo().username;
  } catch {
    return "unknown";
  }
})()}`;

const when = (ms: number | null | undefined) => (ms ? `${new Date(ms).toISOString().replace("T", " ").slice(0, 19)} UTC` : "-");

export function registerLoopCommands(program: Command, h: Helpers): void {
  const checkHub = (hub: string) => {
    if (!isHubId(hub)) h.fail(`'${hub}' is not a hub id`, 2);
  };

  /** Runs `f` on the store for one hub, once its id is known to be one. */
  const onHub = <T>(hub: string, configFile: string, f: (a: AdminHandle) => Promise<T>): Promise<T> => {
    checkHub(hub);
    return h.admin(configFile, f);
  };

  const careplan = program.command("careplan").description("care plans: who to call for a hub (personal data; every read is audited)");

  h.withConfig(careplan.command("set"))
    .description("store a hub's care plan from a YAML or JSON file (replaces the previous one)")
    .argument("<hub>")
    .argument("<file>")
    .action(async (hub: string, file: string, opts: { config: string }) => {
      checkHub(hub);
      let plan;
      try {
        plan = await loadCarePlanFile(file);
      } catch (e) {
        h.fail((e as Error).message, e instanceof CarePlanError ? 2 : 1);
      }
      await h.admin(opts.config, async ({ db }) => {
        const version = await setCarePlan(db, hub, plan, { actor: cliActor(), purpose: "cli", at: Date.now() });
        process.stdout.write(`care plan for ${hub} stored (version ${version}, ${plan.contacts.length} contact(s))\n`);
      });
    });

  h.withConfig(careplan.command("show"))
    .description("print a hub's care plan (recorded in the audit log)")
    .argument("<hub>")
    .option("--purpose <why>", "recorded in the audit log with the read", "cli")
    .action(async (hub: string, opts: { config: string; purpose: string }) => {
      await onHub(hub, opts.config, async ({ db }) => {
        const got = await readCarePlan(db, hub, { actor: cliActor(), purpose: opts.purpose.slice(0, 100), at: Date.now() });
        if (!got) h.fail(`no care plan for hub ${hub}`);
        process.stdout.write(`${JSON.stringify(got, null, 2)}\n`);
      });
    });

  h.withConfig(careplan.command("delete"))
    .description("delete a hub's care plan (the elder left the programme)")
    .argument("<hub>")
    .action(async (hub: string, opts: { config: string }) => {
      await onHub(hub, opts.config, async ({ db }) => {
        if (!(await deleteCarePlan(db, hub, { actor: cliActor(), purpose: "cli", at: Date.now() }))) h.fail(`no care plan for hub ${hub}`);
        process.stdout.write(`care plan for ${hub} deleted\n`);
      });
    });

  h.withConfig(careplan.command("audit"))
    .description("who read or changed a hub's care plan, and when")
    .argument("<hub>")
    .action(async (hub: string, opts: { config: string }) => {
      await onHub(hub, opts.config, async ({ db }) => {
        for (const e of await listAudit(db, { subject: hub })) process.stdout.write(`${when(e.at)}  ${e.actor}  ${e.action}  (${e.purpose})\n`);
      });
    });

  h.withConfig(program.command("events"))
    .description("what a hub sent, newest first (personal data: every read is recorded in the audit log)")
    .requiredOption("--hub <id>", "the hub")
    .option("--kind <kind>", "alarm, alarm_cleared, device, heartbeat, reading, audit")
    .option("--type <type>", "an event type, e.g. fall, smoke")
    .option("--severity <severity>", "critical, high, warning, info")
    .option("--since <time>", "event time at or after this (ISO 8601 with a zone, or ms)")
    .option("--until <time>", "event time before this (ISO 8601 with a zone, or ms)")
    .option("--order <order>", "desc (newest first) or asc", "desc")
    .option("--limit <n>", "at most this many (1-1000)", "100")
    .option("--cursor <cursor>", "continue from a previous page's nextCursor")
    .option("--purpose <why>", "recorded in the audit log with the read", "cli")
    .option("--json", "the page as JSON ({events, nextCursor}), envelopes included")
    .action(async (opts: { config: string; hub: string; kind?: string; type?: string; severity?: string; since?: string; until?: string; order: string; limit: string; cursor?: string; purpose: string; json?: boolean }) => {
      const raw: Record<string, string> = { hub: opts.hub, order: opts.order, limit: opts.limit };
      for (const k of ["kind", "type", "severity", "since", "until", "cursor"] as const) if (opts[k] !== undefined) raw[k] = opts[k];
      const q = listEventsQuery.safeParse(raw);
      if (!q.success) h.fail(q.error.issues.map((i) => `--${i.path.map(String).join(".")}: ${i.message}`).join("; "), 2);
      await h.admin(opts.config, async ({ db, store }) => {
        const page = await readEventsAudited(db, store, q.data, { actor: cliActor(), purpose: opts.purpose.slice(0, 100), at: Date.now() }).catch((e: Error) =>
          h.fail(e.message, e instanceof EventsQueryError ? 2 : 1),
        );
        if (opts.json) return void process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
        if (!page.events.length) process.stdout.write(`no events\n`);
        for (const e of page.events)
          process.stdout.write(`${when(e.ts)}  ${e.hub}  ${e.kind}/${e.type}  ${e.severity}  ${e.device ?? "-"}  ${e.id}${e.historical ? "  (historical)" : ""}\n`);
        if (page.nextCursor) process.stderr.write(`more: --cursor ${page.nextCursor}\n`);
      });
    });

  const token = program.command("token").description("bearer tokens for the operator API");

  h.withConfig(token.command("add"))
    .description("create a token and print it once (the relay keeps only its hash)")
    .requiredOption("--role <role>", "operator, admin or installer")
    .requiredOption("--name <name>", "who holds it (unique)")
    .option("--street <street>", "limit an operator or installer token to this street (街道); repeat for more (docs/households.md)", (v: string, acc: string[] = []) => [...acc, v])
    .action(async (opts: { config: string; role: string; name: string; street?: string[] }) => {
      const role = roleSchema.safeParse(opts.role);
      if (!role.success) h.fail(`--role must be operator, admin or installer`, 2);
      if (!tokenNameSchema.safeParse(opts.name).success) h.fail(`--name: letters, digits, _ . @ - (up to 64)`, 2);
      const streets = opts.street === undefined ? undefined : tokenStreetsSchema.safeParse(opts.street);
      if (streets && !streets.success) h.fail(`--street: ${streets.error.issues.map((i) => i.message).join("; ")}`, 2);
      if (streets && role.data === "admin") h.fail("--street: an admin token is not limited to streets; give an operator or installer token", 2);
      await h.admin(opts.config, async ({ db }) => {
        const t = await addToken(db, opts.name, role.data, Date.now(), { streets: streets?.data }).catch((e: Error) => h.fail(e.message));
        process.stdout.write(`${t.token}\n`);
        const limit = streets?.data ? `, streets ${streets.data.join(", ")}` : "";
        process.stderr.write(`token for ${opts.name} (${role.data}${limit}); shown once — send it as "Authorization: Bearer <token>"\n`);
      });
    });

  h.withConfig(token.command("list"))
    .description("every token: name, role, streets (when limited), created, revoked")
    .action(async (opts: { config: string }) => {
      await h.admin(opts.config, async ({ db }) => {
        const rows = await listTokens(db);
        if (!rows.length) process.stdout.write("no tokens\n");
        for (const t of rows)
          process.stdout.write(`${t.name}  ${t.role}${t.streets ? `  streets ${t.streets.join(", ")}` : ""}  created ${when(t.createdAt)}${t.revokedAt ? `  revoked ${when(t.revokedAt)}` : ""}\n`);
      });
    });

  h.withConfig(token.command("revoke"))
    .description("revoke a token at once")
    .argument("<name>")
    .action(async (name: string, opts: { config: string }) => {
      await h.admin(opts.config, async ({ db }) => {
        if (!(await revokeToken(db, name, Date.now()))) h.fail(`no active token named ${name}`);
        process.stdout.write(`token ${name} revoked\n`);
      });
    });

  h.withConfig(program.command("policies"))
    .description("print the escalation policies in force (defaults or escalation.policiesFile) as JSON")
    .action(async (opts: { config: string }) => {
      await h.admin(opts.config, async ({ config }) => {
        const set = config.escalation.policiesFile ? await readPolicyFile(config.escalation.policiesFile) : loadPolicySet();
        process.stdout.write(`${JSON.stringify(set, null, 2)}\n`);
      });
    });

  program
    .command("openapi")
    .description("write the operator API's OpenAPI 3.1 description (also served at /v1/openapi.json)")
    .option("--out <file>", "where to write it; default stdout")
    .action(async (opts: { out?: string }) => {
      const text = `${JSON.stringify(openApiDescription(), null, 2)}\n`;
      if (!opts.out) return void process.stdout.write(text);
      await mkdir(path.dirname(path.resolve(opts.out)), { recursive: true });
      await writeFile(opts.out, text);
      process.stdout.write(`wrote ${opts.out}\n`);
    });
}

/** The description without a store: the route table only needs its dependencies when a request comes. */
export function openApiDescription(): Record<string, unknown> {
  const unused = new Proxy({}, { get: () => () => Promise.reject(new Error("not available")) });
  const routes = operatorRoutes({ db: unused as never, store: unused as never, incidents: unused as never, registry: unused as never, now: Date.now, openapi: () => ({}) });
  return openApiDocument(routes, RELAY_VERSION);
}
