// The care plan as the incident page shows it before anyone asks to see more: each person's role, the first
// character of their name and the last four digits of their number — enough to tell the contacts apart and
// match a number on a phone's screen, not enough to identify or call anyone. The full plan only leaves the
// relay through the audited reveal (reveal.ts).
import type { CarePlan } from "../../careplans/schema.js";
import { maskAddress, maskName } from "../../households/mask.js";

/** +8613800000001 → +86*******0001; a short service number (110, 95158) is public and shown as is. */
export function maskPhone(n: string): string {
  if (!n.startsWith("+")) return n;
  const keep = 4;
  const cc = n.startsWith("+86") ? 3 : 2;
  if (n.length <= cc + keep) return `${n.slice(0, cc)}${"*".repeat(Math.max(0, n.length - cc))}`;
  return `${n.slice(0, cc)}${"*".repeat(n.length - cc - keep)}${n.slice(-keep)}`;
}

export interface MaskedPerson {
  /** elder, onsite_team or the contact's care-plan id. */
  ref: string;
  role: string;
  name: string;
  phone: string;
  /** The contact's note ("has a key") exists; its text only in the reveal. */
  hasNote: boolean;
}

export interface MaskedCarePlan {
  elder: { name: string; phone: string; address: string; riskLevel: string };
  contacts: MaskedPerson[];
  onsiteTeam: { name: string; phone: string };
  /** The public services' numbers: not personal data. */
  dispatch: { police: string; fire: string; ambulance: string; gasCompany?: string };
  language: string;
}

export function maskCarePlan(p: CarePlan): MaskedCarePlan {
  return {
    elder: { name: maskName(p.elder.name), phone: maskPhone(p.elder.phone), address: maskAddress(p.elder.address), riskLevel: p.elder.riskLevel },
    contacts: p.contacts.map((c) => ({ ref: c.id, role: c.role, name: maskName(c.name), phone: maskPhone(c.phone), hasNote: c.note !== undefined && c.note !== "" })),
    // The team's name is the platform's, not a person's; its duty line is still masked like every number.
    onsiteTeam: { name: p.onsiteTeam.name, phone: maskPhone(p.onsiteTeam.phone) },
    dispatch: { ...p.dispatch },
    language: p.language,
  };
}

/** Who a call-tree target is, masked; undefined when the plan no longer names them. */
export function maskedTarget(p: CarePlan | undefined, ref: string): { name: string; phone: string } | undefined {
  if (!p) return undefined;
  if (ref === "elder") return { name: maskName(p.elder.name), phone: maskPhone(p.elder.phone) };
  if (ref === "onsite_team") return { name: p.onsiteTeam.name, phone: maskPhone(p.onsiteTeam.phone) };
  const c = p.contacts.find((x) => x.id === ref);
  return c ? { name: maskName(c.name), phone: maskPhone(c.phone) } : undefined;
}
