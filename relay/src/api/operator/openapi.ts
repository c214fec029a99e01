// The OpenAPI 3.1 description of the operator API, generated from the route table and its zod schemas
// (z.toJSONSchema), served at /v1/openapi.json and saved as docs/openapi.json.
import { z } from "zod";
import type { OperatorRoute } from "./route.js";
import { errorSchema } from "./schemas.js";

// The document names its dialect once (jsonSchemaDialect); each schema need not repeat it.
const json = (schema: z.ZodType, io: "input" | "output") => {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: "draft-2020-12", io, unrepresentable: "any" }) as Record<string, unknown>;
  return rest;
};

export function openApiDocument(routes: OperatorRoute[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: "path", required: true, schema: { type: "string" } }));
    const query: unknown[] = [];
    if (r.query) {
      const js = json(r.query, "input") as { properties?: Record<string, unknown>; required?: string[] };
      for (const [name, schema] of Object.entries(js.properties ?? {})) query.push({ name, in: "query", required: js.required?.includes(name) ?? false, schema });
    }
    const responses: Record<string, unknown> = {
      [String(r.okStatus ?? (r.method === "POST" && r.path.endsWith("/claim") ? 201 : 200))]: { description: "OK", content: { "application/json": { schema: json(r.response, "output") } } },
    };
    const ok = Object.values(responses)[0] as { content: Record<string, unknown> };
    for (const [type, d] of Object.entries(r.alternates ?? {})) ok.content[type] = { schema: { type: "string", ...(type.startsWith("text/") ? {} : { contentEncoding: "binary" }), description: d } };
    const err = (d: string) => ({ description: d, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
    if (r.body || r.query) responses["400"] = err("invalid input: the message says which field and why");
    if (r.roles !== "public") {
      responses["401"] = err("no, unknown or revoked bearer token");
      responses["403"] = err(`the token's role is not one of: ${r.roles.join(", ")}`);
    }
    for (const [code, d] of Object.entries(r.errors ?? {})) responses[code] = err(d);
    (paths[r.path] ??= {})[r.method.toLowerCase()] = {
      summary: r.summary,
      tags: [r.tag],
      ...(r.roles === "public" ? { security: [] } : { "x-roles": r.roles }),
      ...(params.length || query.length ? { parameters: [...params, ...query] } : {}),
      ...(r.body ? { requestBody: { required: true, content: { "application/json": { schema: json(r.body, "input") } } } } : {}),
      responses,
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "anxin-relay operator API",
      version,
      description:
        "The duty operator's side of Anxin's closed loop: incidents and their timelines, the human steps of the lifecycle, operator alerts, audited care-plan reads and the false-alarm report; the household register (risk assessment, kit plan, consent, approval); installers register hubs and the homes they assess. See docs/operator-api.md.",
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    security: [{ bearer: [] }],
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "a token from `anxin-relay token add --role <operator|admin|installer> --name <name>`" } },
      schemas: { Error: json(errorSchema, "output") },
    },
    paths,
  };
}
