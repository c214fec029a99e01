// Starts a worker thread from a module beside the caller, both from the TypeScript sources (tests and
// benchmarks run under tsx) and from the compiled JavaScript (production).
import { Worker } from "node:worker_threads";

// Workers inherit `--import tsx`, but on Node 20 tsx only registers its hooks on the main thread. So a .ts
// worker is loaded through this bootstrap, which registers tsx in the worker when a plain import cannot
// load TypeScript (the retry uses a fresh URL: a failed import stays cached).
const TS_BOOTSTRAP = `
const { workerData } = require("node:worker_threads");
import(workerData.target).catch(async (err) => {
  if (!err || err.code !== "ERR_UNKNOWN_FILE_EXTENSION") throw err;
  const { register } = await import(workerData.tsx);
  register();
  await import(workerData.target + "?tsx");
});`;

/** `callerUrl`: the caller's import.meta.url; `name`: the worker module beside it, without extension. */
export function startModuleWorker(callerUrl: string, name: string): Worker {
  const isTs = callerUrl.endsWith(".ts");
  const url = new URL(`./${name}${isTs ? ".ts" : ".js"}`, callerUrl);
  if (!isTs) return new Worker(url);
  return new Worker(TS_BOOTSTRAP, { eval: true, workerData: { target: url.href, tsx: import.meta.resolve("tsx/esm/api") } });
}
