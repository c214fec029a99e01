// Carries out the rule's actuator decisions on the bus. Commands go at safety priority, ahead of
// any queued poll, and are never awaited by the caller: the rule supervises the outcome by read-back.
import type { Logger } from "pino";
import type { Device } from "../devices/device.js";
import type { CommandName } from "../profiles/schema.js";

export interface ActuatorResult {
  device: string;
  command: CommandName;
  ok: boolean;
  error?: string;
}

export class Actuators {
  readonly valves: Device[];
  readonly sirens: Device[];
  private readonly byId: Map<string, Device>;
  failures = 0;

  constructor(
    devices: Device[],
    private readonly log: Logger,
    private readonly onResult: (r: ActuatorResult) => void = () => {},
  ) {
    this.valves = devices.filter((d) => d.has("valve") && d.canDo("close"));
    this.sirens = devices.filter((d) => d.has("siren") && d.canDo("siren_on"));
    this.byId = new Map(devices.map((d) => [d.id, d]));
  }

  /** Starts the command now; the returned promise is for callers that want the write's outcome. */
  send(deviceId: string, command: CommandName): Promise<ActuatorResult> {
    const d = this.byId.get(deviceId);
    if (!d || !d.canDo(command)) return Promise.resolve(this.done({ device: deviceId, command, ok: false, error: "device cannot do this command" }));
    return d.command(command, "safety").then(
      () => this.done({ device: deviceId, command, ok: true }),
      (e: Error) => this.done({ device: deviceId, command, ok: false, error: e.message }),
    );
  }

  sirensTo(on: boolean): Promise<ActuatorResult[]> {
    return Promise.all(this.sirens.map((s) => this.send(s.id, on ? "siren_on" : "siren_off")));
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
