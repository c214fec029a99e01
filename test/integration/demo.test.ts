// `npm start`'s demo, run as a newcomer would see it (without the build step): a child process on tsx
// walks the whole loop — gas leak, valve closed and proven, the relay's commit, the incident, the call tree
// on the console telephony, a duty operator closing the incident over the HTTP API — and exits 0 with its
// temp directory gone. Asserts on the plain-words lines the README promises, in the order they must occur.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** A hang guard only: the demo takes about half a minute. */
const GUARD_MS = 150_000;

function runDemo(): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "demo/main.ts"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "warn" } });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const guard = setTimeout(() => child.kill("SIGKILL"), GUARD_MS);
    child.once("error", (e) => {
      clearTimeout(guard);
      reject(e);
    });
    child.once("close", (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

test("npm start's demo walks the whole loop and leaves nothing behind", { timeout: GUARD_MS + 10_000 }, async () => {
  const r = await runDemo();
  const out = r.stdout;
  assert.equal(r.signal, null, `the demo hung and was killed; output so far:\n${out}\n${r.stderr}`);
  assert.equal(r.code, 0, `the demo failed:\n${out}\n${r.stderr}`);

  // Each key line, found in this order.
  const steps: Array<[string, RegExp]> = [
    ["care plan stored", /Care plan v1 stored for demo-hub/],
    ["gas alarm on the hub", /ALARM GAS at kitchen-gas/],
    ["alarm committed at the relay", /RELAY ← demo-hub: alarm gas \(critical\) committed/],
    ["incident opened with the alarm", /RELAY: incident \w+ opened in the same commit \(gas, policy fire_gas v2\)/],
    ["the elder called", /☎ {2}calling \+86\*+1001 .*\[the elder\]/],
    ["the elder not answering", /☎ {2}\+86\*+1001: no_answer/],
    ["the first emergency contact called", /☎ {2}calling \+86\*+1002 .*\[emergency contact "son"\]/],
    ["the contact confirming with key 1", /☎ {2}\+86\*+1002: answered, pressed 1/],
    ["the operator seeing the acknowledgement", /OPERATOR GET \/v1\/incidents\/\w+ → confirming, call tree acknowledged by emergency_contact:son/],
    ["one open incident listed", /OPERATOR GET \/v1\/incidents → 1 open: \w+ demo-hub gas confirming/],
    ["the timeline read", /OPERATOR GET \/v1\/incidents\/\w+\/timeline → \d+ entries/],
    ["the gas company dispatched", /POST \/v1\/incidents\/…\/dispatches .*gas_company.* → responding/],
    ["the district ticket", /POST \/v1\/incidents\/…\/tickets .*district.* → coordinated/],
    ["the alarm cleared at the relay", /RELAY ← demo-hub: alarm_cleared gas \(info\) committed/],
    ["the on-site reopen", /valve reopen → open command sent/],
    ["resolved", /POST \/v1\/incidents\/…\/resolve .* → resolved/],
    ["follow-up recorded", /POST \/v1\/incidents\/…\/follow-up .* → follow_up_due/],
    ["closed", /POST \/v1\/incidents\/…\/close .* → closed/],
    ["closed via the API", /Incident \w+ closed via the operator API: closed\./],
    ["nothing open", /OPERATOR GET \/v1\/incidents → 0 open\./],
    ["the fall radar heard, with its model", /bathroom fall radar: online, model MR60FDA1, \d+ frames, no errors: true/],
    ["the fall confirmed on the hub", /ALARM FALL at bath-radar \(bathroom\): fall report, nobody seen getting up/],
    ["the fall committed at the relay", /RELAY ← demo-hub: alarm fall \(critical\) committed/],
    ["the fall incident on the person policy", /RELAY: incident \w+ opened in the same commit \(fall, policy person v2\)/],
    ["the elder called first about the fall", /☎ {2}calling \+86\*+1001 .*a fall alarm.*\[the elder\]/],
    ["the son going to the door", /☎ {2}\+86\*+1002: answered, pressed 1/],
    ["getting up clears the fall on the hub", /alarm fall at bath-radar cleared on the hub: got up/],
    ["the fall resolved", /POST \/v1\/incidents\/…\/resolve .*fall in the bathroom.* → resolved/],
    ["journal empty", /the hub's journal has 0 left/],
  ];
  let from = 0;
  for (const [what, re] of steps) {
    const m = re.exec(out.slice(from));
    assert.ok(m, `missing (or out of order): ${what} — ${re}\n--- output ---\n${out}`);
    from += m.index + m[0].length;
  }
  // Before the alarm clears, the valve is proven closed and a premature reopen refused.
  assert.match(out, /✓ valve gas-valve proven closed by its limit switch/);
  assert.match(out, /valve reopen → refused: gas alarm active/);
  // The relay's token authenticated every operator request (a 401 would have failed the demo), and the
  // console adapter never printed a whole number.
  for (const n of ["+8613800001001", "+8613800001002", "+8613800001003", "+8613800001004"]) assert.ok(!out.includes(n), `unmasked number ${n} printed`);

  // Its temp directory (configs, databases, keys, control socket) is gone.
  const dir = /Hub configuration: (\S+)\/hub\.yaml/.exec(out)?.[1];
  assert.ok(dir, "the demo names its temp directory");
  assert.equal(existsSync(dir), false, `${dir} left behind`);
});
