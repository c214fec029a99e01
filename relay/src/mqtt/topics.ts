// Parsing the wire contract's topic names on the relay side (protocol/topics.ts builds them).
import { TOPIC_ROOT } from "../../../protocol/topics.js";

/** The same rule as the envelope's `hub` field and the enrolment request. */
export const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * The relay's own MQTT username (the `user` block of a Mosquitto ACL). It is a valid hub id by the
 * pattern above, so it is reserved: no hub may be called this.
 */
export const RELAY_USERNAME = "anxin-relay";

export function isHubId(s: string): boolean {
  return HUB_ID.test(s) && s !== RELAY_USERNAME;
}

export type TopicKind = "evt" | "state" | "ack" | "cmd";
const KINDS: ReadonlySet<string> = new Set(["evt", "state", "ack", "cmd"]);

/** `anxin/v1/{hub}/{kind}` → its parts, or null for anything else (including an invalid hub id). */
export function parseTopic(topic: string): { hub: string; kind: TopicKind } | null {
  if (!topic.startsWith(`${TOPIC_ROOT}/`)) return null;
  const rest = topic.slice(TOPIC_ROOT.length + 1).split("/");
  if (rest.length !== 2) return null;
  const [hub, kind] = rest as [string, string];
  if (!KINDS.has(kind) || !isHubId(hub)) return null;
  return { hub, kind: kind as TopicKind };
}
