// What every benchmark shares: rounding, nearest-rank percentiles and a description of the machine,
// so figures from different scripts are computed and labelled the same way.
import { cpus, loadavg, platform, release, totalmem } from "node:os";

export const r2 = (x: number): number => Math.round(x * 100) / 100;

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export function machineInfo() {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model ?? "?",
    cores: cpu.length,
    node: process.version,
    os: `${platform()} ${release()}`,
    memGiB: r2(totalmem() / 2 ** 30),
    loadStart: loadavg().map(r2),
  };
}
