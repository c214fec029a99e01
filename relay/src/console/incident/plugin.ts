// The console's incident page routes under /console/api, for operators and admins (app.consoleUser):
//   GET  /console/api/incidents/:id/call-tree         where the calls stand, and what may be done now
//   GET  /console/api/incidents/:id/care-plan         the hub's care plan, masked
//   POST /console/api/incidents/:id/care-plan/reveal  the full plan, recorded in the audit log first
// The lifecycle actions themselves are the operator API's, served under /console/api/v1 (operator/routes.ts).
// An incident whose household lies outside the account's streets answers as one that does not exist.
import type { FastifyError, FastifyPluginAsync, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors, serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { EscalationPlan } from "../../escalation/plan.js";
import { CarePlanError, readCarePlan } from "../../careplans/store.js";
import { inStreetScope } from "../../households/street-scope.js";
import type { IncidentState } from "../../incidents/lifecycle.js";
import type { ConsolePageDeps } from "../page-deps.js";
import { consoleUserOf } from "../queue/user.js";
import { allowedActions } from "./actions.js";
import { buildCallTree } from "./call-tree.js";
import { loadIncidentFacts, loadTreeRows, readMaskedCarePlan, type IncidentFacts } from "./load.js";
import { callTreeResponse, errorSchema, idParams, maskedPlanResponse, revealResponse } from "./schemas.js";

/** The audit purpose of a reveal: which incident it was for. */
export const revealPurpose = (id: string) => `console reveal for incident ${id}`;

class NotFound extends Error {}

export const consoleIncidentPlugin: FastifyPluginAsync<ConsolePageDeps> = async (app, d) => {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof NotFound) return reply.code(404).send({ error: "not_found", message: "no such incident" });
    if (hasZodFastifySchemaValidationErrors(err)) return reply.code(400).send({ error: "bad_request", message: err.message });
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return reply.code(err.statusCode).send({ error: "bad_request", message: err.message });
    d.log.error({ err, route: req.routeOptions.url }, "console incident: request failed");
    return reply.code(500).send({ error: "internal", message: "internal error" });
  });

  const staff = app.consoleUser(["operator", "admin"]);
  const r = app.withTypeProvider<ZodTypeProvider>();

  /** The incident, if the signed-in person's streets reach it. */
  const visible = async (req: FastifyRequest, id: string): Promise<IncidentFacts> => {
    const facts = await loadIncidentFacts(d.db, id);
    if (!facts || !inStreetScope(consoleUserOf(req).streets, facts.street)) throw new NotFound();
    return facts;
  };

  r.get(
    "/console/api/incidents/:id/call-tree",
    { preHandler: staff, schema: { params: idParams, response: { 200: callTreeResponse, 404: errorSchema } } },
    async (req) => {
      const f = await visible(req, req.params.id);
      const i = f.row;
      const [{ timers, attempts }, care] = await Promise.all([loadTreeRows(d.db, i.id), readMaskedCarePlan(d.db, i.hub)]);
      const plan = JSON.parse(i.plan) as EscalationPlan;
      const who = care.state === "ok" ? care.who : () => undefined;
      const tree = buildCallTree({ id: i.id, type: i.type, escalation: i.escalation, escalation_pass: Number(i.escalation_pass), plan }, timers, attempts, who);
      const closedAt = i.closed_at === null ? null : Number(i.closed_at);
      return {
        incident: { id: i.id, hub: i.hub, type: i.type, severity: i.severity, state: i.state as IncidentState, homeMasked: f.homeMasked, openedAt: Number(i.opened_at), closedAt },
        allowedActions: allowedActions({ state: i.state as IncidentState, type: i.type, escalation: i.escalation, followUpRecorded: i.follow_up_recorded === 1, closedAt }),
        takenBy: f.takenBy,
        serverNow: d.now(),
        tree,
      };
    },
  );

  r.get(
    "/console/api/incidents/:id/care-plan",
    { preHandler: staff, schema: { params: idParams, response: { 200: maskedPlanResponse, 404: errorSchema, 409: errorSchema } } },
    async (req, reply) => {
      const { row } = await visible(req, req.params.id);
      const got = await readMaskedCarePlan(d.db, row.hub);
      if (got.state === "invalid") return reply.code(409).send({ error: "invalid_care_plan", message: "the stored care plan no longer validates" });
      return { hub: row.hub, plan: got.state === "none" ? null : { version: got.version, updatedAt: got.updatedAt, ...got.plan } };
    },
  );

  r.post(
    "/console/api/incidents/:id/care-plan/reveal",
    { preHandler: staff, schema: { params: idParams, response: { 200: revealResponse, 404: errorSchema, 409: errorSchema } } },
    async (req, reply) => {
      const user = consoleUserOf(req);
      const { row } = await visible(req, req.params.id);
      const at = d.now();
      const purpose = revealPurpose(row.id);
      // readCarePlan writes the audit row before the plan is handed out: a read it cannot record fails.
      let got;
      try {
        got = await readCarePlan(d.db, row.hub, { actor: user.actor, purpose, at });
      } catch (e) {
        if (e instanceof CarePlanError) return reply.code(409).send({ error: "invalid_care_plan", message: "the stored care plan no longer validates" });
        throw e;
      }
      if (!got) return reply.code(404).send({ error: "no_care_plan", message: `no care plan for hub ${row.hub}` });
      d.log.info({ incident: row.id, hub: row.hub, actor: user.actor }, "console: care plan revealed");
      return { hub: got.hub, version: got.version, updatedAt: got.updatedAt, plan: got.plan, revealed: { at, by: user.actor, action: "careplan.read", purpose } };
    },
  );
};
