// A hub's care plan: who lives there, whom to call and in which order, who goes on site when nobody can be
// reached, and which numbers dispatch the public services. Personal data, kept to the fields the call tree
// needs (PIPL: minimum necessary); it lives only in the relay's store and is read through an audited path.
import { z } from "zod";

export const CONTACT_ROLES = ["emergency_contact", "neighbourhood_committee", "property_fire_station", "volunteer", "relative_neighbour"] as const;
export type ContactRole = (typeof CONTACT_ROLES)[number];

export const RISK_LEVELS = ["low", "medium", "high"] as const;

/** E.164, or a short service number (110, 119, 120, a gas company's hotline such as 95158). */
const e164 = z.string().regex(/^\+[1-9]\d{6,14}$/, "an E.164 number such as +8613800000000");
const serviceNumber = z.string().regex(/^(\+[1-9]\d{6,14}|\d{3,8})$/, "an E.164 number or a short service number (e.g. 110, 95158)");
const id = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, "lower-case letters, digits, _ or - (up to 32)");

export const contactSchema = z
  .object({
    id: id.describe("stable id within this plan: named in timelines instead of the person"),
    name: z.string().min(1).max(64),
    phone: e164,
    role: z.enum(CONTACT_ROLES),
    /** e.g. "has a key", "lives upstairs": helps the operator choose whom to send. */
    note: z.string().max(200).optional(),
  })
  .strict();

export const carePlanSchema = z
  .object({
    elder: z
      .object({
        name: z.string().min(1).max(64),
        phone: e164,
        address: z.string().min(1).max(200),
        riskLevel: z.enum(RISK_LEVELS).default("medium"),
      })
      .strict(),
    /** Called in this order within a role (emergency contacts one after another). */
    contacts: z.array(contactSchema).max(30).default([]),
    onsiteTeam: z
      .object({ name: z.string().min(1).max(64).describe("the platform's safety team on duty"), phone: e164 })
      .strict()
      .describe("goes to the home when nobody else can be reached"),
    dispatch: z
      .object({
        police: serviceNumber.default("110"),
        fire: serviceNumber.default("119"),
        ambulance: serviceNumber.default("120"),
        gasCompany: serviceNumber.optional(),
      })
      .strict()
      .default({ police: "110", fire: "119", ambulance: "120" }),
    /** Installed devices by id → model, so false-alarm rates can be reported per device model. */
    devices: z.record(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "a hub device id"), z.object({ model: z.string().min(1).max(120) }).strict()).default({}),
    /** Spoken and SMS messages in this language. */
    language: z.enum(["zh", "en"]).default("zh"),
  })
  .strict()
  .superRefine((p, ctx) => {
    const seen = new Set<string>();
    p.contacts.forEach((c, i) => {
      if (seen.has(c.id)) ctx.addIssue({ code: "custom", message: `contact id "${c.id}" used twice`, path: ["contacts", i, "id"] });
      seen.add(c.id);
      if (c.id === "elder" || c.id === "onsite_team") ctx.addIssue({ code: "custom", message: `"${c.id}" is reserved`, path: ["contacts", i, "id"] });
    });
  });

export type CarePlan = z.infer<typeof carePlanSchema>;
export type CarePlanInput = z.input<typeof carePlanSchema>;
export type Contact = z.infer<typeof contactSchema>;

/** Validation problems as "path: message" lines, without the values (they are personal data). */
export function carePlanProblems(err: z.ZodError): string[] {
  return err.issues.map((i) => `${i.path.map(String).join(".") || "(plan)"}: ${i.message}`);
}
