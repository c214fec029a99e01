// `anxin-hub provision` sends a claim code and gets credentials back: over plain http to anything but this
// machine it refuses before sending (unless --insecure), and it warns before sending, never after.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isLoopback, provision, ProvisionError } from "../../gateway/src/uplink/provision.js";

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), "anxin-provision-"));
  dirs.push(d);
  return d;
}

const ANSWER = {
  hub: "hub-a",
  mqtt: { url: "mqtts://relay.example:8883", username: "hub-a", password: "s3cret-mqtt-password" },
  key: Buffer.alloc(32, 3).toString("base64"),
  heartbeatS: 60,
};

/** Replaces fetch for one call of `fn`, recording what happens in order. */
async function withFakeFetch<T>(events: string[], fn: () => Promise<T>): Promise<T> {
  const real = globalThis.fetch;
  globalThis.fetch = (async (input: string | URL | Request) => {
    events.push(`fetch ${input instanceof Request ? input.url : input.toString()}`);
    return new Response(JSON.stringify(ANSWER), { status: 200, headers: { "content-type": "application/json" } });
  });
  try {
    return await fn();
  } finally {
    globalThis.fetch = real;
  }
}

test("provision: plain http to another host is refused before anything is sent; --insecure allows it after a warning", async () => {
  const dir = tempDir();
  const secretsFile = path.join(dir, "data", "secrets.json");
  const go = (relay: string, insecure?: boolean) => {
    const events: string[] = [];
    const run = withFakeFetch(events, () =>
      provision({ relay, hub: "hub-a", code: "CLAIM-1234", secretsFile, dataDir: path.join(dir, "data"), insecure, warn: (m) => events.push(`warn ${m}`) }),
    );
    return { events, run };
  };

  for (const url of ["http://relay.example.org", "http://192.0.2.10:8080/", "http://[2001:db8::1]/", "http://10.0.0.1"]) {
    const r = go(url);
    await assert.rejects(r.run, (e: unknown) => {
      assert.ok(e instanceof ProvisionError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /refusing to send the claim code over plain http .*https:\/\/.*--insecure/);
      return true;
    });
    assert.deepEqual(r.events, [], `${url}: nothing sent, nothing written`);
    assert.equal(existsSync(secretsFile), false);
  }

  const insecure = go("http://relay.example.org", true);
  await insecure.run;
  assert.equal(insecure.events.length, 2);
  assert.match(insecure.events[0] as string, /^warn .*plain http.*cross the network unencrypted/);
  assert.match(insecure.events[1] as string, /^fetch http:\/\/relay\.example\.org\/v1\/enrol/);

  // This machine: allowed without the flag (tests, the demo), still with the warning first.
  for (const url of ["http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:8080"]) {
    const local = go(url);
    await local.run;
    assert.match(local.events[0] as string, /^warn .*plain http \(this machine\)/, url);
    assert.match(local.events[1] as string, /^fetch /, url);
  }

  // https: no warning at all.
  const tls = go("https://relay.example.org");
  await tls.run;
  assert.deepEqual(tls.events, ["fetch https://relay.example.org/v1/enrol"]);
});

test("isLoopback: only this machine's addresses", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "a.localhost", "[::1]", "[::ffff:7f00:1]"]) assert.equal(isLoopback(h), true, h);
  for (const h of ["relay.example", "127.example", "10.0.0.1", "0.0.0.0", "[::]", "[2001:db8::1]", "[::ffff:a00:1]", "localhost.example"]) assert.equal(isLoopback(h), false, h);
});

test("anxin-hub provision: refuses a plain-http relay elsewhere (exit 2) unless --insecure", async () => {
  const dir = tempDir();
  const config = path.join(dir, "hub.yaml");
  writeFileSync(config, "hub: { id: hub-cli, dataDir: ./data }\nuplink: {}\n");
  const cli = (args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) =>
      execFile(process.execPath, ["--import", "tsx", path.resolve("gateway/src/cli/main.ts"), "provision", ...args], { encoding: "utf8", timeout: 30_000 }, (e, out, err) =>
        resolve({ code: e ? Number((e as { code?: unknown }).code ?? 1) : 0, out, err }),
      ),
    );
  // 0.0.0.0 is not a loopback name (so plain http to it needs --insecure), yet connecting to it fails at once.
  const no = await cli(["--relay", "http://0.0.0.0:2", "--hub", "hub-cli", "--code", "CLAIM-1234", "--config", config]);
  assert.equal(no.code, 2, no.err);
  assert.match(no.err, /refusing to send the claim code over plain http/);
  assert.doesNotMatch(no.err, /cannot reach/);
  // With --insecure it goes ahead (and fails to reach the address, after the warning).
  const yes = await cli(["--relay", "http://0.0.0.0:2", "--hub", "hub-cli", "--code", "CLAIM-1234", "--config", config, "--insecure"]);
  assert.equal(yes.code, 1);
  assert.ok(yes.err.indexOf("warning: the relay is reached over plain http") >= 0 && yes.err.indexOf("warning") < yes.err.indexOf("cannot reach"), yes.err);
  assert.equal(existsSync(path.join(dir, "data", "secrets.json")), false);
});
