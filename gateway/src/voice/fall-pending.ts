// Notices a fall report waiting for its confirmation window (the fall rule's `pendingSince`) by reading the
// behaviour rules' state, so the rules stay pure and untouched: the elder is asked to get up if they are fine
// (getting up withdraws the report) while the window still runs. Each pending report is announced once.

export interface FallDevices {
  /** The fall rule's devices (BehaviourWatch.snapshot().fall.devices). */
  (): Record<string, { pendingSince: number | null }>;
}

export class FallPendingWatch {
  /** Device → the pendingSince already announced. */
  private readonly told = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly devices: FallDevices,
    private readonly onPending: (device: string) => void,
  ) {}

  start(everyMs = 1000): void {
    this.timer ??= setInterval(() => this.check(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look (the timer's; tests call it directly). */
  check(): void {
    for (const [device, d] of Object.entries(this.devices())) {
      if (d.pendingSince === null) {
        this.told.delete(device);
        continue;
      }
      if (this.told.get(device) === d.pendingSince) continue;
      this.told.set(device, d.pendingSince);
      this.onPending(device);
    }
  }
}
