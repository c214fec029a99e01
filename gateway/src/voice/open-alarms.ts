// The hub's own alarms that are still open, as it journaled them: what an announcement from the relay is
// checked against. The hub speaks news about an incident only while it has an open local alarm of that kind,
// so a signed but wrong (or late) announcement never tells an elder something the hub cannot stand behind.
// Kept in memory: after a restart nothing is open until the next alarm, so an announcement is then not spoken
// (the safe way round).

/** An alarm with no clear (a one-key call has none) counts as open for this long after it was raised. */
export const OPEN_FOR_MS = 2 * 3600_000;

export class OpenAlarms {
  /** Alarm type → when it was last raised. */
  private readonly raised = new Map<string, number>();

  raise(type: string, at: number): void {
    this.raised.set(type, at);
  }

  clear(type: string): void {
    this.raised.delete(type);
  }

  isOpen(type: string, now: number): boolean {
    const at = this.raised.get(type);
    if (at === undefined) return false;
    if (now - at > OPEN_FOR_MS) {
      this.raised.delete(type);
      return false;
    }
    return true;
  }
}
