// Every call to the console API goes through here: same-origin cookies, the CSRF token on anything that
// changes state, and one error type carrying the API's error code so the UI can translate it.
import type { Row, Session } from "./types";

export const API = "/console/api";

/** A failed request: `code` is the API's `error` field, or "network" / "http_<status>" when there is none. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly body: Record<string, unknown>,
  ) {
    super(`${status} ${code}`);
  }
}

let csrfToken: string | undefined;
let onUnauthorized: ((err: ApiError) => void) | undefined;

/** The token that every non-GET request carries; set from the session, cleared at sign-out. */
export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called when a request made while signed in comes back 401: the session is gone. */
export function setUnauthorizedHandler(handler: ((err: ApiError) => void) | undefined): void {
  onUnauthorized = handler;
}

export interface RequestOptions {
  /**
   * Whether the relay counts the request as the person's activity for the idle timeout. Default: changes
   * yes, reads no — the page reads by itself (polls, refreshes after the stream moved), and an unattended
   * screen must still reach the timeout; the person's own keys and clicks are reported by the session's
   * activity check (session.ts), which sets this.
   */
  activity?: boolean;
}

/** One call to the console API (path below /console/api); feature modules (api/*.ts) build on this. */
export async function request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (!(options.activity ?? method !== "GET")) headers["x-anxin-background"] = "1";
  if (body !== undefined) headers["content-type"] = "application/json";
  // Sign-in has no token yet; everything after it does.
  if (method !== "GET" && csrfToken !== undefined) headers["x-csrf-token"] = csrfToken;
  let res: Response;
  try {
    res = await fetch(API + path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, "network", {});
  }
  const parsed = await readJson(res);
  if (res.ok) return parsed as T;
  const code = typeof parsed.error === "string" && /^[a-z_]+$/.test(parsed.error) ? parsed.error : `http_${res.status}`;
  const err = new ApiError(res.status, code, parsed);
  if (res.status === 401 && csrfToken !== undefined) onUnauthorized?.(err);
  throw err;
}

async function readJson(res: Response): Promise<Record<string, unknown>> {
  if (res.status === 204) return {};
  try {
    const v: unknown = await res.json();
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Counts as activity unless told otherwise: on load, and when the person uses the page (session.ts). */
export const getSession = (activity = true) => request<Session>("GET", "/session", undefined, { activity });
export const signIn = (username: string, password: string) => request<Session>("POST", "/session", { username, password });
export const signOut = () => request<unknown>("DELETE", "/session");
export const listIncidents = () => request<{ incidents: Row[] }>("GET", "/incidents");
export const takeIncident = (id: string, force = false) =>
  request<Row>("POST", `/incidents/${encodeURIComponent(id)}/take`, force ? { force: true } : {});
