// The homes board's calls: the board (GET /homes) and the operator alerts through the operator API served
// under /console/api/v1 (list the open ones, acknowledge one). Shapes as the relay sends them.
import { request } from "./client";

export type Urgency = "urgent" | "attention" | "notice";

export interface HomeProblem {
  /** valve_fault, valve_latched, hub_offline, primary_path_down, device_offline, device_fault, battery_low, second_path_untested (others may come). */
  kind: string;
  urgency: Urgency;
  /** The hub's own device id; null for the hub itself. */
  device: string | null;
  /** ms since epoch; null when not known (a hub never seen; second_path_untested: never tested successfully). */
  since: number | null;
  /** battery_low: the level in %, when the device reported it. */
  battery?: number | null;
}

export interface Home {
  hub: string;
  /** Road and building only; null when the hub has no household. */
  homeMasked: string | null;
  street: string | null;
  community: string | null;
  urgency: Urgency;
  rank: number;
  hubOnline: boolean;
  lastSeenAt: number | null;
  /** Most urgent first. */
  problems: HomeProblem[];
}

export interface HomesBoard {
  homes: Home[];
  total: number;
  counts: Record<Urgency, number>;
  generatedAt: number;
}

export interface OperatorAlert {
  id: string;
  kind: string;
  /** Written by the relay (ids and dates, no personal data), in English. */
  detail: string;
  incidentId: string | null;
  count: number;
  firstAt: number;
  lastAt: number;
  ackedAt: number | null;
  ackedBy: string | null;
  callCount: number;
}

export const getHomesBoard = () => request<HomesBoard>("GET", "/homes");
export const listOpenAlerts = () => request<{ alerts: OperatorAlert[] }>("GET", "/v1/alerts?state=open");
export const ackAlert = (id: string) => request<{ acked: boolean }>("POST", `/v1/alerts/${encodeURIComponent(id)}/ack`, {});
