// What a key pressed during a voice call means, per target. The spoken message names the keys
// (messages.ts); this table is the one place that decides what each answer does to the escalation.
//
//   elder:           1 = "I need help"          → acknowledged, incident confirmed
//                    2 = "I am fine"            → acknowledged (the operator decides: false alarm or not)
//   any contact,     1 = "I will go to the door" → acknowledged, recorded as a responder on the way
//   on-site team:    2 = "I cannot"             → declined: the tree moves on without waiting
//   maintenance:     1 = "I will check it"      → acknowledged
//   arrival check:   1 = "I am with the elder"  → arrival recorded, the tree stays stopped
//   (the responder)  2 = "I could not get there" → the tree resumes after the responder's step (arrival.ts)
// An answered call without a key, an SMS (delivered or not), or any other key is not an acknowledgement.
import type { TargetRole } from "./plan.js";

export type KeyMeaning = "help_needed" | "fine" | "going_to_door" | "will_check" | "declined";
export type ArrivalMeaning = "with_elder" | "could_not_get_there";

export const GATHER_DIGITS = ["1", "2"];

export function meaningOf(role: TargetRole, digits: string | undefined, maintenance: boolean): KeyMeaning | undefined {
  const key = digits?.trim().charAt(0);
  if (!key) return undefined;
  if (maintenance) return key === "1" ? "will_check" : key === "2" ? "declined" : undefined;
  if (role === "elder") return key === "1" ? "help_needed" : key === "2" ? "fine" : undefined;
  return key === "1" ? "going_to_door" : key === "2" ? "declined" : undefined;
}

export function acknowledges(m: KeyMeaning | undefined): boolean {
  return m === "help_needed" || m === "fine" || m === "going_to_door" || m === "will_check";
}

/** An answer to the arrival check: by key on a call, or as the reply to its SMS (the gateway's callback carries it). */
export function arrivalMeaningOf(digits: string | undefined): ArrivalMeaning | undefined {
  const key = digits?.trim().charAt(0);
  return key === "1" ? "with_elder" : key === "2" ? "could_not_get_there" : undefined;
}
