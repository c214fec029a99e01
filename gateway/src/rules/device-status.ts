// A device's check-in status as the per-device behaviour rules take it: going offline is the rule's own
// business (what it drops); coming back only marks the device online (windows restart from its next reading).

interface StatusState {
  online: boolean;
  room: string | null;
}

/** The device's next state for a status input, or undefined when nothing changes. */
export function statusChange<D extends StatusState>(d: D | undefined, input: { online: boolean; room?: string }, goOffline: (d: D) => D): D | undefined {
  if (!d || d.online === input.online) return undefined;
  if (!input.online) return goOffline(d);
  return { ...d, online: true, ...(input.room !== undefined ? { room: input.room } : {}) };
}
