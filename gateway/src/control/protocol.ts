// The local control socket's requests: one JSON object a line each way. Only on-site callers
// reach this socket (filesystem permissions), which is what makes `valve reopen` an on-site act.
import { z } from "zod";

export const requestSchema = z.discriminatedUnion("cmd", [
  z.object({ cmd: z.literal("status") }).strict(),
  z.object({ cmd: z.literal("devices") }).strict(),
  z.object({ cmd: z.literal("test"), device: z.string().min(1).max(64) }).strict(),
  z.object({ cmd: z.literal("valve_reopen"), by: z.string().min(2).max(80), osUser: z.string().max(64) }).strict(),
]);
export type ControlRequest = z.infer<typeof requestSchema>;

export type ControlResponse = { ok: true; result: unknown } | { ok: false; error: string; details?: string[] };

/** Requests larger than this are refused unread: nothing legitimate is near it. */
export const MAX_REQUEST_BYTES = 16 * 1024;
