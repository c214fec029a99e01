// GET /v1/ledger: the district ledger for operators and admins, as JSON, CSV or an Excel workbook. The elder's
// name is masked and no address is listed beyond street and community; every export writes an audit row
// naming the format, the filters used (places, not people) and how many homes it listed. A street-limited
// token's ledger lists its streets only (households/street-scope.ts).
import type { Kysely } from "kysely";
import { z } from "zod";
import type { Role } from "../../auth/tokens.js";
import { recordAudit } from "../../careplans/audit.js";
import { ledgerRows } from "../../households/ledger.js";
import { ledgerCsv, ledgerFileName, ledgerPeriod, ledgerXlsx, LEDGER_FORMATS, LEDGER_LANGS } from "../../households/ledger-export.js";
import { DEVICE_KINDS, RISK_LEVELS } from "../../households/schema.js";
import { streetScope } from "../../households/street-scope.js";
import { defaultUpkeepConfig, UPKEEP_WHATS, type UpkeepConfig } from "../../households/upkeep.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import { HttpError } from "../errors.js";
import { route, type OperatorRoute } from "./route.js";

export interface LedgerRouteDeps {
  db: Kysely<LoopDb>;
  now: () => number;
  /** households.upkeep; default: the defaults. */
  upkeep?: UpkeepConfig;
}

export const LEDGER_AUDIT_ACTION = "ledger.export";
const READERS: readonly Role[] = ["operator", "admin"];
const XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

const when = z.string().min(1).max(40);
export const ledgerQuerySchema = z
  .object({
    street: z.string().min(1).max(64).optional(),
    community: z.string().min(1).max(64).optional(),
    from: when.optional().describe("incidents opened from: YYYY-MM-DD (00:00 UTC+8), an ISO time or ms; default 30 days before `to`"),
    to: when.optional().describe("…until: a date includes that whole day; default now"),
    format: z.enum(LEDGER_FORMATS).default("json"),
    lang: z.enum(LEDGER_LANGS).default("zh").describe("column headers of the CSV and workbook: zh (default) or en"),
  })
  .strict();

const ms = z.number().int();
const upkeepOut = z.object({
  key: z.string(),
  what: z.enum(UPKEEP_WHATS),
  device: z.string().nullable(),
  kind: z.enum(DEVICE_KINDS).nullable(),
  since: ms,
  dueAt: ms,
  overdueAt: ms,
  status: z.enum(["ok", "due", "overdue"]),
});
const rowOut = z.object({
  street: z.string(),
  community: z.string(),
  householdId: z.string(),
  elder: z.string().describe("masked: the first character and ** (张**)"),
  hub: z.string(),
  level: z.enum(RISK_LEVELS).nullable(),
  planStatus: z.enum(["proposed", "approved"]).nullable(),
  planApproved: z.boolean(),
  kit: z.record(z.enum(DEVICE_KINDS), z.object({ planned: z.number().int(), installed: z.number().int() })).describe("active plan items against the devices that passed the latest commissioning"),
  commissionedAt: ms.nullable(),
  hubOnline: z.boolean().nullable().describe("null: the hub has not enrolled"),
  devicesOffline: z.array(z.string()),
  batteryLow: z.array(z.string()),
  faults: z.array(z.string()),
  incidents: z.record(z.string(), z.number().int()).describe("incidents opened in the period, by type"),
  incidentsTotal: z.number().int(),
  lastSelfTest: z.object({ smoke_detector: ms.nullable(), sos_button: ms.nullable() }),
  upkeep: z.array(upkeepOut),
  upkeepDue: z.number().int(),
  upkeepOverdue: z.number().int(),
  nextDueAt: ms.nullable(),
});

export function ledgerRoutes(d: LedgerRouteDeps): OperatorRoute[] {
  const upkeep = d.upkeep ?? defaultUpkeepConfig();
  return [
    route<undefined, z.infer<typeof ledgerQuerySchema>>({
      method: "GET",
      path: "/v1/ledger",
      roles: READERS,
      tag: "households",
      summary:
        "the district ledger: every home by street and community with risk level, kit planned vs installed, commissioning date, device health, incidents in the period and upkeep due; JSON, CSV (UTF-8 with BOM) or an Excel workbook, Chinese headers by default (audited)",
      query: ledgerQuerySchema,
      response: z.object({ generatedAt: ms, from: ms, to: ms, rows: z.array(rowOut) }),
      alternates: { "text/csv": "format=csv: the ledger as CSV, UTF-8 with a byte-order mark", [XLSX_TYPE]: "format=xlsx: the ledger as an Excel workbook" },
      handle: async ({ query, principal, actor }) => {
        const now = d.now();
        const period = ledgerPeriod(query.from, query.to, now);
        if ("error" in period) throw new HttpError(400, "bad_query", period.error);
        const rows = await ledgerRows(d.db, { street: query.street, streets: streetScope(principal), community: query.community, ...period }, upkeep, now);
        const filters = [query.street !== undefined ? "street" : "", query.community !== undefined ? "community" : ""].filter(Boolean).join(",");
        // Written before the rows leave: an export the audit log cannot record fails instead.
        await recordAudit(d.db, { actor, action: LEDGER_AUDIT_ACTION, subject: "*", purpose: `api; ${rows.length} household(s) as ${query.format}${filters ? ` by ${filters}` : ""}`, at: now });
        if (query.format === "csv") return { body: null, raw: { contentType: "text/csv; charset=utf-8", data: ledgerCsv(rows, query.lang), filename: ledgerFileName("csv", now) } };
        if (query.format === "xlsx") return { body: null, raw: { contentType: XLSX_TYPE, data: await ledgerXlsx(rows, query.lang, { generatedAt: now, ...period }), filename: ledgerFileName("xlsx", now) } };
        return { body: { generatedAt: now, ...period, rows } };
      },
    }),
  ];
}
