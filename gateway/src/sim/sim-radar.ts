// An in-process radar for demos (`path: sim` in `radars[]`): it streams real Seeed 53 59 frames through the
// hub's own radar device, as a radar would in real-time mode, for a posture the demo sets. Real-parts tests
// use an independent emulator on a PTY instead (test/bench/seeed_radar.py).
import { EventEmitter } from "node:events";
import type { ByteLine } from "../devices/radar-device.js";
import type { RadarReport } from "../transports/uart/codec.js";
import { encodeProductInfo, encodeReport } from "../transports/uart/seeed-5359.js";

export type Posture = "away" | "walking" | "sitting" | "fallen" | "asleep";

const REPORTS: Record<Posture, RadarReport> = {
  away: { presence: false, motion: "none" },
  walking: { presence: true, motion: "moving" },
  sitting: { presence: true, motion: "still" },
  // The radar reports the fall once; the person then lies still.
  fallen: { presence: true, motion: "still" },
  asleep: { presence: true, motion: "still", inBed: true, heartRate: 62, breathing: 14 },
};

export class SimRadarLine extends EventEmitter implements ByteLine {
  private timer?: NodeJS.Timeout;
  private posture: Posture = "walking";

  constructor(
    private readonly model: string,
    private readonly everyMs = 500,
  ) {
    super();
  }

  start(): void {
    this.emit("up");
    this.timer = setInterval(() => this.send(REPORTS[this.posture]), this.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
  }

  /** Answers the hub's product queries as the radar would. */
  write(frame: Buffer): boolean {
    if (frame[2] === 0x02 && frame[3] === 0xa1) setImmediate(() => this.emit("data", encodeProductInfo("model", this.model)));
    return true;
  }

  set(posture: Posture): void {
    if (posture === "fallen") this.send({ fall: "fall", motion: "still" });
    else if (this.posture === "fallen") this.send({ fall: "clear" });
    this.posture = posture;
  }

  private send(r: RadarReport): void {
    this.emit("data", Buffer.concat(encodeReport(r)));
  }
}
