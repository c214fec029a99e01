// The coordinator's serial port on the main thread too (see transports/serial/main-thread-binding.ts).
// zigbee-herdsman opens it through its own copy of serialport's native binding and takes no binding as an
// option, so its copy's Linux `open` is wrapped once per process. zigbee-herdsman is pinned exactly; if a
// new version stops carrying the copy where this expects it, this throws and the stack logs it.
import { createRequire } from "node:module";
import { MainThreadPort } from "../serial/main-thread-binding.js";

type Open = (options: Record<string, unknown>) => Promise<ConstructorParameters<typeof MainThreadPort>[0]>;
interface BindingsModule {
  LinuxBinding: { open: Open };
  autoDetect(): unknown;
}

let routed = false;

export function routeCoordinatorSerialThroughMainThread(): void {
  if (routed || process.platform !== "linux") return;
  const fromHerdsman = createRequire(createRequire(import.meta.url).resolve("zigbee-herdsman"));
  const bindings = fromHerdsman("@serialport/bindings-cpp") as BindingsModule;
  if (bindings.autoDetect() !== bindings.LinuxBinding) throw new Error("zigbee-herdsman's serialport binding is not where the hub expects it");
  const open = bindings.LinuxBinding.open.bind(bindings.LinuxBinding);
  bindings.LinuxBinding.open = async (options) => new MainThreadPort(await open(options)) as never;
  routed = true;
}
