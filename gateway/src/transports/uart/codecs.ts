// The UART framings the hub speaks, by the protocol id a device profile names. Adding a framing is one
// `FrameCodec` file and one line here (docs/radar-framing.md).

import type { FrameCodec } from "./codec.js";
import { seeed5359 } from "./seeed-5359.js";

export const PROTOCOLS = ["seeed-5359"] as const;
export type UartProtocol = (typeof PROTOCOLS)[number];

const CODECS: ReadonlyMap<string, FrameCodec> = new Map<UartProtocol, FrameCodec>([["seeed-5359", seeed5359]]);

export function codecFor(protocol: string): FrameCodec | undefined {
  return CODECS.get(protocol);
}
