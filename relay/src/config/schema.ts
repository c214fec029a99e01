// The relay's configuration (YAML). As on the hub, every key is checked and an unknown key is an error.
import { isIP } from "node:net";
import { z } from "zod";
import { forwardersConfigSchema } from "../forwarders/config.js";
import { retentionConfigSchema } from "../retention/config.js";
import { upkeepConfigSchema } from "../households/upkeep.js";
import { telephonyConfigSchema } from "../telephony/config.js";
import { consoleConfigSchema } from "../console/auth/config.js";
import { stillsConfigSchema } from "../stills/config.js";

const port = z.number().int().min(0).max(65535);

/** `192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`: an address with an optional prefix length that fits it. */
function isCidr(s: string): boolean {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(s.trim());
  if (!m) return false;
  const v = isIP(m[1] as string);
  return v !== 0 && (m[2] === undefined || Number(m[2]) <= (v === 4 ? 32 : 128));
}

export const relayConfigSchema = z
  .object({
    relay: z
      .object({
        id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/).default("relay-1").describe("this instance's name (logs, metrics, MQTT client id)"),
        dataDir: z.string().min(1).describe("SQLite database (when used) and state; relative to this file"),
      })
      .strict(),
    log: z.object({ level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info") }).strict().default({ level: "info" }),
    store: z
      .discriminatedUnion("kind", [
        z.object({ kind: z.literal("sqlite"), path: z.string().min(1).default("relay.db") }).strict(),
        z.object({ kind: z.literal("postgres"), url: z.string().min(1).describe("postgres://user@host:5432/db"), schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default("anxin"), poolSize: z.number().int().min(1).max(100).default(10) }).strict(),
      ])
      .default({ kind: "sqlite", path: "relay.db" }),
    broker: z
      .discriminatedUnion("kind", [
        z
          .object({
            kind: z.literal("embedded").describe("the relay runs its own MQTT broker and authenticates hubs itself"),
            host: z.string().default("0.0.0.0"),
            port: port.default(1883),
            tls: z.object({ certFile: z.string(), keyFile: z.string() }).strict().optional(),
            allowPlaintext: z
              .boolean()
              .optional()
              .describe("true: listen without TLS on an address other than loopback (a warning at every start); without tls such a host is otherwise refused"),
            publicUrl: z.string().optional().describe("how hubs reach this broker (sent at enrolment); default: http.publicUrl's host with this port"),
          })
          .strict(),
        z
          .object({
            kind: z.literal("external").describe("hubs connect to an existing broker (Mosquitto, EMQX); the relay subscribes with a shared subscription"),
            url: z.string().min(1).describe("mqtt://host:1883 or mqtts://host:8883"),
            username: z.string().optional(),
            password: z.string().optional(),
            caFile: z.string().optional(),
            sharedGroup: z.string().regex(/^[A-Za-z0-9_-]{1,32}$/).nullable().default("relay").describe("null: plain subscription (only one relay instance)"),
            publicUrl: z.string().optional().describe("how hubs reach this broker (sent at enrolment); default: url"),
          })
          .strict(),
      ])
      .default({ kind: "embedded", host: "0.0.0.0", port: 1883 }),
    http: z
      .object({
        host: z.string().default("127.0.0.1"),
        port: port.default(8080),
        publicUrl: z.string().optional().describe("how hubs reach the enrolment endpoint"),
        trustedProxies: z
          .array(z.string().refine(isCidr, "expected an IP address or a CIDR range, e.g. 10.0.0.0/8 or fd00::/8"))
          .max(64)
          .default([])
          .describe("reverse proxies whose X-Forwarded-For names the client (for the enrolment rate limit); default none: the socket's address counts"),
        metrics: z
          .object({ host: z.string().default("127.0.0.1"), port })
          .strict()
          .optional()
          .describe("a separate listener for /metrics (and /healthz); when set, the public listener answers 404 for /metrics"),
      })
      .strict()
      .default({ host: "127.0.0.1", port: 8080, trustedProxies: [] }),
    ingest: z
      .object({
        batchMaxEvents: z.number().int().min(1).max(10000).default(500),
        batchMaxWaitMs: z.number().int().min(0).max(1000).default(5),
        maxPayloadBytes: z.number().int().min(1024).max(1048576).default(65536),
        clockSkewFlagMs: z.number().int().min(1000).default(300000).describe("events whose hub time is further than this from the relay's are flagged (never dropped)"),
        verifyThreads: z.number().int().min(0).max(16).optional().describe("worker threads for parsing, validating and verifying events; default none on 2 cores or fewer, else cores − 1 (at most 4)"),
      })
      .strict()
      .default({ batchMaxEvents: 500, batchMaxWaitMs: 5, maxPayloadBytes: 65536, clockSkewFlagMs: 300000 }),
    supervision: z
      .object({
        heartbeatIntervalS: z.number().int().min(5).max(86400).default(60).describe("what hubs are told to use; must match the hubs' uplink.heartbeatS"),
        missedHeartbeats: z.number().int().min(1).max(100).default(3),
        checkEveryS: z.number().int().min(1).max(3600).default(10),
        plannedStopGraceS: z
          .number()
          .int()
          .min(0)
          .max(86400)
          .default(300)
          .describe("a hub that announced a signed planned stop (a restart, an update) has this long to come back before a hub_offline incident opens; less if the hub says it will be back sooner"),
      })
      .strict()
      .default({ heartbeatIntervalS: 60, missedHeartbeats: 3, checkEveryS: 10, plannedStopGraceS: 300 }),
    secrets: z
      .object({
        masterKeyFile: z
          .string()
          .min(1)
          .optional()
          .describe("a file holding the master key that seals hub signing keys (owner-only); relative to this file. Default: the systemd credential, then localMasterKeyFile"),
        masterKeyCredential: z
          .string()
          .regex(/^[A-Za-z0-9_.-]{1,64}$/)
          .default("anxin-relay-master-key")
          .describe("the credential's name in $CREDENTIALS_DIRECTORY (LoadCredential=/LoadCredentialEncrypted= in the unit)"),
        localMasterKeyFile: z
          .string()
          .min(1)
          .nullable()
          .default("relay-master.key")
          .describe("SQLite only: where a master key is kept (generated at first start) when neither of the above gives one; relative to this file. null: never, a missing master key stops the start"),
      })
      .strict()
      .prefault({})
      .describe("the master key that seals hub signing keys in the store (docs/operations.md)"),
    enrolment: z
      .object({ claimCodeTtlS: z.number().int().min(60).max(30 * 86400).default(86400) })
      .strict()
      .default({ claimCodeTtlS: 86400 }),
    escalation: z
      .object({
        enabled: z.boolean().default(true).describe("open incidents from alarms and run their call trees"),
        pollMs: z.number().int().min(50).max(60_000).default(1000).describe("how often each instance looks for due escalation timers (a commit also wakes it at once)"),
        claimS: z.number().int().min(10).max(3600).default(60).describe("how long a claimed step stays this instance's; longer than a call request with all its retries"),
        followUpAfterS: z.number().int().min(0).max(90 * 86400).default(86400).describe("from resolution to the follow-up (return) visit falling due"),
        policiesFile: z.string().min(1).optional().describe("YAML/JSON escalation policies replacing the defaults (docs/escalation.md); relative to this file"),
      })
      .strict()
      .prefault({}),
    households: z
      .object({
        riskScoringFile: z.string().min(1).optional().describe("YAML risk-scoring rules replacing the shipped config/risk-scoring.yaml (docs/households.md); relative to this file"),
        upkeep: upkeepConfigSchema.prefault({}).describe("the upkeep an approved plan implies: self-tests, batteries, re-assessment, and the sweep raising overdue alerts (docs/households.md)"),
      })
      .strict()
      .prefault({}),
    reports: z
      .object({
        cjkFontFile: z
          .string()
          .min(1)
          .optional()
          .describe("a TrueType/OpenType font with Chinese glyphs for the commissioning report's PDF (docs/commissioning-report.md); relative to this file. Default: the first of Debian's fonts-wqy-microhei, fonts-noto-cjk, fonts-wqy-zenhei, fonts-droid-fallback found; none: English-only PDFs"),
        cjkFontName: z.string().min(1).max(128).optional().describe("the PostScript name of the face to use when cjkFontFile is a collection (.ttc), e.g. WenQuanYiMicroHei"),
        timeZone: z
          .string()
          .refine((tz) => {
            try {
              new Intl.DateTimeFormat("en", { timeZone: tz });
              return true;
            } catch {
              return false;
            }
          }, "not an IANA time zone (e.g. Asia/Shanghai)")
          .default("Asia/Shanghai")
          .describe("the time zone the reports show their times in"),
      })
      .strict()
      .prefault({}),
    sms: z
      .object({
        inboundNumber: z
          .string()
          .regex(/^\+[1-9]\d{6,14}$/, "an E.164 number such as +8613800000000")
          .optional()
          .describe("the relay's inbound number that hubs text their alarms to when broadband is down; texts the provider delivers for any other number are ignored. Default: any number the telephony provider delivers"),
      })
      .strict()
      .prefault({})
      .describe("inbound SMS, the alarms' last-resort path (docs/relay.md)"),
    telephony: telephonyConfigSchema.prefault({ kind: "console" }).describe("how calls and SMS go out: console (demo, calls nobody), http (the generic gateway), twilio"),
    forwarders: forwardersConfigSchema.prefault({}).describe("where incident updates are pushed: the duty platform, the district and street operations centres"),
    retention: retentionConfigSchema.prefault({}).describe("how long each kind of row is kept, and the sweep that deletes the rest (docs/configuration.md)"),
    console: consoleConfigSchema.prefault({}).describe("the web console's sign-in sessions: idle timeout and lifetime (docs/console.md)"),
    stills: stillsConfigSchema.prefault({}).describe("camera stills uploaded by hubs after an alarm: limits and retention (docs/camera.md)"),
  })
  .strict();

export type RelayConfig = z.infer<typeof relayConfigSchema>;
