// The daemon's way in: builds the alarm camera from the `camera` section. Without recorded consent, or without
// what it needs (the password file, the hub's signing key, the relay's CA), the camera is never read: the
// reason is logged once — without addresses, names or credentials — and the hub guards the home as before.
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import type { HubConfig } from "../config/schema.js";
import { isLoopback, secretsPath } from "../uplink/settings.js";
import { readSecrets } from "../uplink/secrets.js";
import { AlarmCamera } from "./camera.js";
import { readPasswordFile } from "./password.js";
import { SnapshotReader } from "./snapshot.js";

export { AlarmCamera, type JournaledEvent } from "./camera.js";

export interface OpenCameraOptions {
  config: HubConfig;
  /** Folder of the configuration file: relative paths start there. */
  configDir: string;
  log: Logger;
  now?: () => number;
  relayClockOffset?: () => number | null;
}

/** The camera, or null when there is none or it may not or cannot be read (said once in the log). */
export async function openCamera(o: OpenCameraOptions): Promise<AlarmCamera | null> {
  const c = o.config.camera;
  if (!c) return null;
  const log = o.log.child({ part: "camera" });
  if (c.consent?.recorded !== true) {
    log.info("camera: configured but never read: no recorded consent of the elder (camera.consent.recorded is not true)");
    return null;
  }
  try {
    const dataDir = path.resolve(o.configDir, o.config.hub.dataDir);
    const password = await readPasswordFile(path.resolve(o.configDir, c.passwordFile ?? path.join(dataDir, "camera-password")));
    const secrets = await readSecrets(secretsPath(o.config, o.configDir), o.config.hub.id);
    const ca = c.upload.caFile ? await readFile(path.resolve(o.configDir, c.upload.caFile)) : undefined;
    const upload = new URL(c.upload.url);
    if (upload.protocol === "http:" && isLoopback(upload.hostname)) log.warn("camera: stills go to a relay on this machine over plain http (camera.upload.url)");
    log.info({ stills: c.stills, intervalMs: c.intervalMs }, "camera: ready; read only when an alarm is raised");
    return new AlarmCamera({
      reader: () => new SnapshotReader({ url: c.snapshotUrl, username: c.username, password, timeoutMs: c.timeoutMs, maxBytes: c.maxBytes }),
      target: { url: c.upload.url, ...(ca ? { ca } : {}), timeoutMs: c.upload.timeoutMs, hub: o.config.hub.id, key: secrets.key },
      stills: c.stills,
      intervalMs: c.intervalMs,
      attempts: c.upload.attempts,
      retryMs: c.upload.retryMs,
      log,
      now: o.now,
      relayClockOffset: o.relayClockOffset,
    });
  } catch (e) {
    log.error({ err: (e as Error).message }, "camera: not started; the camera is never read until this is fixed and the hub restarted");
    return null;
  }
}
