// The incident page's calls: the operator API's incident routes (served again under /console/api/v1) and the
// page's own (call tree, masked care plan, the audited reveal). Shapes as the relay sends them.
import type { ActionName } from "../incident/actions";
import type { TimelineEntry } from "../incident/timeline";
import { request } from "./client";

export type { ActionName, TimelineEntry };

export interface Incident {
  id: string;
  hub: string;
  type: string;
  state: string;
  severity: string;
  device: string | null;
  deviceModel: string | null;
  escalation: string;
  acknowledgedAt: number | null;
  acknowledgedBy: string | null;
  falseAlarmReason: string | null;
  followUpRecorded: boolean;
  alarms: number;
  openedAt: number;
  updatedAt: number;
  closedAt: number | null;
}

export interface IncidentDetail {
  incident: Incident;
  timeline: TimelineEntry[];
}

export interface TreeAttempt {
  id: string;
  pass: number;
  round: number;
  arrivalCheck: boolean;
  channel: string;
  status: string;
  meaning: string | null;
  digits: string | null;
  requestedAt: number;
  placedAt: number | null;
  outcomeAt: number | null;
}

export interface TreeTarget {
  ref: string;
  role: string;
  channel: string;
  who: { name: string; phone: string } | null;
  attempts: TreeAttempt[];
}

export interface TreeStep {
  index: number;
  name: string;
  waitS: number;
  repeat: number;
  status: "done" | "current" | "next" | "not_reached";
  targets: TreeTarget[];
}

export interface CallTreeView {
  incident: { id: string; hub: string; type: string; severity: string; state: string; homeMasked: string; openedAt: number; closedAt: number | null };
  allowedActions: ActionName[];
  takenBy: { username: string; displayName: string; at: number } | null;
  serverNow: number;
  tree: {
    escalation: string;
    pass: number;
    startDelayS: number;
    current: { label: string; index: number; of: number; nextAt?: number } | null;
    steps: TreeStep[];
  };
}

export interface MaskedPerson {
  ref: string;
  role: string;
  name: string;
  phone: string;
  hasNote: boolean;
}

export interface MaskedCarePlan {
  hub: string;
  plan: {
    version: number;
    updatedAt: number;
    elder: { name: string; phone: string; address: string; riskLevel: string };
    contacts: MaskedPerson[];
    onsiteTeam: { name: string; phone: string };
    dispatch: { police: string; fire: string; ambulance: string; gasCompany?: string };
    language: string;
  } | null;
}

export interface RevealedCarePlan {
  hub: string;
  version: number;
  updatedAt: number;
  plan: {
    elder: { name: string; phone: string; address: string; riskLevel: string };
    contacts: { id: string; name: string; phone: string; role: string; note?: string }[];
    onsiteTeam: { name: string; phone: string };
    dispatch: { police: string; fire: string; ambulance: string; gasCompany?: string };
    language: string;
  };
  revealed: { at: number; by: string; action: string; purpose: string };
}

const enc = encodeURIComponent;

export const getIncidentDetail = (id: string) => request<IncidentDetail>("GET", `/v1/incidents/${enc(id)}`);
export const getCallTree = (id: string) => request<CallTreeView>("GET", `/incidents/${enc(id)}/call-tree`);
export const getMaskedCarePlan = (id: string) => request<MaskedCarePlan>("GET", `/incidents/${enc(id)}/care-plan`);
export const revealCarePlan = (id: string) => request<RevealedCarePlan>("POST", `/incidents/${enc(id)}/care-plan/reveal`, {});

/** The operator API's route for each action (POST /v1/incidents/{id}/<path>). */
const ACTION_PATH: Record<ActionName, string> = {
  acknowledge: "acknowledge",
  confirm: "confirm",
  false_alarm: "false-alarm",
  dispatch: "dispatches",
  ticket: "tickets",
  resolve: "resolve",
  follow_up: "follow-up",
  close: "close",
};

export const performAction = (id: string, action: ActionName, body: Record<string, string>) =>
  request<{ incident: Incident; entry: TimelineEntry }>("POST", `/v1/incidents/${enc(id)}/${ACTION_PATH[action]}`, body);
