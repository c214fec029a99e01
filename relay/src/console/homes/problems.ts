// What needs attention at one home, from the facts the relay holds about its hub, and how urgent it is.
// Pure: the store's facts go in (load.ts reads them), problems and their order come out, so the ranking is
// tested without a database. Device health is the ledger's own (deviceHealth): the board and the district
// ledger never disagree about which device is offline, low on battery or faulty.
import { deviceHealth, type DeviceEventTimes } from "../../households/ledger.js";
import { onSecondPath } from "../../supervision/primary-path.js";

/**
 * Most urgent first. A valve that did not close during a gas/CO alarm may still let gas through; a valve
 * latched closed leaves the elder without gas until someone checks the home and reopens it on site; an
 * offline hub carries no alarm to the relay at all. An offline hub whose texts still arrive (primary path
 * down, second path working) does carry its alarms, by SMS: a broadband repair, not a silent home. Then
 * devices that cannot protect (offline, faulty), then a battery running low (the device still works), and
 * last a second path not proven lately (it works until the day it is needed, or not).
 */
export const PROBLEM_KINDS = ["valve_fault", "valve_latched", "hub_offline", "primary_path_down", "device_offline", "device_fault", "battery_low", "second_path_untested"] as const;
export type ProblemKind = (typeof PROBLEM_KINDS)[number];

export const URGENCIES = ["urgent", "attention", "notice"] as const;
export type Urgency = (typeof URGENCIES)[number];

const URGENCY_OF: Record<ProblemKind, Urgency> = {
  valve_fault: "urgent",
  valve_latched: "urgent",
  hub_offline: "urgent",
  primary_path_down: "attention",
  device_offline: "attention",
  device_fault: "attention",
  battery_low: "notice",
  second_path_untested: "notice",
};

/** A hub that tests its second path (weekly) and has no successful test for longer than this gets the hint. */
export const SECOND_PATH_TEST_MAX_AGE_MS = 8 * 24 * 3_600_000;

export const problemRank = (k: ProblemKind): number => PROBLEM_KINDS.indexOf(k);
export const urgencyOf = (k: ProblemKind): Urgency => URGENCY_OF[k];

export interface Problem {
  kind: ProblemKind;
  /** The hub's own id of the device; null for the hub itself. */
  device: string | null;
  /** Since when (the relay's receipt of the event that raised it); null: not known (a hub never seen). */
  since: number | null;
  /** battery_low: the level the device last reported with it, in %, when it said. */
  battery?: number | null;
}

/** The latest of each relevant event at one hub (received at the relay). */
export interface HubFacts {
  hub: string;
  online: boolean;
  offlineSince: number | null;
  /** Per device: its latest device event of each type (offline, online, battery_low, fault, valve_closed, …). */
  deviceEvents: DeviceEventTimes;
  /** Per valve: its latest valve_fault alarm and clear. */
  valveFaults: Map<string, { raised?: number; cleared?: number }>;
  /** Per valve: the latest `valve_opened_on_site` (reset by hand at the valve). */
  openedOnSite: Map<string, number>;
  /** The latest `valve_reopen` at the hub: the on-site reopen unlatches every valve. */
  reopenedAt: number | null;
  /** Per device: when the hub retired it (consent withdrawn); what it reported before no longer matters. */
  retiredAt: Map<string, number>;
  /** battery level by device, from its latest battery_low event. */
  batteryLevels: Map<string, number>;
  /** The hub's last sight over MQTT (texts are not sightings). */
  lastSeenAt?: number | null;
  /** Receipt of the hub's latest event by SMS; null or absent: none. */
  smsLastAt?: number | null;
  /** Its second path's periodic test: the latest that arrived by SMS (null: none), and whether it ever sent one by either path. Absent: never sent one. */
  secondPathTest?: { lastOkAt: number | null; ever: boolean };
}

function later(a: number | undefined, b: number | undefined): boolean {
  return a !== undefined && a > (b ?? -Infinity);
}

/**
 * Every problem at one hub, most urgent first (then the oldest first, then by device). `now` dates the second
 * path's last test; without it that hint is not given.
 */
export function hubProblems(f: HubFacts, now?: number): Problem[] {
  const out: Problem[] = [];
  const second = onSecondPath({ online: f.online, lastSeenAt: f.lastSeenAt ?? null }, f.smsLastAt ?? null);
  if (!f.online) out.push({ kind: second ? "primary_path_down" : "hub_offline", device: null, since: f.offlineSince });
  // Only for hubs that run the test at all (a hub without a modem never sends one); not while texts arrive anyway.
  const test = f.secondPathTest;
  if (test?.ever && !second && now !== undefined && (test.lastOkAt === null || now - test.lastOkAt > SECOND_PATH_TEST_MAX_AGE_MS))
    out.push({ kind: "second_path_untested", device: null, since: test.lastOkAt });
  // A retired device is gone from the home: whatever it last said is history.
  const live: DeviceEventTimes = new Map([...f.deviceEvents].filter(([d, times]) => !retiredSince(f, d, times)));
  const health = deviceHealth(live);
  const at = (device: string, type: string) => live.get(device)?.get(type) ?? null;
  for (const d of health.offline) out.push({ kind: "device_offline", device: d, since: at(d, "offline") });
  for (const d of health.faults) out.push({ kind: "device_fault", device: d, since: at(d, "fault") });
  for (const d of health.batteryLow) out.push({ kind: "battery_low", device: d, since: at(d, "battery_low"), battery: f.batteryLevels.get(d) ?? null });
  for (const [valve, times] of live) {
    const unlatched = Math.max(f.reopenedAt ?? -Infinity, f.openedOnSite.get(valve) ?? -Infinity);
    // Latched: its verified close came after the last reopen (the close is only reported for an alarm's close).
    const closed = times.get("valve_closed");
    if (closed !== undefined && closed > unlatched) out.push({ kind: "valve_latched", device: valve, since: closed });
  }
  for (const [valve, v] of f.valveFaults) {
    const retired = f.retiredAt.get(valve);
    if (retired !== undefined && (v.raised ?? -Infinity) <= retired) continue;
    const unlatched = Math.max(f.reopenedAt ?? -Infinity, f.openedOnSite.get(valve) ?? -Infinity);
    if (later(v.raised, v.cleared) && (v.raised as number) > unlatched) out.push({ kind: "valve_fault", device: valve, since: v.raised as number });
  }
  return out.sort(compareProblems);
}

function retiredSince(f: HubFacts, device: string, times: ReadonlyMap<string, number> | undefined): boolean {
  const retired = f.retiredAt.get(device);
  if (retired === undefined) return false;
  return [...(times?.values() ?? [])].every((t) => t <= retired);
}

/** null sorts first: a hub never seen has been without protection for as long as anyone knows. */
function compareSince(a: number | null, b: number | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a - b;
}

export function compareProblems(a: Problem, b: Problem): number {
  return problemRank(a.kind) - problemRank(b.kind) || compareSince(a.since, b.since) || (a.device ?? "").localeCompare(b.device ?? "");
}

/** A home on the board: its worst problem decides its place. */
export interface Ranked {
  hub: string;
  problems: Problem[];
}

/** The rank of a home: its worst problem's (lower is more urgent); only for homes with a problem. */
export function homeRank(h: Ranked): number {
  return Math.min(...h.problems.map((p) => problemRank(p.kind)));
}

/** Worst problem first; equally bad: the longest-standing first, then more problems, then the hub id. */
export function compareHomes(a: Ranked, b: Ranked): number {
  const [pa, pb] = [a.problems[0], b.problems[0]];
  if (!pa || !pb) return pa ? -1 : pb ? 1 : a.hub.localeCompare(b.hub);
  return compareProblems({ ...pa, device: null }, { ...pb, device: null }) || b.problems.length - a.problems.length || a.hub.localeCompare(b.hub);
}
