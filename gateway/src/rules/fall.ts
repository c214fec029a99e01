// The fall rule: pure (state + room params + input + clock → new state + decisions). One `fall` alarm per
// device at a time, from either of two triggers:
//
// - `fall_report`: the radar reports a fall. The report is pending for `fall.confirmMs`; only the elder
//   getting up withdraws it, and getting up is movement sustained for `fall.getUpMs` after the report. The
//   radar clearing its own flag is not getting up (radars drop the flag while the person still lies there),
//   neither is a brief motion artefact, nor the person dropping out of view (presence false / motion none).
// - `no_movement`: in a room where stillness is dangerous (`stillness.dangerous`), someone present and not
//   moving for `stillness.windowMs`. Any movement, even brief, restarts that window: it is a sign of life.
//
// A radar that cannot see movement at all (a Zigbee fall radar whose profile gives no `motion`) cannot show
// the elder getting up: its fall report is always raised after confirmMs, and the raised alarm clears only
// once its flag reads "clear" AND confirmMs have passed since the raise. That clear only tells the relay the
// radar no longer reports a fall; the relay keeps calling until a person resolves the alarm. Such a radar
// never feeds the stillness window either (presence alone cannot tell lying still from sitting reading).
//
// A failed attempt to get up looks like getting up at first: movement past getUpMs, then lying still again.
// So a fall withdrawn while the radar still holds its flag at "fall" is watched for confirmMs more: still
// again (no movement) for getUpMs with the flag still up re-opens the same episode, from the original
// report — raised at the original deadline, or at once if that has passed. Such a re-opened episode rests on
// the radar's flag alone (the movement looked like getting up), so the flag clearing before the deadline
// withdraws it: someone who got up and lay down on the sofa is not raised.
//
// After an episode ends by getting up while the radar still holds its flag at "fall", that same flag does
// not start a new episode: the radar must first report something else ("clear" or "maybe"), or go offline
// and come back. A radar that keeps repeating "fall" after the elder got up would otherwise start a new
// pending fall at once and raise a false alarm the next time the elder sat still for confirmMs.
//
// Offline (`status` online:false) drops the device's pending fall and stillness window (`withdrawn`,
// reason "offline") and forgets its readings; an alarm already raised stays raised. Every step costs a few
// comparisons per device when nothing is due, and copies only the entries it changes.

import { paramsForRoom, type BehaviourParams, type RoomParams } from "./behaviour-params.js";
import { statusChange } from "./device-status.js";
import type { BehaviourDecision, BehaviourStep, FallFlag, Motion, RadarInput } from "./radar-input.js";

export type FallTrigger = "fall_report" | "no_movement";

/** A raised `fall` alarm. */
export interface FallEpisode {
  /** When the alarm was raised (the `since` of its clear). */
  at: number;
  /** When the episode began: the fall report, or the start of the stillness. */
  since: number;
  trigger: FallTrigger;
  /** The radar's fall report behind this episode, if any (a report makes presence loss no reason to clear). */
  fallReportAt: number | null;
}

export interface FallDeviceState {
  room: string | null;
  online: boolean;
  /** The device's profile gives `motion`: getting up can be seen. */
  seesMotion: boolean;
  /** Last known readings (a frame carries only some of them); null = unknown. */
  presence: boolean | null;
  motion: Motion | null;
  flag: FallFlag | null;
  /** Start of the current run of "moving" readings. */
  movingSince: number | null;
  /** The radar's last "maybe" in this episode (evidence for a fall that follows). */
  maybeAt: number | null;
  /** False after an episode ended while the flag still read "fall": waits for the flag to leave "fall". */
  armed: boolean;
  /** A fall report waiting for confirmMs. */
  pendingSince: number | null;
  /** Start of the stillness window (dangerous rooms only). */
  stillSince: number | null;
  raised: FallEpisode | null;
  /** A fall withdrawn as "got up" with the flag still up: watched in case the attempt failed. */
  retry: { reportAt: number; upAt: number; stillSince: number | null } | null;
  /** The pending fall was re-opened after a failed attempt to get up (it rests on the flag). */
  reopened: boolean;
}

export interface FallRuleState {
  devices: Record<string, FallDeviceState>;
}

export function initialFallState(): FallRuleState {
  return { devices: {} };
}

function fresh(): FallDeviceState {
  return {
    room: null,
    online: true,
    seesMotion: false,
    presence: null,
    motion: null,
    flag: null,
    movingSince: null,
    maybeAt: null,
    armed: true,
    pendingSince: null,
    stillSince: null,
    raised: null,
    retry: null,
    reopened: false,
  };
}


const roomOf = (d: FallDeviceState): { room?: string } => (d.room === null ? {} : { room: d.room });

function windows(rp: RoomParams): Record<string, number | boolean> {
  return {
    confirmMs: rp.fall.confirmMs,
    getUpMs: rp.fall.getUpMs,
    stillnessWindowMs: rp.stillness.windowMs,
    dangerous: rp.stillness.dangerous,
  };
}

/** When movement became sustained (counting only movement from `floor` on), or null if it has not (yet). */
function gotUpAt(d: FallDeviceState, floor: number, rp: RoomParams, now: number): number | null {
  if (!d.seesMotion || d.movingSince === null) return null;
  const t = Math.max(d.movingSince, floor) + rp.fall.getUpMs;
  return t <= now ? t : null;
}

function applyReading(old: FallDeviceState, input: Extract<RadarInput, { type: "reading" }>, rp: (room: string | null) => RoomParams, now: number): FallDeviceState {
  const d: FallDeviceState = { ...old };
  if (input.room !== undefined) d.room = input.room;
  d.online = true;
  d.seesMotion = input.gives.includes("motion");
  if (input.presence !== undefined) d.presence = input.presence;
  if (input.motion !== undefined) {
    d.motion = input.motion;
    // A frame without `motion` (a heart-rate frame, a presence frame) neither extends nor breaks the run.
    if (input.motion === "moving") d.movingSince ??= now;
    else d.movingSince = null;
    if (d.retry) d.retry = { ...d.retry, stillSince: input.motion === "moving" ? null : (d.retry.stillSince ?? now) };
  }
  if (input.fall !== undefined) {
    d.flag = input.fall;
    if (input.fall === "fall") {
      if (d.raised) {
        // One alarm per episode; a report during a no_movement alarm makes it a reported fall.
        if (d.raised.fallReportAt === null) d.raised = { ...d.raised, fallReportAt: now };
      } else if (d.pendingSince === null && d.armed) {
        d.pendingSince = now;
        // A "maybe" long before is no part of this fall.
        if (d.maybeAt !== null && now - d.maybeAt > rp(d.room).fall.confirmMs) d.maybeAt = null;
      }
    } else {
      d.armed = true;
      d.retry = null;
      if (input.fall === "maybe") d.maybeAt = now;
    }
  }
  const p = rp(d.room);
  if (!p.stillness.dangerous || !d.seesMotion || d.raised) d.stillSince = null;
  else if (d.motion === "moving" || d.motion === "none" || d.presence === false) d.stillSince = null;
  else if (d.presence === true || d.motion === "still") d.stillSince ??= now;
  return d;
}

function endEpisode(d: FallDeviceState): void {
  d.armed = d.flag !== "fall";
  d.maybeAt = null;
}

/** Closes whatever is due for one device. Returns `d` itself when nothing changed. */
function evaluate(id: string, d: FallDeviceState, rp: RoomParams, now: number, out: BehaviourDecision[]): FallDeviceState {
  if (!d.online) return d;
  let c = d;
  const w = (): FallDeviceState => (c === d ? (c = { ...d }) : c);

  if (c.retry !== null) {
    const r = c.retry;
    if (c.flag === "fall" && r.stillSince !== null && now >= r.stillSince + rp.fall.getUpMs) {
      // The attempt to get up failed: the same episode, from the original report.
      const x = w();
      x.pendingSince = r.reportAt;
      x.retry = null;
      x.reopened = true;
    } else if (c.flag !== "fall" || now > r.upAt + rp.fall.confirmMs) w().retry = null;
  }

  if (c.pendingSince !== null) {
    const reportAt = c.pendingSince;
    const deadline = reportAt + rp.fall.confirmMs;
    const up = gotUpAt(c, reportAt, rp, now);
    if (c.reopened && c.flag !== "fall") {
      out.push({ do: "withdrawn", alarm: "fall", device: id, ...roomOf(c), afterMs: now - reportAt, reason: "flag_cleared_after_getting_up" });
      const x = w();
      x.pendingSince = null;
      x.reopened = false;
      endEpisode(x);
    } else if (up !== null && up <= deadline) {
      out.push({ do: "withdrawn", alarm: "fall", device: id, ...roomOf(c), afterMs: now - reportAt, reason: "got_up" });
      const x = w();
      x.pendingSince = null;
      x.reopened = false;
      endEpisode(x);
      if (x.flag === "fall") x.retry = { reportAt, upAt: now, stillSince: x.motion !== null && x.motion !== "moving" ? now : null };
    } else if (now >= deadline) {
      out.push({
        do: "raise",
        alarm: "fall",
        severity: "critical",
        device: id,
        ...roomOf(c),
        since: reportAt,
        evidence: {
          trigger: "fall_report",
          readings: { fall: c.flag, reportAt, maybeAt: c.maybeAt, motion: c.motion, presence: c.presence, seesMotion: c.seesMotion, lyingMs: now - reportAt, failedAttemptToGetUp: c.reopened },
          windows: windows(rp),
        },
      });
      const x = w();
      x.raised = { at: now, since: reportAt, trigger: "fall_report", fallReportAt: reportAt };
      x.pendingSince = null;
      x.reopened = false;
      x.stillSince = null;
    }
  }

  if (c.raised === null && c.stillSince !== null && now >= c.stillSince + rp.stillness.windowMs) {
    const since = c.stillSince;
    out.push({
      do: "raise",
      alarm: "fall",
      severity: "critical",
      device: id,
      ...roomOf(c),
      since,
      evidence: {
        trigger: "no_movement",
        readings: { presence: c.presence, motion: c.motion, stillMs: now - since, fallReportAt: c.pendingSince, maybeAt: c.maybeAt },
        windows: windows(rp),
      },
    });
    const x = w();
    // A fall report still pending is the same episode: absorbed, never a second alarm.
    x.raised = { at: now, since, trigger: "no_movement", fallReportAt: c.pendingSince };
    x.pendingSince = null;
    x.reopened = false;
    x.stillSince = null;
  }

  if (c.raised !== null) {
    const r = c.raised;
    let reason: string | null = null;
    if (c.seesMotion) {
      if (gotUpAt(c, r.since, rp, now) !== null) reason = "got_up";
      // Nobody in view ends a stillness alarm, never a reported fall (the person may lie out of view).
      else if (r.fallReportAt === null && (c.presence === false || c.motion === "none")) reason = "nobody_present";
    } else if (c.flag === "clear" && now >= r.at + rp.fall.confirmMs) reason = "radar_clear";
    if (reason !== null) {
      out.push({ do: "clear", alarm: "fall", device: id, ...roomOf(c), since: r.at, reason });
      const x = w();
      x.raised = null;
      x.stillSince = null;
      endEpisode(x);
    }
  }
  return c;
}

function goOffline(id: string, d: FallDeviceState, now: number, out: BehaviourDecision[]): FallDeviceState {
  const open = d.pendingSince ?? d.stillSince;
  if (open !== null) out.push({ do: "withdrawn", alarm: "fall", device: id, ...roomOf(d), afterMs: now - open, reason: "offline" });
  // Everything but what the device is and its raised alarm is forgotten, as for a device never heard.
  return { ...fresh(), room: d.room, seesMotion: d.seesMotion, raised: d.raised, online: false };
}

export function fallStep(prev: FallRuleState, params: BehaviourParams, input: RadarInput, now: number): BehaviourStep<FallRuleState> {
  const decisions: BehaviourDecision[] = [];
  let devices = prev.devices;
  const put = (id: string, d: FallDeviceState): void => {
    if (devices === prev.devices) devices = { ...prev.devices };
    devices[id] = d;
  };
  const rp = (room: string | null): RoomParams => paramsForRoom(params, room);

  if (input.type === "reading") {
    put(input.device, applyReading(prev.devices[input.device] ?? fresh(), input, rp, now));
  } else if (input.type === "status") {
    const next = statusChange(prev.devices[input.device], input, (d) => goOffline(input.device, d, now, decisions));
    if (next) put(input.device, next);
  }

  // Every step (a reading from any device, a tick) closes what is due on every device.
  for (const id of Object.keys(devices)) {
    const d = devices[id]!;
    const next = evaluate(id, d, rp(d.room), now, decisions);
    if (next !== d) put(id, next);
  }
  return { state: devices === prev.devices ? prev : { devices }, decisions };
}

/**
 * True when a tick cannot change the rule's state or decide anything, whatever the time: on every online
 * device no fall report is pending, no stillness window runs, no alarm is raised and no failed attempt to get
 * up is watched. Every timed transition in `evaluate` needs one of those. test/unit/behaviour-tick-idle.test.ts
 * holds the rule to this.
 */
export function fallTickIdle(s: Readonly<FallRuleState>): boolean {
  for (const id in s.devices) {
    const d = s.devices[id]!;
    if (d.online && (d.pendingSince !== null || d.stillSince !== null || d.raised !== null || d.retry !== null)) return false;
  }
  return true;
}

/**
 * One device's state saved before a restart, made safe to run on. Its pending fall report, stillness window and
 * watch after a withdrawn fall keep their start times (a clock behind them restarts them now), a raised alarm
 * stays the same episode, and whether the radar waits for its flag to leave "fall" is kept. Its readings
 * (presence, motion, a run of movement) are forgotten: they must be heard again, so nothing from before the
 * restart counts as getting up, as nobody present or as a radar clear. Of its flag only "fall" is kept: it can
 * only keep an episode open or watched, never end one; any other flag must be heard again. When the windows are
 * judged is the caller's choice (the hub judges a device once it is heard again).
 */
export function restoreFallDevice(d: FallDeviceState, now: number): FallDeviceState {
  const notAfterNow = (t: number | null): number | null => (t === null ? null : Math.min(t, now));
  return {
    ...d,
    online: true,
    presence: null,
    motion: null,
    flag: d.flag === "fall" ? "fall" : null,
    movingSince: null,
    maybeAt: null,
    pendingSince: notAfterNow(d.pendingSince),
    stillSince: notAfterNow(d.stillSince),
    raised: d.raised ? { ...d.raised } : null,
    retry: d.retry ? { reportAt: d.retry.reportAt, upAt: Math.min(d.retry.upAt, now), stillSince: notAfterNow(d.retry.stillSince) } : null,
  };
}
