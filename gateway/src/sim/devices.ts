// In-process device models for demos and quick tests: the same register maps as the shipped
// profiles, with the behaviour a newcomer needs to watch (a valve takes time to travel, a
// detector raises its own alarm output). Real-parts tests use an independent slave instead.
export type Table = "coil" | "di" | "hr" | "ir";

export class RegisterBank {
  private readonly t: Record<Table, Map<number, number>> = { coil: new Map(), di: new Map(), hr: new Map(), ir: new Map() };
  get(table: Table, a: number): number {
    return this.t[table].get(a) ?? 0;
  }
  set(table: Table, a: number, v: number): void {
    this.t[table].set(a, v);
  }
}

export abstract class SimDevice {
  readonly bank = new RegisterBank();
  /** A device that has died stops answering (the bus sees a timeout). */
  silent = false;
  requests = 0;
  read(table: Table, address: number, count: number): number[] {
    this.requests++;
    this.refresh();
    return Array.from({ length: count }, (_, i) => this.bank.get(table, address + i));
  }
  /** Returns false when the write is refused (Modbus exception 2/3). */
  write(table: "coil" | "hr", address: number, value: number): boolean {
    this.requests++;
    this.bank.set(table, address, value);
    this.onWrite(table, address, value);
    return true;
  }
  protected refresh(): void {}
  protected onWrite(_table: "coil" | "hr", _address: number, _value: number): void {}
}

/** Greystone CMD5B4 (Modbus): HR0 status, HR1 ppm, HR2 temperature ×0.1, HR4 relay 1, HR7 fault. */
export class SimCoDetector extends SimDevice {
  alarmLevelPpm = 100;
  constructor() {
    super();
    this.bank.set("hr", 2, 215);
  }
  setPpm(ppm: number): void {
    this.bank.set("hr", 1, Math.max(0, Math.round(ppm)));
  }
  setFault(on: boolean): void {
    this.bank.set("hr", 7, on ? 1 : 0);
  }
  protected override refresh(): void {
    const alarm = this.bank.get("hr", 1) >= this.alarmLevelPpm ? 1 : 0;
    this.bank.set("hr", 0, alarm);
    this.bank.set("hr", 4, alarm);
  }
}

/** Pemtech PT495, LEL variant: HR0 concentration ×10, HR1 type (high byte) and flags (low byte), HR2 alarm 1 ×10. */
export class SimLelDetector extends SimDevice {
  constructor() {
    super();
    this.bank.set("hr", 2, 200);
    this.bank.set("hr", 4, 400);
    this.refresh();
  }
  setLel(percent: number): void {
    this.bank.set("hr", 0, Math.max(0, Math.round(percent * 10)));
  }
  protected override refresh(): void {
    const alarm = this.bank.get("hr", 0) >= this.bank.get("hr", 2) ? 1 : 0;
    const flags = (this.bank.get("hr", 1) & 0x06) | alarm;
    this.bank.set("hr", 1, (0x02 << 8) | flags);
  }
}

export type ValveMode = "normal" | "jam" | "stuck";

/** Rotork-style actuator: coil 1 close, coil 2 open (latched); DI0 moving, DI1 closed, DI2 open, DI11 jammed. */
export class SimValve extends SimDevice {
  mode: ValveMode = "normal";
  closeCommands = 0;
  private motion: { to: "closed" | "open"; until: number } | null = null;
  constructor(
    public travelMs = 2000,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.park("open");
  }
  private park(at: "closed" | "open"): void {
    this.bank.set("di", 0, 0);
    this.bank.set("di", 1, at === "closed" ? 1 : 0);
    this.bank.set("di", 2, at === "open" ? 1 : 0);
    this.bank.set("hr", 3, at === "open" ? 1000 : 0); // position 0.0–100.0 % in tenths
  }
  private start(to: "closed" | "open"): void {
    if (this.mode === "stuck") return;
    if (this.bank.get("di", to === "closed" ? 1 : 2) === 1) return;
    if (this.motion?.to === to) return;
    this.bank.set("di", 11, 0);
    this.motion = { to, until: this.now() + (this.mode === "jam" ? this.travelMs / 2 : this.travelMs) };
    this.bank.set("di", 0, 1);
    this.bank.set("di", 1, 0);
    this.bank.set("di", 2, 0);
  }
  protected override onWrite(table: "coil" | "hr", address: number, value: number): void {
    const close = (table === "coil" && (address === 1 || address === 3) && value) || (table === "hr" && address === 5 && value === 1);
    const open = (table === "coil" && address === 2 && value) || (table === "hr" && address === 5 && value === 2);
    if (close) {
      this.closeCommands++;
      this.start("closed");
    } else if (open) this.start("open");
  }
  protected override refresh(): void {
    if (!this.motion || this.now() < this.motion.until) return;
    if (this.mode === "jam" && this.motion.to === "closed") {
      this.bank.set("di", 0, 0);
      this.bank.set("di", 11, 1);
      this.bank.set("hr", 3, 500);
    } else this.park(this.motion.to);
    this.motion = null;
  }
}

/** Saifuli MTDX62-MB: IR0 presence, IR1 illuminance ×0.1, IR2 distance ×0.01 m, IR3 status (1 ok). */
export class SimPresence extends SimDevice {
  constructor() {
    super();
    this.bank.set("ir", 3, 1);
    this.bank.set("ir", 1, 1200);
  }
  setPresence(present: boolean, distanceM = 1.8): void {
    this.bank.set("ir", 0, present ? 1 : 0);
    this.bank.set("ir", 2, present ? Math.round(distanceM * 100) : 0);
  }
}

/** Any other profile: a plain register bank that answers whatever was last written. */
export class SimGeneric extends SimDevice {}

export function simDeviceFor(profileId: string, now: () => number = Date.now): SimDevice {
  switch (profileId) {
    case "greystone-cmd5b4":
      return new SimCoDetector();
    case "pemtech-pt495-lel":
      return new SimLelDetector();
    case "rotork-iq-modbus":
      return new SimValve(2000, now);
    case "saifuli-mtdx62-mb":
      return new SimPresence();
    default:
      return new SimGeneric();
  }
}
