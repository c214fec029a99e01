// Carries out the rules' actuator decisions on whatever carries each device (RS-485 bus, Zigbee).
// Commands go at safety priority and are never awaited by the caller: the rule supervises the outcome
// by read-back.
import type { Logger } from "pino";
import type { CommandOptions, HubCommand, HubDevice, SirenMode } from "../devices/hub-device.js";

export interface ActuatorResult {
  device: string;
  command: HubCommand;
  ok: boolean;
  error?: string;
}

export class Actuators {
  readonly valves: HubDevice[] = [];
  readonly sirens: HubDevice[] = [];
  private readonly byId = new Map<string, HubDevice>();
  failures = 0;

  constructor(
    devices: HubDevice[],
    private readonly log: Logger,
    private readonly onResult: (r: ActuatorResult) => void = () => {},
  ) {
    for (const d of devices) this.add(d);
  }

  /** A device that appeared after start (a Zigbee device paired or restored). Replaces one with the same id. */
  add(d: HubDevice): void {
    this.remove(d.id);
    this.byId.set(d.id, d);
    if (d.has("valve") && d.canDo("close")) this.valves.push(d);
    if (d.has("siren") && d.canDo("siren_on")) this.sirens.push(d);
  }

  remove(id: string): void {
    this.byId.delete(id);
    for (const list of [this.valves, this.sirens]) {
      const i = list.findIndex((x) => x.id === id);
      if (i >= 0) list.splice(i, 1);
    }
  }

  /** Starts the command now; the returned promise is for callers that want the write's outcome. */
  send(deviceId: string, command: HubCommand, opts?: CommandOptions): Promise<ActuatorResult> {
    const d = this.byId.get(deviceId);
    if (!d || !d.canDo(command)) return Promise.resolve(this.done({ device: deviceId, command, ok: false, error: "device cannot do this command" }));
    return d.command(command, "safety", opts).then(
      () => this.done({ device: deviceId, command, ok: true }),
      (e: Error) => this.done({ device: deviceId, command, ok: false, error: e.message }),
    );
  }

  sirensTo(on: boolean, mode: SirenMode = "emergency"): Promise<ActuatorResult[]> {
    return Promise.all(this.sirens.map((s) => this.send(s.id, on ? "siren_on" : "siren_off", on ? { mode } : undefined)));
  }

  /** A short bounded sound on every siren that can bound it itself (SOS feedback). */
  chirp(): Promise<ActuatorResult[]> {
    return Promise.all(this.sirens.filter((s) => s.canDo("siren_chirp")).map((s) => this.send(s.id, "siren_chirp", { mode: "emergency" })));
  }

  private done(r: ActuatorResult): ActuatorResult {
    if (!r.ok) {
      this.failures++;
      this.log.warn({ device: r.device, command: r.command, err: r.error }, "actuator command failed");
    }
    this.onResult(r);
    return r;
  }
}
