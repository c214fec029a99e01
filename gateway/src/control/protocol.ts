// The local control socket's requests: one JSON object a line each way. Only on-site callers
// reach this socket (filesystem permissions), which is what makes `valve reopen` an on-site act.
import { z } from "zod";

export const requestSchema = z.discriminatedUnion("cmd", [
  z.object({ cmd: z.literal("status") }).strict(),
  z.object({ cmd: z.literal("devices") }).strict(),
  z.object({ cmd: z.literal("cellular_test") }).strict(),
  z.object({ cmd: z.literal("test"), device: z.string().min(1).max(64) }).strict(),
  z.object({ cmd: z.literal("valve_reopen"), by: z.string().min(2).max(80), osUser: z.string().max(64) }).strict(),
  z
    .object({
      cmd: z.literal("commission_start"),
      /** The relay's household plan (as GET /v1/households/{id}/plan returns it); checked by the daemon. */
      plan: z.record(z.string(), z.unknown()),
      household: z.string().min(1).max(64).optional(),
      installer: z.string().min(1).max(64),
      waivers: z.record(z.string().min(1).max(96), z.string().min(1).max(200)).default({}),
      stepTimeoutS: z.number().int().min(1).max(3600).default(120),
      ackTimeoutS: z.number().int().min(1).max(3600).optional(),
    })
    .strict(),
  /** `watch`: progress is streamed until the session ends (or the caller leaves), then the last status. */
  z
    .object({
      cmd: z.literal("commission_setup"),
      /** The household plan (as for commission_start) and the district's kit (commission/kit.ts), both checked by the daemon. */
      plan: z.record(z.string(), z.unknown()),
      kit: z.record(z.string(), z.unknown()),
      pairSeconds: z.number().int().min(1).max(254).default(120),
    })
    .strict(),
  z.object({ cmd: z.literal("commission_status"), watch: z.boolean().default(false) }).strict(),
  /** Checks the daemon's configuration file and restarts the hub from it (refused during an alarm). */
  z.object({ cmd: z.literal("reload"), by: z.string().min(1).max(80) }).strict(),
  z.object({ cmd: z.literal("commission_waive"), target: z.string().min(1).max(96), reason: z.string().min(1).max(200), by: z.string().min(1).max(64) }).strict(),
  z
    .object({
      cmd: z.literal("pair"),
      seconds: z.number().int().min(1).max(254).default(120),
      expect: z.array(z.string().regex(/^0x[0-9a-fA-F]{16}$/, "an IEEE address: 0x and 16 hex digits")).max(64).optional(),
    })
    .strict(),
]);
export type ControlRequest = z.infer<typeof requestSchema>;
/** A request as a caller writes it (defaults not yet applied). */
export type ControlRequestInput = z.input<typeof requestSchema>;

export type ControlResponse = { ok: true; result: unknown } | { ok: false; error: string; details?: string[] };

/** A long request (pair) sends progress lines before its one response line. */
export interface ControlProgress {
  progress: unknown;
}

export type Progress = (p: unknown) => void;

/** Requests larger than this are refused unread: nothing legitimate is near it. */
export const MAX_REQUEST_BYTES = 16 * 1024;
