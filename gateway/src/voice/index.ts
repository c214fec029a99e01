// The daemon's way in: builds the voice from the `voice` section (absent or disabled: null, nothing spoken).
import path from "node:path";
import type { Logger } from "pino";
import type { Envelope } from "../../../protocol/envelope.js";
import type { VoiceConfig } from "../config/voice.js";
import { localMinuteOfDay } from "../rules/inactivity.js";
import { FallPendingWatch, type FallDevices } from "./fall-pending.js";
import { Player } from "./player.js";
import { inQuietHours } from "./queue.js";
import { VoiceTriggers, type AnnounceRequest, type AnnounceResult } from "./triggers.js";

export type { AnnounceRequest, AnnounceResult } from "./triggers.js";
export { Player, type Played } from "./player.js";

export interface VoiceOptions {
  config: VoiceConfig | undefined;
  /** Folder of the configuration file: a relative promptsDir starts there. */
  configDir: string;
  /** The hub's time zone (quiet hours are local time). */
  timeZone: string;
  /** Whether a siren sounds now. */
  sirenOn: () => boolean;
  /** The fall rule's devices, for pending fall reports. */
  fallDevices: FallDevices;
  log: Logger;
  now?: () => number;
}

export interface Voice {
  readonly player: Player;
  /** A journaled event (after its actuator commands went out). */
  event(e: Envelope): void;
  /** Ids the relay acknowledged. */
  acked(ids: readonly string[]): void;
  /** A verified `announce` command. */
  announce(a: AnnounceRequest): AnnounceResult;
  stop(): Promise<void>;
}

export function openVoice(o: VoiceOptions): Voice | null {
  const c = o.config;
  if (!c?.enabled) return null;
  const now = o.now ?? Date.now;
  const log = o.log.child({ part: "voice" });
  const player = new Player({
    dir: path.resolve(o.configDir, c.promptsDir),
    language: c.language,
    device: c.device,
    sirenOn: o.sirenOn,
    quiet: () => inQuietHours(localMinuteOfDay(now(), o.timeZone), c.quietHours),
    log,
    now,
  });
  const triggers = new VoiceTriggers(player, now, log);
  const falls = new FallPendingWatch(o.fallDevices, (device) => triggers.fallPending(device));
  falls.start();
  // A fault in speaking is logged; it never reaches the journal's or the uplink's caller.
  const guarded = <A extends unknown[]>(what: string, f: (...a: A) => void) => (...a: A) => {
    try {
      f(...a);
    } catch (err) {
      log.error({ err: (err as Error).message }, `voice: ${what} failed`);
    }
  };
  log.info({ language: c.language, device: c.device, dir: path.resolve(o.configDir, c.promptsDir), quietHours: c.quietHours }, "voice: prompts on");
  return {
    player,
    event: guarded("event", (e: Envelope) => triggers.event(e)),
    acked: guarded("ack", (ids: readonly string[]) => triggers.acked(ids)),
    announce: (a) => {
      try {
        return triggers.announce(a);
      } catch (err) {
        return { spoken: false, reason: (err as Error).message };
      }
    },
    stop: async () => {
      falls.stop();
      await player.stop();
    },
  };
}
