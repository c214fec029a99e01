// Windows and thresholds of the behaviour rules, per install with per-room overrides. The defaults and the
// reasons for them are in docs/configuration.md ("Falls, stillness, vital signs, inactivity").

export interface FallParams {
  /** A fall report followed by no getting up for this long raises `fall`. */
  confirmMs: number;
  /** Movement sustained this long after a fall report is the elder getting up (shorter is an artefact). */
  getUpMs: number;
}

export interface StillnessParams {
  /** Lying still here is dangerous (a bathroom, a kitchen floor): presence without movement raises `fall`. */
  dangerous: boolean;
  /** How long someone present may stay without moving before that. */
  windowMs: number;
}

export interface Range {
  min: number;
  max: number;
}

export interface VitalsParams {
  /** In bed, heart rate and breathing both absent this long → `vital_absent`. */
  absentMs: number;
  /** Heart rate or breathing out of range, every reading, this long → `vital_abnormal`. */
  abnormalMs: number;
  heartRate: Range;
  breathing: Range;
  /** One trend reading per device this often (journaled; never per-second data). */
  trendEveryMs: number;
}

export interface RoomParams {
  fall: FallParams;
  stillness: StillnessParams;
  vitals: VitalsParams;
}

export interface BehaviourParams {
  defaults: RoomParams;
  /** Overrides by room name; anything not given falls back to `defaults`. */
  rooms: Record<string, { fall?: Partial<FallParams>; stillness?: Partial<StillnessParams>; vitals?: Partial<VitalsParams> }>;
}

export interface InactivityParams {
  enabled: boolean;
  /** No sign of life anywhere in the home for this long (night hours not counted) → `inactivity`. */
  spanMs: number;
  /** Local time of day not counted (sleep); minutes after midnight. Null: every hour counts. */
  night: { fromMin: number; toMin: number } | null;
  /** IANA time zone the night is read in, e.g. Asia/Shanghai. */
  timeZone: string;
}

export const DEFAULT_ROOM: RoomParams = {
  fall: { confirmMs: 30_000, getUpMs: 5_000 },
  stillness: { dangerous: false, windowMs: 10 * 60_000 },
  vitals: {
    absentMs: 60_000,
    abnormalMs: 5 * 60_000,
    heartRate: { min: 40, max: 130 },
    breathing: { min: 8, max: 30 },
    trendEveryMs: 60_000,
  },
};

export const DEFAULT_BEHAVIOUR: BehaviourParams = { defaults: DEFAULT_ROOM, rooms: {} };

export const DEFAULT_INACTIVITY: InactivityParams = {
  enabled: true,
  spanMs: 12 * 3600_000,
  night: { fromMin: 22 * 60, toMin: 7 * 60 },
  timeZone: "Asia/Shanghai",
};

/** The parameters in force in one room. */
export function roomParams(p: BehaviourParams, room: string | undefined): RoomParams {
  const o = room === undefined ? undefined : p.rooms[room];
  if (!o) return p.defaults;
  return {
    fall: { ...p.defaults.fall, ...o.fall },
    stillness: { ...p.defaults.stillness, ...o.stillness },
    vitals: { ...p.defaults.vitals, ...o.vitals },
  };
}

// roomParams allocates for a room with overrides; the rules run per radar frame, so keep one per (params, room).
const cache = new WeakMap<BehaviourParams, Map<string | null, RoomParams>>();

/** `roomParams`, memoised per parameter set and room (null: no room). */
export function paramsForRoom(p: BehaviourParams, room: string | null): RoomParams {
  let m = cache.get(p);
  if (!m) cache.set(p, (m = new Map<string | null, RoomParams>()));
  let rp = m.get(room);
  if (!rp) m.set(room, (rp = roomParams(p, room ?? undefined)));
  return rp;
}
