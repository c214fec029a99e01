// Coded values on the incident page (a contact's role, a call's status, a key's meaning…), translated by
// family under "incident." — or, for a code the catalogue does not know yet, the family's "unknown" text.
import type { TFunction } from "i18next";
import { tCode } from "../../i18n";

export const tIncident = (t: TFunction, family: string, code: string): string => tCode(t, `incident.${family}`, code);
