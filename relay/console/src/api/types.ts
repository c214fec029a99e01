// The console API's shapes as the browser receives them (the contract the relay's /console/api serves).

export interface User {
  username: string;
  displayName: string;
  role: string;
}

export interface Session {
  user: User;
  csrfToken: string;
}

export interface CallStep {
  label: string;
  /** 1-based position in the call tree. */
  index: number;
  of: number;
  /** When the call tree moves on (ms since epoch), if it is waiting. */
  nextAt?: number;
}

export interface TakenBy {
  username: string;
  displayName: string;
  at: number;
}

/** One incident in the duty queue. */
export interface Row {
  id: string;
  type: string;
  severity: string;
  hub: string;
  homeMasked: string;
  /** When the relay received the alarm (ms since epoch). */
  receivedAt: number;
  state: string;
  step: CallStep | null;
  takenBy: TakenBy | null;
}
