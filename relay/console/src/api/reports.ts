// The reports page's call: GET /console/api/reports (relay/src/console/reports/), one answer per period.
import { request } from "./client";

export interface RateCounts {
  incidents: number;
  falseAlarms: number;
  /** falseAlarms / incidents, 0..1. */
  rate: number;
  reasons: Record<string, number>;
}

export interface HomeRate extends RateCounts {
  hub: string;
  /** Masked address (road and building), or the hub id for a hub without a household. */
  home: string;
}

export interface ModelRate extends RateCounts {
  /** null: no model recorded for the device. */
  model: string | null;
}

export interface TypeRow {
  type: string;
  incidents: number;
  falseAlarms: number;
  confirmed: number;
  medianMs: number | null;
  p90Ms: number | null;
}

export interface Report {
  since: number;
  until: number;
  /** The streets counted for a street-limited account; null: every home. */
  streets: string[] | null;
  falseAlarms: { perHome: HomeRate[]; perDeviceModel: ModelRate[] };
  byType: TypeRow[];
}

export const getReport = (since: number, until: number) => request<Report>("GET", `/reports?since=${since}&until=${until}`);
