// Realistic assessments for the household tests: one for each risk level under the shipped rules.
import { assessmentSchema, type Assessment } from "../../relay/src/households/schema.js";

export const FLAT = [
  { id: "bedroom", kind: "bedroom" },
  { id: "living", kind: "living" },
  { id: "kitchen", kind: "kitchen" },
  { id: "bathroom", kind: "bathroom" },
] as const;

/** A 72-year-old living with a spouse, independent, in a flat with a gas stove. */
export const LOW: Assessment = assessmentSchema.parse({
  livingAlone: false,
  age: 72,
  chronicIllness: false,
  mobility: "independent",
  fallsLastYear: 0,
  cognition: "normal",
  smokes: false,
  cooking: "regular",
  electricalHazards: false,
  housing: "apartment",
  rooms: FLAT,
  gasAppliances: [{ kind: "stove", room: "kitchen" }],
});
/** An 82-year-old living alone with hypertension, still independent: 2 + 2 + 1 + 1 = 6. */
export const MEDIUM: Assessment = { ...LOW, livingAlone: true, age: 82, chronicIllness: true };
/** An 85-year-old living alone in an old lane house who smokes and forgets the stove; a gas water heater. */
export const HIGH: Assessment = {
  ...MEDIUM,
  age: 85,
  smokes: true,
  cooking: "leaves_unattended",
  housing: "old_lane_house",
  gasAppliances: [
    { kind: "stove", room: "kitchen" },
    { kind: "water_heater", room: "bathroom" },
  ],
};
/** Bed-bound, cared for by family: few points, but the floor makes it high. */
export const BEDBOUND: Assessment = { ...LOW, age: 78, mobility: "bedbound" };
