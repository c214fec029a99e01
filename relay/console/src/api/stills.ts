// The camera stills of an incident (relay/src/console/stills/plugin.ts): the list as JSON, each image by its
// same-origin address (an <img> sends the session cookie; the page's CSP allows img-src 'self').
import { API, request } from "./client";

export interface StillMeta {
  id: string;
  eventId: string;
  /** 1.. within the alarm's burst. */
  index: number;
  /** The hub's clock when it read the camera (ms). */
  takenAt: number;
  receivedAt: number;
  bytes: number;
  /** When the relay deletes it (ms). */
  expiresAt: number;
}

export interface StillsList {
  stills: StillMeta[];
  retentionHours: number;
}

const base = (incidentId: string) => `/incidents/${encodeURIComponent(incidentId)}/stills`;

/** Recorded in the audit log under the signed-in person; 403 `not_taken` unless they have taken the incident (or are an admin). */
export const listStills = (incidentId: string) => request<StillsList>("GET", base(incidentId));

/** The image's address; each load is recorded in the audit log. */
export const stillImageUrl = (incidentId: string, stillId: string) => `${API}${base(incidentId)}/${encodeURIComponent(stillId)}`;
