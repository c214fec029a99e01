// The second path as commissioning proves it: the module answers, has its SIM and a network, every alarm
// text this hub can produce fits one SMS, and a test SMS (second_path_test) was handed to the module.
import { longestCompactLength, SMS_MAX_CHARS } from "../../../protocol/sms-compact.js";
import type { SecondPathCheck } from "../../../protocol/commissioning.js";
import type { CellularPath } from "./index.js";
import { cellularHealth } from "./status.js";

export type SecondPathResult = Omit<SecondPathCheck, "result" | "waiver"> & { ok: boolean };

export async function checkSecondPath(c: CellularPath, hub: string, deviceIds: readonly string[], rooms: readonly string[]): Promise<SecondPathResult> {
  const st = await c.modem.checkNow();
  const m = st.modem;
  // Rooms are dropped from a text that would not fit with them: the ids alone must fit.
  const longestSms = longestCompactLength(hub, deviceIds);
  const roomsDropped = longestCompactLength(hub, deviceIds, rooms) > SMS_MAX_CHARS;
  const base = {
    longestSms,
    ...(m ? { sim: m.sim, registration: m.registration, rssiDbm: m.rssiDbm, operator: m.operator?.slice(0, 64) ?? null } : {}),
  };
  const fail = (detail: string): SecondPathResult => ({ ok: false, ...base, detail });
  if (longestSms > SMS_MAX_CHARS) return fail(`the longest alarm text would be ${longestSms} characters, over ${SMS_MAX_CHARS}: shorten the hub or device ids`);
  if (st.state !== "ready" || !m) return fail(`the cellular module on ${st.port} does not answer (${st.error ?? st.state})`);
  const health = cellularHealth(m);
  if (health === "no_sim") return fail(`no usable SIM (${m.sim})`);
  if (health === "no_service") return fail(`not registered on a network (${m.registration})`);
  if (c.status().problem) return fail(c.status().problem!);
  const t = await c.test();
  if (!t.ok) return fail(`the test SMS failed: ${t.reason ?? "unknown"}`);
  return { ok: true, ...base, testedAt: t.at, ...(t.mr !== undefined ? { mr: t.mr } : {}), ...(roomsDropped ? { detail: "the longest alarm texts leave the room out to fit one SMS" } : {}) };
}
