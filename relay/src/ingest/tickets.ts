// Which messages are still in their checks (waiting for a key or a verify thread). flush() must wait for
// exactly the messages handed in before it, not for a quiet moment, which a steady drain may never have.
export class Tickets {
  private last = 0;
  private readonly open = new Set<number>(); // insertion order is ticket order
  private waiters: Array<{ ticket: number; resolve: () => void }> = [];

  /** A message enters its checks. */
  take(): number {
    const t = ++this.last;
    this.open.add(t);
    return t;
  }

  /** A message is through its checks (accepted into a batch or dropped). */
  settle(ticket: number): void {
    this.open.delete(ticket);
    if (this.waiters.length === 0) return;
    const lowest = this.open.size > 0 ? (this.open.values().next().value as number) : Infinity;
    this.waiters = this.waiters.filter((w) => {
      if (w.ticket >= lowest) return true;
      w.resolve();
      return false;
    });
  }

  /** Resolves once every ticket taken so far is settled; later ones are not waited for. */
  async settled(): Promise<void> {
    if (this.open.size === 0) return;
    const ticket = this.last;
    await new Promise<void>((resolve) => this.waiters.push({ ticket, resolve }));
  }
}
