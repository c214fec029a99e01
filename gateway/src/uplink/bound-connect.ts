// An MQTT session whose socket leaves from a chosen local address: the cellular module's data session, while
// the broadband's default route leads nowhere. mqtt.js's own TCP builder passes only host and port, so the
// socket is made here and handed to its client. The operating system routes by source address once the
// module's interface is up (docs/cellular.md gives the ModemManager/NetworkManager and `ip rule` setup).
import net from "node:net";
import tls from "node:tls";
import { MqttClient, type IClientOptions } from "mqtt";

export function connectBound(url: string, localAddress: string, opts: IClientOptions): MqttClient {
  const u = new URL(url);
  if (u.protocol !== "mqtt:" && u.protocol !== "mqtts:") throw new Error(`the data session carries mqtt:// and mqtts:// brokers only, not ${u.protocol}//`);
  const secure = u.protocol === "mqtts:";
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = u.port ? Number(u.port) : secure ? 8883 : 1883;
  const build = () => {
    const socket = net.createConnection({ host, port, localAddress });
    // TLS over the bound socket: the certificate is checked as on the default route.
    return secure ? tls.connect({ socket, servername: net.isIP(host) ? undefined : host, ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: true }) : socket;
  };
  return new MqttClient(build, { ...opts, protocol: secure ? "mqtts" : "mqtt", host, port });
}

/**
 * Whether a TCP connection to the broker opens over the default route (the broadband is back) within
 * `timeoutMs` and stays open for `holdMs`: a broker waits for the CONNECT, whereas a captive portal or a
 * dying line that answers the handshake and then resets does not.
 */
export function probeBroker(url: string, timeoutMs: number, holdMs = 1000): Promise<boolean> {
  const u = new URL(url);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = u.port ? Number(u.port) : u.protocol === "mqtts:" ? 8883 : u.protocol === "wss:" ? 443 : u.protocol === "ws:" ? 80 : 1883;
  return new Promise((resolve) => {
    const socket = net.createConnection({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    let timer = setTimeout(() => done(false), timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      timer = setTimeout(() => done(true), holdMs);
    });
    socket.once("error", () => done(false));
    socket.once("close", () => done(false));
  });
}
