// The operator API's routes: what a duty operator does with an incident, the alerts, care-plan reads
// (audited), the false-alarm report, and the installer's hub enrolment helpers. A street-limited caller
// reaches only the incidents, care plans, hubs and events of homes on its streets (hub-scope.ts).
import type { Kysely } from "kysely";
import { z } from "zod";
import { ackOperatorAlert, getOperatorAlert, listOperatorAlerts, revealAlertCalls } from "../../alerts/operator-alerts.js";
import type { Principal, Role } from "../../auth/tokens.js";
import { CarePlanError, readCarePlan } from "../../careplans/store.js";
import { getForward, listForwardSummaries, resendForward, ResendError } from "../../forwarders/outbox.js";
import { falseAlarmReport } from "../../incidents/report.js";
import { getIncident, getTimeline, listIncidents } from "../../incidents/repo.js";
import type { IncidentService } from "../../incidents/service.js";
import { isHubId } from "../../mqtt/topics.js";
import { recordAudit } from "../../careplans/audit.js";
import { CLAIM_AUDIT_ACTION, ClaimError, type Registry } from "../../registry/registry.js";
import type { LoopDb } from "../../store/closed-loop-schema.js";
import type { EventRow, Store } from "../../store/store.js";
import { onSecondPath } from "../../supervision/primary-path.js";
import { HttpError } from "../errors.js";
import { route, type OperatorRoute } from "./route.js";
import * as s from "./schemas.js";
import { alertInScope, alertsInScope, hubInScope, reachHub } from "./hub-scope.js";
import { hubsOnStreets, OUTSIDE_STREETS, streetScope, type StreetScope } from "../../households/street-scope.js";
import { householdRoutes } from "./household-routes.js";
import { ledgerRoutes } from "./ledger-routes.js";
import type { UpkeepConfig } from "../../households/upkeep.js";
import { reportRoutes } from "./report-routes.js";
import type { CjkFont } from "../../commissioning/fonts.js";
import type { RiskRules } from "../../households/scoring.js";

export interface OperatorRouteDeps {
  db: Kysely<LoopDb>;
  store: Store;
  incidents: IncidentService;
  registry: Registry;
  now: () => number;
  /** Filled in by openapi.ts once the table exists (the description is generated from it). */
  openapi: () => unknown;
  /** The households' risk-scoring rules (households.riskScoringFile); default: the shipped file. */
  riskRules?: RiskRules;
  /** The CJK font for commissioning-report PDFs (reports.cjkFontFile or a Debian font); none: English-only PDFs. */
  cjkFont?: CjkFont;
  /** The zone report times are shown in (reports.timeZone). */
  reportTimeZone?: string;
  /** households.upkeep: the due dates the ledger shows; default: the defaults. */
  upkeep?: UpkeepConfig;
}

/** The audit action of an events read, and of a refused one. */
export const EVENTS_AUDIT_ACTION = "events.read";
export const EVENTS_REFUSED_AUDIT_ACTION = "events.read_refused";
/** The audit actions of a street-limited caller's refused care-plan read and incident action (OUTSIDE_STREETS). */
export const CAREPLAN_REFUSED_AUDIT_ACTION = "careplan.refused";
export const INCIDENT_REFUSED_AUDIT_ACTION = "incident.refused";

export type EventsQuery = z.infer<typeof s.listEventsQuery>;

/** The query as the audit log records it: the filters, never a payload. */
function describeEventsQuery(q: EventsQuery): string {
  const parts: string[] = [];
  for (const k of ["hub", "kind", "type", "severity", "path", "since", "until", "order", "limit"] as const) if (q[k] !== undefined) parts.push(`${k}=${String(q[k])}`);
  if (q.cursor !== undefined) parts.push("cursor");
  return parts.join("&");
}

export class EventsQueryError extends Error {}

function toStoredEvent(r: EventRow): z.infer<typeof s.storedEventSchema> {
  let envelope: unknown;
  try {
    envelope = JSON.parse(r.payload);
  } catch {
    envelope = r.payload;
  }
  return {
    id: r.id,
    hub: r.hub,
    boot: r.boot,
    seq: r.seq,
    ts: r.ts,
    receivedAt: r.receivedAt,
    kind: r.kind,
    type: r.type,
    severity: r.severity,
    device: r.device,
    path: r.path ?? "mqtt",
    historical: r.historical,
    skewMs: r.skewMs,
    envelope,
  };
}

/**
 * One page of events, and one audit row for the read (who, why and the query, which hubs, how many): the API
 * and the CLI both read through here. The row is written before the events are handed out, so a read the
 * audit log cannot record fails instead. `streets`: a street-limited caller's, whose page holds only the
 * homes on them; hub= naming any other hub answers as an unknown hub does (an empty page), the refusal audited.
 */
export async function readEventsAudited(
  db: Kysely<LoopDb>,
  store: Store,
  q: EventsQuery,
  who: { actor: string; purpose: string; at: number; streets?: StreetScope },
): Promise<z.infer<typeof s.eventsPageSchema>> {
  const after = q.cursor === undefined ? undefined : s.decodeEventCursor(q.cursor);
  if (q.cursor !== undefined && !after) throw new EventsQueryError("cursor: not a cursor this API issued");
  if (after && after.order !== q.order) throw new EventsQueryError(`cursor: it belongs to order=${after.order}`);
  const scope = who.streets;
  if (scope !== undefined && q.hub !== undefined && !(await hubInScope(db, scope, q.hub))) {
    await recordAudit(db, { actor: who.actor, action: EVENTS_REFUSED_AUDIT_ACTION, subject: q.hub, purpose: `${who.purpose}; ${describeEventsQuery(q)}; ${OUTSIDE_STREETS}`, at: who.at });
    return { events: [], nextCursor: null };
  }
  const query = {
    hub: q.hub,
    kind: q.kind,
    type: q.type,
    severity: q.severity,
    path: q.path,
    since: q.since,
    until: q.until,
    order: q.order,
    after: after && { receivedAt: after.receivedAt, id: after.id },
    limit: q.limit + 1,
  };
  // One named hub in scope reads as before; without hub= a limited caller's page is narrowed in SQL.
  const rows = await store.queryEvents(scope === undefined || q.hub !== undefined ? query : { ...query, hubIn: hubsOnStreets(db, scope) });
  const more = rows.length > q.limit;
  const page = more ? rows.slice(0, q.limit) : rows;
  const last = page[page.length - 1];
  const hubs = [...new Set(page.map((r) => r.hub))].sort();
  await recordAudit(db, {
    actor: who.actor,
    action: EVENTS_AUDIT_ACTION,
    subject: q.hub ?? "*",
    purpose: `${who.purpose}; ${page.length} event(s)${hubs.length ? ` of ${hubs.join(",")}` : ""}; ${describeEventsQuery(q)}`,
    at: who.at,
  });
  return { events: page.map(toStoredEvent), nextCursor: more && last ? s.encodeEventCursor({ order: q.order, receivedAt: last.receivedAt, id: last.id }) : null };
}

const STAFF: readonly Role[] = ["operator", "admin"];
const ENROLMENT: readonly Role[] = ["installer", "admin"];
const ANYONE: readonly Role[] = ["operator", "admin", "installer"];
const ADMIN: readonly Role[] = ["admin"];

export function operatorRoutes(d: OperatorRouteDeps): OperatorRoute[] {
  /**
   * The incident, if the caller's streets reach its home; otherwise the very 404 of an unknown id. `refusal`:
   * audit it (actions; incident reads are not audited, so neither are their refusals).
   */
  const incidentOr404 = async (id: string, principal: Principal | undefined, refusal?: { actor: string; doing: string }) => {
    const notFound = new HttpError(404, "not_found", `no incident ${id}`);
    const inc = await getIncident(d.db, id);
    if (!inc) throw notFound;
    await reachHub(d.db, principal, inc.hub, notFound, refusal && { actor: refusal.actor, action: INCIDENT_REFUSED_AUDIT_ACTION, doing: `${refusal.doing} incident ${id}`, at: d.now() });
    return inc;
  };
  /** Before an action: a street-limited caller may act only on its streets' incidents (the service finds unknown ids itself). */
  const mayAct = async (id: string, principal: Principal | undefined, actor: string, doing: string) => {
    if (streetScope(principal) !== undefined) await incidentOr404(id, principal, { actor, doing });
  };
  const checkHub = (hub: string) => {
    if (!isHubId(hub)) throw new HttpError(400, "bad_hub_id", "not a hub id");
  };
  const act = (path: string, summary: string, body: z.ZodType, toAction: (b: never) => Parameters<IncidentService["act"]>[1], errors: Record<number, string> = {}) =>
    route<unknown, undefined>({
      method: "POST",
      path: `/v1/incidents/{id}/${path}`,
      roles: STAFF,
      tag: "incidents",
      summary: `${summary} (a street-limited caller: homes on its streets only)`,
      body,
      response: s.actionResultSchema,
      errors: { 404: "no such incident (or not on a street-limited caller's streets)", 409: "not allowed in the incident's current state, or changed meanwhile", ...errors },
      handle: async ({ params, body: b, principal, actor }) => {
        // Checked before acting: another street's incident is left untouched, and answered as unknown.
        await mayAct(params.id as string, principal, actor, path);
        const bb = b as { note?: string; by?: string; ref?: string; summary?: string; visitedBy?: string; outcome?: string };
        const detail: Record<string, unknown> = {};
        if (bb.by) detail.by = bb.by;
        if (bb.ref && path === "dispatches") detail.serviceRef = bb.ref;
        if (bb.summary) detail.summary = bb.summary;
        if (bb.visitedBy) Object.assign(detail, { visitedBy: bb.visitedBy, outcome: bb.outcome });
        const out = await d.incidents.act(params.id as string, toAction(b as never), { actor, note: bb.note, detail });
        return { body: out };
      },
    });

  const routes: OperatorRoute[] = [
    route({
      method: "GET",
      path: "/v1/openapi.json",
      roles: "public",
      tag: "meta",
      summary: "this API's OpenAPI 3.1 description",
      response: z.object({ openapi: z.string() }).passthrough(),
      handle: async () => ({ body: d.openapi() }),
    }),
    route<undefined, z.infer<typeof s.listIncidentsQuery>>({
      method: "GET",
      path: "/v1/incidents",
      roles: STAFF,
      tag: "incidents",
      summary: "list incidents, newest first (open ones by default); a street-limited caller sees only the homes on its streets",
      query: s.listIncidentsQuery,
      response: z.object({ incidents: z.array(s.incidentSchema) }),
      handle: async ({ query, principal }) => ({
        body: { incidents: await listIncidents(d.db, { openOnly: query.state === "open", hub: query.hub, streets: streetScope(principal), limit: query.limit }) },
      }),
    }),
    route({
      method: "GET",
      path: "/v1/incidents/{id}",
      roles: STAFF,
      tag: "incidents",
      summary: "one incident with its timeline and every call attempt; a street-limited caller only of the homes on its streets",
      response: s.incidentDetailSchema,
      errors: { 404: "no such incident (or not on a street-limited caller's streets)" },
      handle: async ({ params, principal }) => {
        const incident = await incidentOr404(params.id as string, principal);
        const calls = await d.db.selectFrom("call_attempts").selectAll().where("incident_id", "=", incident.id).orderBy("requested_at").orderBy("id").execute();
        return {
          body: {
            incident,
            timeline: await getTimeline(d.db, incident.id),
            calls: calls.map((c) => ({
              id: c.id,
              step: c.step,
              round: c.round,
              role: c.role,
              target: c.target,
              channel: c.channel,
              status: c.status,
              digits: c.digits,
              requestedAt: c.requested_at,
              placedAt: c.placed_at,
              outcomeAt: c.outcome_at,
            })),
          },
        };
      },
    }),
    route({
      method: "GET",
      path: "/v1/incidents/{id}/timeline",
      roles: STAFF,
      tag: "incidents",
      summary: "an incident's timeline: every transition, call, outcome and operator action with its time, actor and cause; a street-limited caller only of the homes on its streets",
      response: z.object({ timeline: z.array(s.timelineEntrySchema) }),
      errors: { 404: "no such incident (or not on a street-limited caller's streets)" },
      handle: async ({ params, principal }) => {
        const inc = await incidentOr404(params.id as string, principal);
        return { body: { timeline: await getTimeline(d.db, inc.id) } };
      },
    }),
    route<z.infer<typeof s.noteBody>>({
      method: "POST",
      path: "/v1/incidents/{id}/acknowledge",
      roles: STAFF,
      tag: "incidents",
      summary: "take the incident in hand: the call tree stops; the state is unchanged (a street-limited caller: homes on its streets only)",
      body: s.noteBody,
      response: s.actionResultSchema,
      errors: { 404: "no such incident (or not on a street-limited caller's streets)", 409: "closed" },
      handle: async ({ params, body, principal, actor }) => {
        await mayAct(params.id as string, principal, actor, "acknowledge");
        return { body: await d.incidents.acknowledge(params.id as string, { actor, note: body.note }) };
      },
    }),
    act("confirm", "confirm the emergency (received/confirming → confirmed)", s.noteBody, () => ({ kind: "confirm" })),
    act("false-alarm", "mark a false alarm with its reason", s.falseAlarmBody, (b: z.infer<typeof s.falseAlarmBody>) => ({ kind: "mark_false_alarm", reason: b.reason })),
    act("dispatches", "record a dispatch: 110, 119, 120, the gas company, or someone sent to the door (→ responding)", s.dispatchBody, (b: z.infer<typeof s.dispatchBody>) => ({
      kind: "record_dispatch",
      service: b.service,
    })),
    act("tickets", "record an operations-centre ticket reference (→ coordinated)", s.ticketBody, (b: z.infer<typeof s.ticketBody>) => ({ kind: "record_ticket", centre: b.centre, ref: b.ref })),
    act("resolve", "the emergency is over (→ resolved; the follow-up visit falls due later)", s.resolveBody, () => ({ kind: "resolve" })),
    act("follow-up", "record the follow-up (return) visit", s.followUpBody, () => ({ kind: "record_follow_up" })),
    act("close", "close the incident (after the follow-up visit, or a false alarm)", s.noteBody, () => ({ kind: "close" })),
    route<undefined, z.infer<typeof s.listAlertsQuery>>({
      method: "GET",
      path: "/v1/alerts",
      roles: STAFF,
      tag: "alerts",
      summary:
        "operator alerts (open ones by default): telephony down, forwards dead, nobody reached, …; a street-limited caller sees every alert (they are about the service) but only the calls of homes on its streets",
      query: s.listAlertsQuery,
      response: z.object({ alerts: z.array(s.alertSchema) }),
      handle: async ({ query, principal }) => {
        const alerts = await listOperatorAlerts(d.db, { openOnly: query.state === "open", limit: query.limit });
        return { body: { alerts: await alertsInScope(d.db, streetScope(principal), alerts) } };
      },
    }),
    route({
      method: "POST",
      path: "/v1/alerts/{id}/ack",
      roles: STAFF,
      tag: "alerts",
      summary: "acknowledge an alert",
      response: z.object({ acked: z.boolean() }),
      errors: { 404: "no such open alert" },
      handle: async ({ params, actor }) => {
        if (!(await ackOperatorAlert(d.db, params.id as string, actor, d.now()))) throw new HttpError(404, "not_found", `no open alert ${params.id}`);
        return { body: { acked: true } };
      },
    }),
    route({
      method: "GET",
      path: "/v1/alerts/{id}",
      roles: STAFF,
      tag: "alerts",
      summary: "one alert with every call it names (telephony_down: the calls that could not be placed; no numbers); street-limited callers: only their streets' calls",
      response: s.alertSchema,
      errors: { 404: "no such alert" },
      handle: async ({ params, principal }) => {
        const a = await getOperatorAlert(d.db, params.id as string);
        if (!a) throw new HttpError(404, "not_found", `no alert ${params.id}`);
        return { body: await alertInScope(d.db, streetScope(principal), a) };
      },
    }),
    route({
      method: "GET",
      path: "/v1/alerts/{id}/calls",
      roles: STAFF,
      tag: "alerts",
      summary:
        "the calls an alert names with the numbers to dial by hand (personal data: each hub's care-plan read is recorded in the audit log); street-limited callers: only their streets' calls, and no other care plan is read",
      response: s.alertCallsSchema,
      errors: { 404: "no such alert" },
      handle: async ({ params, actor, principal }) => {
        const calls = await revealAlertCalls(d.db, params.id as string, { actor, at: d.now() }, (a) => alertInScope(d.db, streetScope(principal), a));
        if (!calls) throw new HttpError(404, "not_found", `no alert ${params.id}`);
        return { body: { alert: params.id, calls } };
      },
    }),
    route<undefined, z.infer<typeof s.listForwardsQuery>>({
      method: "GET",
      path: "/v1/forwards",
      roles: ADMIN,
      tag: "forwards",
      summary: "outbox rows without payloads, newest first: the dead letters by default",
      query: s.listForwardsQuery,
      response: z.object({ forwards: z.array(s.forwardSummarySchema) }),
      handle: async ({ query }) => ({ body: { forwards: await listForwardSummaries(d.db, { state: query.state, destination: query.destination, limit: query.limit }) } }),
    }),
    route({
      method: "GET",
      path: "/v1/forwards/{id}",
      roles: ADMIN,
      tag: "forwards",
      summary: "one forward with its payload and who read or resent it (the read is recorded in the audit log)",
      response: s.forwardDetailSchema,
      errors: { 404: "no such forward" },
      handle: async ({ params, actor }) => {
        const f = await getForward(d.db, params.id as string, { actor, purpose: "api", at: d.now() });
        if (!f) throw new HttpError(404, "not_found", `no forward ${params.id}`);
        return { body: f };
      },
    }),
    route<z.infer<typeof s.resendBody>>({
      method: "POST",
      path: "/v1/forwards/{id}/resend",
      roles: ADMIN,
      tag: "forwards",
      summary: "send a dead forward again once its receiver is fixed: pending, due now, tries counted from zero (recorded in the audit log)",
      body: s.resendBody,
      response: z.object({ forward: s.forwardSummarySchema }),
      errors: { 404: "no such forward", 409: "the forward is not dead (pending or delivered)" },
      handle: async ({ params, body, actor }) => {
        try {
          return { body: { forward: await resendForward(d.db, params.id as string, { actor, purpose: body.reason ?? "api", at: d.now() }) } };
        } catch (e) {
          if (e instanceof ResendError) throw new HttpError(e.code === "not_found" ? 404 : 409, e.code, e.message);
          throw e;
        }
      },
    }),
    route({
      method: "GET",
      path: "/v1/careplans/{hub}",
      roles: STAFF,
      tag: "care plans",
      summary: "a hub's care plan (personal data: every read is recorded in the audit log); a street-limited caller only of the homes on its streets",
      response: s.storedCarePlanSchema,
      errors: { 404: "no care plan for this hub (or not on a street-limited caller's streets)", 409: "the stored plan no longer validates: set it again" },
      handle: async ({ params, principal, actor }) => {
        checkHub(params.hub as string);
        // Before the read: another street's plan is neither read nor audited as read, and cannot answer 409.
        const notFound = new HttpError(404, "not_found", `no care plan for hub ${params.hub}`);
        await reachHub(d.db, principal, params.hub as string, notFound, { actor, action: CAREPLAN_REFUSED_AUDIT_ACTION, doing: "read care plan", at: d.now() });
        const got = await readCarePlan(d.db, params.hub as string, { actor, purpose: "api", at: d.now() }).catch((e: unknown) => {
          if (e instanceof CarePlanError) throw new HttpError(409, "invalid_care_plan", e.message.split("\n")[0] as string);
          throw e;
        });
        if (!got) throw notFound;
        return { body: got };
      },
    }),
    route<undefined, z.infer<typeof s.reportQuery>>({
      method: "GET",
      path: "/v1/reports/false-alarms",
      roles: STAFF,
      tag: "reports",
      summary: "false-alarm rates per home and per device model; a street-limited caller counts only the homes on its streets",
      query: s.reportQuery,
      response: s.falseAlarmReportSchema,
      handle: async ({ query, principal }) => ({ body: await falseAlarmReport(d.db, { since: query.since, streets: streetScope(principal) }) }),
    }),
    route({
      method: "GET",
      path: "/v1/hubs/{hub}",
      roles: ANYONE,
      tag: "hubs",
      summary:
        "a hub's enrolment and connection status, and its path health: when each path (MQTT, SMS) last brought an event, its latest successful second-path test, and whether it is on its second path now (no personal data); a street-limited caller only of the homes on its streets",
      response: s.hubStatusSchema,
      errors: { 404: "unknown hub (or not on a street-limited caller's streets)" },
      handle: async ({ params, principal }) => {
        checkHub(params.hub as string);
        const notFound = new HttpError(404, "not_found", `unknown hub ${params.hub}`);
        await reachHub(d.db, principal, params.hub as string, notFound);
        const h = await d.store.getHub(params.hub as string);
        if (!h) throw notFound;
        const [health, tested] = await Promise.all([d.store.pathHealth(h.id), d.store.lastSecondPathTest(h.id)]);
        const paths = { ...health, secondPathTest: { lastOkAt: tested }, onSecondPath: onSecondPath(h, health.sms.lastAt) };
        return { body: { id: h.id, status: h.status, online: h.online, enrolled: h.enrolled, lastSeenAt: h.lastSeenAt, claimExpiresAt: h.claimExpiresAt, paths } };
      },
    }),
    route<undefined, EventsQuery>({
      method: "GET",
      path: "/v1/events",
      roles: ANYONE,
      tag: "events",
      summary:
        "what hubs sent, as stored (the signed envelopes), newest first by receipt; filtered by hub, kind, type, severity, path and event time; keyset pages via cursor. Personal data: every read is recorded in the audit log. Installers only with hub= for a pending hub whose claim they own. A street-limited caller sees only the homes on its streets: hub= naming any other hub answers an empty page, as an unknown hub does",
      query: s.listEventsQuery,
      response: s.eventsPageSchema,
      errors: { 403: "an installer without hub=, or for a hub that is enrolled, revoked, unknown, or whose claim it does not own" },
      handle: async ({ query, principal, actor }) => {
        if (principal?.role === "installer") {
          // No per-installer assignment survives enrolment, so an installer reads only a hub it holds the claim
          // of (pending, never enrolled, registered by this very token): nothing of anyone's home.
          const h = query.hub === undefined ? undefined : await d.store.getHub(query.hub);
          if (!h || h.status !== "pending" || h.enrolled || h.claimOwner !== principal.id) {
            await recordAudit(d.db, { actor, action: EVENTS_REFUSED_AUDIT_ACTION, subject: query.hub ?? "*", purpose: `api; ${describeEventsQuery(query)}`, at: d.now() });
            throw new HttpError(
              403,
              "forbidden",
              query.hub === undefined ? "an installer must name the hub (hub=)" : `an installer may read only the events of a pending hub whose claim it owns; not hub ${query.hub}`,
            );
          }
        }
        try {
          return { body: await readEventsAudited(d.db, d.store, query, { actor, purpose: "api", at: d.now(), streets: streetScope(principal) }) };
        } catch (e) {
          if (e instanceof EventsQueryError) throw new HttpError(400, "bad_query", e.message);
          throw e;
        }
      },
    }),
    route<z.infer<typeof s.claimBody>>({
      method: "POST",
      path: "/v1/hubs/{hub}/claim",
      roles: ENROLMENT,
      tag: "hubs",
      summary:
        "register a hub and get its one-time claim code; installers only for a new hub or one they registered that has not enrolled, rotation and re-admission (rotate) for admins only; audited",
      body: s.claimBody,
      response: s.claimSchema,
      errors: {
        403: "the token's role is not one of: installer, admin; or an installer asked to rotate, or for a hub an admin or another installer registered",
        409: "already enrolled (an admin may rotate) or revoked",
      },
      handle: async ({ params, body, principal, actor }) => {
        const hub = params.hub as string;
        checkHub(hub);
        // The installer's token id, not its name: a name can be given to a new token once the old is revoked.
        const installer = principal?.role === "installer" ? principal.id : undefined;
        try {
          const c = await d.registry.createClaim(hub, { rotate: body.rotate, installer });
          await recordAudit(d.db, { actor, action: CLAIM_AUDIT_ACTION[c.action], subject: hub, purpose: "api", at: d.now() });
          return { status: 201, body: { hub, code: c.code, expiresAt: c.expiresAt } };
        } catch (e) {
          if (e instanceof ClaimError) {
            if (e.code !== "bad_hub_id") await recordAudit(d.db, { actor, action: `hub.claim_refused:${e.code}`, subject: hub, purpose: "api", at: d.now() });
            throw new HttpError(e.code === "bad_hub_id" ? 400 : e.code === "forbidden" ? 403 : 409, e.code, e.message);
          }
          throw e;
        }
      },
    }),
  ];
  return [...routes, ...householdRoutes(d), ...reportRoutes(d), ...ledgerRoutes(d)];
}
