// MQTT 3.1.1 packets written by hand, for tests that drive the broker from a raw socket (nothing reads or
// acknowledges on the client's behalf, and a whole burst goes out in one write).

/** A length-prefixed UTF-8 string. */
export function mqttString(s: string): Buffer {
  const b = Buffer.from(s, "utf8");
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

/** A packet: the first byte (type and flags), the variable-length "remaining length", the body. */
export function mqttPacket(first: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from([first, ...len]), body]);
}

/** CONNECT with a clean session, a username and a password. */
export function mqttConnect(clientId: string, username: string, password: string, keepaliveS: number): Buffer {
  const header = Buffer.concat([mqttString("MQTT"), Buffer.from([4, 0xc2, keepaliveS >> 8, keepaliveS & 0xff])]);
  return mqttPacket(0x10, Buffer.concat([header, mqttString(clientId), mqttString(username), mqttString(password)]));
}
