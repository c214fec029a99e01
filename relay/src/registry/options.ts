import { hubMqttUrl } from "../config/loader.js";
import type { RelayConfig } from "../config/schema.js";
import type { Registry } from "./registry.js";

/** The registry's settings from the relay's configuration (the daemon and the CLI build it alike). */
export function registryOptions(config: RelayConfig, now?: () => number): ConstructorParameters<typeof Registry>[1] {
  return { claimCodeTtlS: config.enrolment.claimCodeTtlS, heartbeatS: config.supervision.heartbeatIntervalS, mqttUrl: hubMqttUrl(config), now };
}
