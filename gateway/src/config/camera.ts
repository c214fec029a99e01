// The `camera` section: a home camera read only when an alarm is raised (a few stills, never a stream), with the
// elder's recorded consent, uploaded signed over HTTPS to the relay. docs/camera.md.
import { z } from "zod";
import { isLoopback } from "../uplink/settings.js";

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

/** A URL with no user or password in it: credentials live in passwordFile, never in this file or a log. */
function urlProblem(s: string, protocols: readonly string[]): string | null {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return "not a URL";
  }
  if (!protocols.includes(u.protocol)) return `must start with ${protocols.map((p) => `${p}//`).join(" or ")}`;
  if (u.username || u.password) return "must not carry a user name or password (give username and passwordFile instead)";
  return null;
}

export const cameraSchema = z
  .object({
    snapshotUrl: z
      .string()
      .superRefine((s, ctx) => {
        const p = urlProblem(s, ["http:", "https:"]);
        if (p) ctx.addIssue({ code: "custom", message: p });
      })
      .describe("the camera's still-image address on the home network (ONVIF GetSnapshotUri, e.g. http://192.168.1.64/onvif-http/snapshot?Profile_1)"),
    username: z
      .string()
      .min(1)
      .max(64)
      // Quotes, backslashes and non-ASCII would need RFC 7616's username* form; cameras do not use it.
      .regex(/^[\x20-\x7e]+$/, "printable ASCII only")
      .refine((s) => !/["\\]/.test(s), "no quote or backslash")
      .describe("the camera account (HTTP digest authentication)"),
    passwordFile: z
      .string()
      .min(1)
      .optional()
      .describe("a file holding the camera password, readable by the hub's user only (0600); default <dataDir>/camera-password"),
    consent: z
      .object({
        recorded: z.boolean().describe("true only once the elder's consent to the camera is recorded (at the relay's household record)"),
        reference: z.string().max(64).regex(/^[\x20-\x7e]*$/, "printable ASCII only").optional().describe("where it is recorded, e.g. the household's id and date (no names)"),
      })
      .strict()
      .optional()
      .describe("without consent.recorded: true the hub never reads the camera"),
    stills: z.number().int().min(1).max(10).default(3).describe("stills read after each alarm"),
    intervalMs: ms(200, 10_000).default(1500).describe("between two stills"),
    timeoutMs: ms(500, 30_000).default(5000).describe("one still's whole read (connect, digest round trip, body)"),
    maxBytes: z.number().int().min(1024).max(2 * 1024 * 1024).default(2 * 1024 * 1024).describe("a larger answer is abandoned"),
    upload: z
      .object({
        url: z
          .string()
          .superRefine((s, ctx) => {
            const p = urlProblem(s, ["https:", "http:"]);
            if (p) return void ctx.addIssue({ code: "custom", message: p });
            // Images of the home never cross a network in clear: http only to this machine (tests, a local relay).
            const u = new URL(s);
            if (u.protocol === "http:" && !isLoopback(u.hostname)) ctx.addIssue({ code: "custom", message: "must be the relay's https:// address (http only to this machine)" });
          })
          .describe("the relay's HTTPS base address (as given to anxin-hub provision --relay)"),
        caFile: z.string().min(1).optional().describe("PEM CA bundle that signs the relay's certificate (pinned); default the system's CAs"),
        attempts: z.number().int().min(1).max(20).default(6).describe("tries per still before it is dropped"),
        retryMs: ms(100, 600_000).default(2000).describe("first wait between tries, doubled each time"),
        timeoutMs: ms(1000, 120_000).default(15_000).describe("one upload request"),
      })
      .strict(),
  })
  .strict();

export type CameraConfig = z.infer<typeof cameraSchema>;
