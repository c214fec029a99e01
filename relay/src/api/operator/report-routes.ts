// The operator API's commissioning-report routes: the reports hubs sent when their kit was installed, listed
// per hub and read as JSON, HTML or PDF. Admins and operators read any; an installer only the reports of homes
// it registered; a street-limited token only those of homes on its streets, anything else as not found. Every
// read (and every refusal) is audited, as for care plans: the report names the household.
import type { Kysely } from "kysely";
import { z } from "zod";
import { commissioningReportSchema } from "../../../../protocol/commissioning.js";
import type { Principal, Role } from "../../auth/tokens.js";
import { recordAudit } from "../../careplans/audit.js";
import type { CjkFont } from "../../commissioning/fonts.js";
import { renderReportHtml } from "../../commissioning/html.js";
import { renderReportPdf } from "../../commissioning/pdf.js";
import { getReport, householdOf, listReports, type StoredReport } from "../../commissioning/store.js";
import { householdView, type ReportView } from "../../commissioning/view.js";
import { inStreetScope, OUTSIDE_STREETS, streetScope } from "../../households/street-scope.js";
import { isHubId } from "../../mqtt/topics.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import { HttpError } from "../errors.js";
import { route, type OperatorRoute } from "./route.js";

export interface ReportRouteDeps {
  db: Kysely<LoopDb>;
  now: () => number;
  /** The CJK font for PDFs (findCjkFont at start); undefined: English-only PDFs. */
  cjkFont?: CjkFont;
  /** The zone report times are shown in; default Asia/Shanghai. */
  reportTimeZone?: string;
}

export const REPORT_AUDIT = { read: "commissioning_report.read", list: "commissioning_report.list", refused: "commissioning_report.refused" } as const;

const READERS: readonly Role[] = ["operator", "admin", "installer"];
const ms = z.number().int().describe("ms since epoch");

const householdOut = z
  .object({ id: z.string(), elder: z.string().describe("masked: the first character, then *"), address: z.string().describe("masked: the road and building only"), street: z.string(), community: z.string() })
  .nullable()
  .describe("the household, masked; null when the relay has no household for the report's hub");
const summarySchema = z.object({
  id: z.string().describe("the report event's id"),
  eventId: z.string().describe("the signed event in GET /v1/events that carried the report (the hub's signature is on it)"),
  hub: z.string(),
  householdId: z.string().nullable(),
  state: z.enum(["commissioned", "blocked"]),
  installer: z.string(),
  finishedAt: ms,
  receivedAt: ms,
  devices: z.number().int(),
  failed: z.number().int().describe("devices failed or missing"),
  waived: z.number().int(),
});
const detailSchema = z.object({
  id: z.string(),
  eventId: z.string(),
  hub: z.string(),
  receivedAt: ms,
  signedBy: z.string().describe("hub:<id>: the report is the hub's signed statement"),
  household: householdOut,
  report: commissioningReportSchema,
});
const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(100) }).strict();
const readQuery = z.object({ format: z.enum(["json", "html", "pdf"]).optional().describe("default json; {id}.html and {id}.pdf work too") }).strict();

/** `01J…`, `01J….html`, `01J….pdf`: the id and the format the path asks for, if any. */
function splitId(p: string): { id: string; format?: "html" | "pdf" } {
  const m = /^(.+)\.(html|pdf)$/.exec(p);
  return m ? { id: m[1] as string, format: m[2] as "html" | "pdf" } : { id: p };
}

export function reportRoutes(d: ReportRouteDeps): OperatorRoute[] {
  const timeZone = d.reportTimeZone ?? "Asia/Shanghai";

  /**
   * A street-limited token reaches only reports of homes on its streets (any other hub, or one with no
   * household, answers `notFound`: nothing tells them apart); installers only reports of homes their token
   * registered. Refusals are audited.
   */
  const reach = async (hub: string, householdId: string | null, principal: Principal | undefined, actor: string, doing: string, notFound: string) => {
    const h = await householdOf(d.db, { householdId, hub });
    if (!inStreetScope(streetScope(principal), h?.street)) {
      await recordAudit(d.db, { actor, action: REPORT_AUDIT.refused, subject: hub, purpose: `api; ${doing}; ${OUTSIDE_STREETS}`, at: d.now() });
      throw new HttpError(404, "not_found", notFound);
    }
    if (principal?.role === "installer" && (!h || h.owner !== principal.id)) {
      await recordAudit(d.db, { actor, action: REPORT_AUDIT.refused, subject: hub, purpose: `api; ${doing}`, at: d.now() });
      throw new HttpError(403, "forbidden", `an installer may read only the reports of homes it registered; not hub ${hub}`);
    }
    return h;
  };

  return [
    route<undefined, z.infer<typeof listQuery>>({
      method: "GET",
      path: "/v1/hubs/{hub}/commissioning-reports",
      roles: READERS,
      tag: "commissioning",
      summary: "a hub's commissioning reports, newest first (installers: homes they registered; every read is audited)",
      query: listQuery,
      response: z.object({ reports: z.array(summarySchema) }),
      errors: { 403: "an installer, for a hub whose home it did not register" },
      handle: async ({ params, query, principal, actor }) => {
        const hub = params.hub as string;
        if (!isHubId(hub)) throw new HttpError(400, "bad_hub_id", "not a hub id");
        await reach(hub, null, principal, actor, "list commissioning reports", `no hub ${hub}`);
        const rows = await listReports(d.db, hub, query.limit);
        await recordAudit(d.db, { actor, action: REPORT_AUDIT.list, subject: hub, purpose: `api; ${rows.length} report(s)`, at: d.now() });
        return { body: { reports: rows.map(summary) } };
      },
    }),
    route<undefined, z.infer<typeof readQuery>>({
      method: "GET",
      path: "/v1/commissioning-reports/{id}",
      roles: READERS,
      tag: "commissioning",
      summary:
        "one commissioning report: JSON (default), a self-contained HTML page (format=html or {id}.html) or a PDF (format=pdf or {id}.pdf); the household masked. Every read is audited; installers only for homes they registered",
      query: readQuery,
      response: detailSchema,
      alternates: { "text/html": "the report as a printable page (format=html)", "application/pdf": "the report as a PDF (format=pdf)" },
      errors: { 403: "an installer, for a home it did not register", 404: "no such report", 409: "the stored report no longer validates" },
      handle: async ({ params, query, principal, actor }) => {
        const p = splitId(params.id as string);
        if (p.format && query.format && p.format !== query.format) throw new HttpError(400, "bad_query", `format: the path asks for ${p.format}, the query for ${query.format}`);
        const format = p.format ?? query.format ?? "json";
        let got: StoredReport | undefined;
        try {
          got = await getReport(d.db, p.id);
        } catch (e) {
          if (e instanceof z.ZodError || e instanceof SyntaxError) throw new HttpError(409, "invalid_report", `the stored report ${p.id} no longer validates`);
          throw e;
        }
        if (!got) throw new HttpError(404, "not_found", `no commissioning report ${p.id}`);
        const h = await reach(got.hub, got.householdId, principal, actor, `read commissioning report ${got.id}`, `no commissioning report ${p.id}`);
        // Written before anything is handed out: a read the audit log cannot record fails instead.
        await recordAudit(d.db, { actor, action: REPORT_AUDIT.read, subject: got.hub, purpose: `api; report ${got.id} as ${format}`, at: d.now() });
        const view: ReportView = { id: got.id, eventId: got.eventId, hub: got.hub, receivedAt: got.receivedAt, report: got.report, household: h ? householdView(h) : null };
        if (format === "html") return { body: undefined, raw: { contentType: "text/html; charset=utf-8", data: renderReportHtml(view, timeZone) } };
        if (format === "pdf") return { body: undefined, raw: { contentType: "application/pdf", data: await renderReportPdf(view, { font: d.cjkFont, timeZone }), filename: `commissioning-${got.hub}-${got.id}.pdf` } };
        return { body: { id: view.id, eventId: view.eventId, hub: view.hub, receivedAt: view.receivedAt, signedBy: `hub:${view.hub}`, household: view.household, report: view.report } };
      },
    }),
  ];
}

function summary(r: StoredReport): z.infer<typeof summarySchema> {
  return {
    id: r.id,
    eventId: r.eventId,
    hub: r.hub,
    householdId: r.householdId,
    state: r.state,
    installer: r.report.installer,
    finishedAt: r.finishedAt,
    receivedAt: r.receivedAt,
    devices: r.report.devices.length,
    failed: r.report.devices.filter((x) => x.result === "failed" || x.result === "missing").length,
    waived: r.report.devices.filter((x) => x.result === "waived").length,
  };
}
