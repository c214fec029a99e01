// The demo's care plan and the telephony script that answers its calls. Everyone here is fictional: the
// names are made up and the numbers sit in a range no one is given, and the console adapter calls nobody.
import type { CarePlanInput } from "../relay/src/careplans/schema.js";
import type { ConsoleScriptRule } from "../relay/src/telephony/config.js";
import { maskNumber } from "../relay/src/telephony/provider-http.js";

export const DEMO_PLAN: CarePlanInput = {
  elder: { name: "Zhou Meiling (fictional)", phone: "+8613800001001", address: "Room 101, 7 Demo Lane (fictional)", riskLevel: "high" },
  contacts: [
    { id: "son", name: "Zhou Jian (fictional)", phone: "+8613800001002", role: "emergency_contact", note: "has a key, lives 10 minutes away" },
    { id: "daughter", name: "Zhou Ting (fictional)", phone: "+8613800001003", role: "emergency_contact" },
    { id: "committee", name: "Residents' committee duty desk (fictional)", phone: "+8613800001004", role: "neighbourhood_committee" },
  ],
  onsiteTeam: { name: "Platform safety team (fictional)", phone: "+8613800001009" },
  dispatch: { gasCompany: "95158" },
  // The false-alarm report counts per device model from this map.
  devices: { "kitchen-gas": { model: "pemtech-pt495-lel" }, "kitchen-co": { model: "greystone-cmd5b4" }, "gas-valve": { model: "rotork-iq-modbus" } },
  language: "en",
};

/**
 * How the console telephony answers: the elder does not pick up, the committee's line is busy, the son
 * answers and presses 1 ("I will go to the door"). Short delays keep the demo under a minute; the default
 * fire/gas policy moves on at once when every call of a step ends without anyone reached.
 */
export const DEMO_SCRIPT: ConsoleScriptRule[] = [
  { to: "+8613800001001", status: "no_answer", afterMs: 4000 },
  { to: "+8613800001004", status: "busy", afterMs: 2000 },
  { to: "+8613800001002", status: "answered", digits: "1", afterMs: 3000 },
];

/** "the elder", "emergency contact son", … for a masked number as the console adapter prints it. */
export function whoIs(masked: string): string | undefined {
  if (maskNumber(DEMO_PLAN.elder.phone) === masked) return "the elder";
  if (maskNumber(DEMO_PLAN.onsiteTeam.phone) === masked) return "the platform's on-site team";
  const c = DEMO_PLAN.contacts?.find((x) => maskNumber(x.phone) === masked);
  return c ? `${c.role.replace(/_/g, " ")} "${c.id}"` : undefined;
}
