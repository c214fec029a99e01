// The home's two ways to the broker, on one machine: a TCP proxy in front of the relay's broker. Connections
// from 127.0.0.1 (the hub's default route) are "broadband"; connections from `cellularSource` (the address a
// hub binds to for its modem's data session) are "cellular". The broadband can be cut (its connections
// dropped and new ones refused, as when the router loses its line) or frozen (connections stay open but carry
// nothing, as when a link dies without a reset); the cellular side is never touched.
import net from "node:net";

export interface BroadbandProxy {
  readonly port: number;
  readonly url: string;
  /** Drops every broadband connection and refuses new ones. */
  cut(): void;
  /** Keeps broadband connections open but forwards nothing either way. */
  freeze(): void;
  restore(): void;
  /** Connections accepted from the cellular source so far. */
  readonly cellularConnections: number;
  close(): Promise<void>;
}

export async function startBroadbandProxy(target: { host: string; port: number }, o: { cellularSource?: string } = {}): Promise<BroadbandProxy> {
  const cellularSource = o.cellularSource ?? "127.0.0.2";
  let mode: "up" | "cut" | "frozen" = "up";
  let cellularConnections = 0;
  const broadband = new Set<net.Socket>();
  const all = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const cellular = client.remoteAddress === cellularSource || client.remoteAddress === `::ffff:${cellularSource}`;
    if (!cellular && mode === "cut") return void client.destroy();
    if (cellular) cellularConnections++;
    const upstream = net.createConnection(target);
    const pair = [client, upstream];
    for (const s of pair) {
      all.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        all.delete(s);
        broadband.delete(s);
        for (const x of pair) x.destroy();
      });
    }
    if (!cellular) {
      broadband.add(client);
      broadband.add(upstream);
    }
    // Forwarding by hand (not pipe) so a frozen broadband can swallow bytes while the sockets stay open.
    const forward = (from: net.Socket, to: net.Socket) => from.on("data", (d) => void (!cellular && mode === "frozen" ? undefined : to.write(d)));
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    cut() {
      mode = "cut";
      for (const s of broadband) s.destroy();
    },
    freeze() {
      mode = "frozen";
    },
    restore() {
      // A line back from a dead spell: what was half-sent on the old connections is gone, so they end too.
      if (mode === "frozen") for (const s of broadband) s.destroy();
      mode = "up";
    },
    get cellularConnections() {
      return cellularConnections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of all) s.destroy();
        server.close(() => resolve());
      }),
  };
}
