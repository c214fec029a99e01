// `anxin-relay households …`: an admin or installer at the relay host registers a home, records its
// assessment, reads its plan, approves it and records consent without the HTTP API. The same store functions,
// validation and audit rows as the routes (relay/src/households/store.ts); the actor is the OS user
// (`cli:<name>`) and the purpose starts with `cli`, so the audit log tells these apart from API calls.
// Exit codes as for every relay command: 0 ok, 1 refused or unknown household, 2 bad input.
import path from "node:path";
import { Option, type Command } from "commander";
import { z } from "zod";
import { ConfigError, formatConfigProblems, readYamlFile } from "../config/loader.js";
import { maskAddress, maskName } from "../households/mask.js";
import { assessmentSchema, CONSENT_DEVICES, consentBodySchema, householdInputSchema, type PlanItem } from "../households/schema.js";
import { loadRiskRules, type RiskRules } from "../households/scoring.js";
import { approvePlan, createHousehold, HouseholdError, listHouseholds, readHousehold, recordAssessment, recordConsent, type StoredPlan, type Who } from "../households/store.js";
import { cliActor } from "./loop-commands.js";
import type { AdminHandle } from "./open-admin.js";

interface Helpers {
  withConfig(cmd: Command): Command;
  admin<T>(configFile: string, f: (a: AdminHandle) => Promise<T>): Promise<T>;
  fail(message: string, code?: number): never;
}

const who = (purpose = "cli"): Who => ({ actor: cliActor(), purpose, at: Date.now() });
const out = (text: string) => void process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
const json = (v: unknown) => out(JSON.stringify(v, null, 2));
const when = (ms: number | null | undefined) => (ms ? `${new Date(ms).toISOString().replace("T", " ").slice(0, 19)} UTC` : "-");

/** Terminal columns: Chinese characters (and other East Asian wide forms) take two. */
const WIDE = /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/u;
const columns = (s: string) => [...s].reduce((n, ch) => n + (WIDE.test(ch) ? 2 : 1), 0);

function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => columns(r[i] ?? ""))));
  return rows.map((r) => r.map((c, i) => c + " ".repeat((widths[i] ?? 0) - columns(c))).join("  ").trimEnd()).join("\n");
}

/** Zod issues as `--flag: message`, through the map from the schema's key paths to the flags that fill them. */
function flagIssues(e: z.ZodError, flags: Record<string, string>): string {
  return e.issues
    .map((i) => {
      const key = i.path.map(String).join(".");
      const unknown = i.code === "unrecognized_keys" ? ` (${i.keys.join(", ")})` : "";
      return `${flags[key] ?? (key || "(input)")}: ${i.message}${unknown}`;
    })
    .join("; ");
}

const listOptions = z
  .object({
    street: z.string().trim().min(1).max(64).optional(),
    community: z.string().trim().min(1).max(64).optional(),
    limit: z.coerce.number().int().min(1).max(5000),
  })
  .strict();
const approveOptions = z
  .object({
    by: z.string().trim().min(1, "name who approves").max(64),
    version: z.coerce.number().int().min(1).optional(),
  })
  .strict();
const YES_NO: Record<string, boolean> = { yes: true, no: false };

function describeItems(items: PlanItem[]): string {
  if (!items.length) return "  (no devices)";
  return table([
    ["DEVICE", "ROOM", "COUNT", "NOTE"],
    ...items.map((i) => [i.kind, i.room, String(i.count), i.retiredAt !== undefined ? `retired ${when(i.retiredAt)}: ${i.retiredReason ?? ""}` : (i.why ?? "")]),
  ])
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}

function describePlan(p: StoredPlan): string {
  const lines = [
    `plan v${p.version}: ${p.status}${p.approvedBy ? ` by ${p.approvedBy} at ${when(p.approvedAt)}` : ""}; level ${p.level}; ${p.basis}`,
    describeItems(p.items),
  ];
  if (p.withheld.length) lines.push(`withheld (no consent): ${p.withheld.map((w) => `${w.kind} in ${w.room}`).join(", ")}`);
  if (p.shortfalls.length) lines.push(`below the district's minimums: ${p.shortfalls.map((s) => `${s.kind} ${s.planned} of ${s.required}`).join(", ")}${p.reason ? ` (reason recorded)` : ""}`);
  return lines.join("\n");
}

export function registerHouseholdCommands(program: Command, h: Helpers): void {
  // Commander's own input errors (a missing flag, an unknown option) are bad input too: exit 2, not 1.
  const households = program
    .command("households")
    .description("households: register, assess, plan, approve, consent and list, at the relay host (personal data; every read and change is audited)")
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));

  /** Runs a store call; a household error ends the command with its message (exit 1). */
  const run = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (e) {
      if (e instanceof HouseholdError) h.fail(e.message, 1);
      throw e;
    }
  };

  h.withConfig(households.command("list"))
    .description("the register: every home by street and community with its level and plan status; names and addresses masked unless --unmasked (audited)")
    .option("--street <street>", "only this street (街道)")
    .option("--community <community>", "only this community (社区)")
    .option("--limit <n>", "at most this many (1-5000)", "1000")
    .option("--unmasked", "the elder's full name and address (the audit row says so)")
    .option("--json", "machine-readable, to stdout")
    .action(async (o: { config: string; street?: string; community?: string; limit: string; unmasked?: boolean; json?: boolean }) => {
      const q = listOptions.safeParse({ street: o.street, community: o.community, limit: o.limit });
      if (!q.success) h.fail(flagIssues(q.error, { street: "--street", community: "--community", limit: "--limit" }), 2);
      await h.admin(o.config, async ({ db }) => {
        const rows = await listHouseholds(db, q.data, who(o.unmasked ? "cli; unmasked" : "cli"));
        const shown = rows.map((r) => (o.unmasked ? r : { ...r, elder: { name: maskName(r.elder.name) }, address: maskAddress(r.address) }));
        if (o.json) return json({ masked: !o.unmasked, households: shown });
        if (!shown.length) return out("no households");
        out(
          table([
            ["ID", "STREET", "COMMUNITY", "ELDER", "ADDRESS", "HUB", "LEVEL", "PLAN"],
            ...shown.map((r) => [r.id, r.street, r.community, r.elder.name, r.address, r.hub, r.level ?? "-", r.planStatus ?? "-"]),
          ]),
        );
      });
    });

  h.withConfig(households.command("show"))
    .description("one home's record: the elder, address, latest assessment, plan and consent records (personal data; audited)")
    .argument("<id>", "the household's id")
    .option("--json", "machine-readable, to stdout")
    .action(async (id: string, o: { config: string; json?: boolean }) => {
      await h.admin(o.config, async ({ db }) => {
        const got = await readHousehold(db, id, who());
        if (!got) h.fail(`no household ${id}`, 1);
        if (o.json) return json(got);
        const x = got.household;
        const lines = [
          `household ${x.id} (hub ${x.hub})`,
          `  elder: ${x.elder.name}`,
          `  address: ${x.address}`,
          `  street: ${x.street}; community: ${x.community}`,
          `  registered ${when(x.createdAt)} by ${x.createdBy}`,
          got.assessment
            ? `assessment ${when(got.assessment.at)} by ${got.assessment.by}: ${got.assessment.level} (score ${got.assessment.score}, rules ${got.assessment.rulesVersion})`
            : "no assessment yet",
          got.plan ? describePlan(got.plan) : "no plan yet",
          `consent: ${CONSENT_DEVICES.map((d) => `${d} ${got.consent[d] ? "given" : "not given"}`).join(", ")}`,
          ...got.consents.map((c) => `  ${when(c.at)}  ${c.device} ${c.granted ? "granted" : "withdrawn"} by the ${c.givenBy}; recorded by ${c.recordedBy}`),
          `care plan: ${got.carePlanVersion === null ? "none" : `version ${got.carePlanVersion}`}`,
        ];
        out(lines.join("\n"));
      });
    });

  h.withConfig(households.command("create"))
    .description("register a home and its hub (one home per hub; audited)")
    .requiredOption("--hub <hub>", "the hub installed in the home")
    .requiredOption("--elder-name <name>", "the elder's name (phone and contacts go in the hub's care plan)")
    .requiredOption("--address <address>", "the home's address")
    .requiredOption("--street <street>", "the street (街道) whose ledger lists it")
    .requiredOption("--community <community>", "the residents' committee (社区)")
    .option("--json", "the record, machine-readable, to stdout")
    .action(async (o: { config: string; hub: string; elderName: string; address: string; street: string; community: string; json?: boolean }) => {
      const input = householdInputSchema.safeParse({ hub: o.hub, elder: { name: o.elderName }, address: o.address, street: o.street, community: o.community });
      if (!input.success) h.fail(flagIssues(input.error, { hub: "--hub", "elder.name": "--elder-name", address: "--address", street: "--street", community: "--community" }), 2);
      await h.admin(o.config, async ({ db }) => {
        // Registered at the relay host: like an admin's, the home is no installer token's.
        const created = await run(createHousehold(db, input.data, { ...who(), owner: null }));
        if (o.json) return json(created);
        out(`household ${created.id} registered for hub ${created.hub} (${created.street}, ${created.community})`);
        process.stderr.write(`next: anxin-relay households assess ${created.id} --file <assessment.yaml>\n`);
      });
    });

  h.withConfig(households.command("assess"))
    .description("record the risk assessment from a YAML or JSON file: scored by the district's rules, the kit plan derived (proposed; audited)")
    .argument("<id>", "the household's id")
    .requiredOption("--file <file>", "the assessment (the fields of PUT /v1/households/{id}/assessment; docs/households.md)")
    .option("--json", "the assessment and plan, machine-readable, to stdout")
    .action(async (id: string, o: { config: string; file: string; json?: boolean }) => {
      // Checked before the store is opened: every problem with the file's line and key, at once.
      let assessment: z.output<typeof assessmentSchema>;
      try {
        assessment = (await readYamlFile(o.file, assessmentSchema)).value;
      } catch (e) {
        if (e instanceof ConfigError) h.fail(`--file: not a valid assessment:\n${formatConfigProblems(e.problems)}`, 2);
        throw e;
      }
      await h.admin(o.config, async ({ db, config }) => {
        const rulesFile = config.households.riskScoringFile && path.resolve(path.dirname(path.resolve(o.config)), config.households.riskScoringFile);
        let rules: RiskRules;
        try {
          rules = await loadRiskRules(rulesFile);
        } catch (e) {
          h.fail(`households.riskScoringFile: ${(e as Error).message}`, e instanceof ConfigError ? 2 : 1);
        }
        const r = await run(recordAssessment(db, id, assessment, rules, who()));
        if (o.json) return json(r);
        out(`household ${id}: ${r.assessment.level} risk (score ${r.assessment.score}, rules ${r.assessment.rulesVersion})\n${describePlan(r.plan)}`);
        process.stderr.write(`the plan is proposed: an admin approves it (anxin-relay households approve ${id} --by <name>)\n`);
      });
    });

  h.withConfig(households.command("plan"))
    .description("the home's kit plan: devices, counts and rooms, what consent withholds, any shortfall (audited as a read)")
    .argument("<id>", "the household's id")
    .option("--json", "machine-readable, to stdout")
    .action(async (id: string, o: { config: string; json?: boolean }) => {
      await h.admin(o.config, async ({ db }) => {
        const got = await readHousehold(db, id, who());
        if (!got) h.fail(`no household ${id}`, 1);
        if (!got.plan) h.fail(`household ${id} has no plan yet: record the assessment first (anxin-relay households assess ${id} --file …)`, 1);
        if (o.json) return json(got.plan);
        out(describePlan(got.plan));
      });
    });

  h.withConfig(households.command("approve"))
    .description("approve the home's plan (audited, with the name of who approved it)")
    .argument("<id>", "the household's id")
    .requiredOption("--by <name>", "who approves (recorded in the audit row)")
    // Not --version: that is the program's own option, wherever it appears.
    .option("--plan-version <n>", "the plan version reviewed: refused if the plan changed since")
    .option("--json", "the approved plan, machine-readable, to stdout")
    .action(async (id: string, o: { config: string; by: string; planVersion?: string; json?: boolean }) => {
      const a = approveOptions.safeParse({ by: o.by, version: o.planVersion });
      if (!a.success) h.fail(flagIssues(a.error, { by: "--by", version: "--plan-version" }), 2);
      await h.admin(o.config, async ({ db }) => {
        const plan = await run(approvePlan(db, id, a.data.version, who(`cli; approved by ${a.data.by}`)));
        if (o.json) return json(plan);
        out(`household ${id}: plan v${plan.version} approved (by ${a.data.by})`);
      });
    });

  h.withConfig(households.command("consent"))
    .description("record the elder's consent to, or withdrawal from, a camera or vital-sign radar; withdrawal retires the device from the plan (audited)")
    .argument("<id>", "the household's id")
    .addOption(new Option("--device <device>", "the sensitive device").choices([...CONSENT_DEVICES]).makeOptionMandatory())
    .addOption(new Option("--granted <yes|no>", "yes: consent given; no: withdrawn or refused").makeOptionMandatory())
    .addOption(new Option("--given-by <who>", "the elder, or a legal guardian").choices(["elder", "guardian"]).makeOptionMandatory())
    .option("--json", "the consent and plan, machine-readable, to stdout")
    .action(async (id: string, o: { config: string; device: string; granted: string; givenBy: string; json?: boolean }) => {
      const granted = YES_NO[o.granted.toLowerCase()];
      if (granted === undefined) h.fail(`--granted: "${o.granted}" is not yes or no`, 2);
      const c = consentBodySchema.safeParse({ device: o.device, granted, givenBy: o.givenBy });
      if (!c.success) h.fail(flagIssues(c.error, { device: "--device", granted: "--granted", givenBy: "--given-by" }), 2);
      await h.admin(o.config, async ({ db }) => {
        const r = await run(recordConsent(db, id, c.data, who()));
        if (o.json) return json(r);
        const retired = r.plan?.items.filter((i) => i.kind === c.data.device && i.retiredAt !== undefined) ?? [];
        out(
          `household ${id}: ${c.data.device} consent ${c.data.granted ? "given" : "withdrawn"} by the ${c.data.givenBy}` +
            (r.plan ? `\n${describePlan(r.plan)}` : "\nno plan yet: the consent applies when the assessment is recorded"),
        );
        if (!c.data.granted && retired.length) process.stderr.write(`retired from the plan: ${retired.map((i) => `${i.kind} in ${i.room}`).join(", ")}\n`);
      });
    });
}
