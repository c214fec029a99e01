// The AT command queue (gateway/src/cellular/at-channel.ts) over a scripted link: one command at a time,
// echo skipped, unsolicited codes kept apart from answers, the `> ` prompt, and a timeout that frees the queue.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AtChannel, AtCommandError, AtTimeoutError, type AtLink } from "../../gateway/src/cellular/at-channel.js";

/** A link whose module answers each written command line from `reply` (null: says nothing). */
function scripted(reply: (written: Buffer) => string | null) {
  const written: Buffer[] = [];
  let listener: (b: Buffer) => void = () => {};
  const link: AtLink = {
    write(d) {
      written.push(d);
      const r = reply(d);
      if (r !== null) setImmediate(() => listener(Buffer.from(r, "latin1")));
    },
    onData: (l) => void (listener = l),
    close: async () => {},
  };
  return { link, written, push: (s: string) => listener(Buffer.from(s, "latin1")) };
}

test("one command at a time, echo skipped, unsolicited codes surfaced and not taken as answers", async () => {
  const s = scripted((d) => {
    const cmd = d.toString("latin1").trim();
    if (cmd === "AT+CREG?") return `${cmd}\r\r\n+CREG: 0\r\n\r\n+CREG: 0,1\r\nRING\r\n\r\nOK\r\n`;
    if (cmd === "AT+CSQ") return "\r\n+CSQ: 20,99\r\n\r\nOK\r\n";
    return "\r\nOK\r\n";
  });
  const ch = new AtChannel(s.link, 10_000);
  const urcs: string[] = [];
  ch.on("urc", (l) => urcs.push(l));
  const [a, b] = await Promise.all([ch.run({ line: "AT+CREG?", isAnswer: (l) => l.startsWith("+CREG:") && l.includes(",") }), ch.run({ line: "AT+CSQ" })]);
  assert.deepEqual(a.lines, ["+CREG: 0,1"]);
  assert.deepEqual(b.lines, ["+CSQ: 20,99"]);
  assert.deepEqual(urcs, ["+CREG: 0", "RING"]);
  assert.deepEqual(s.written.map((w) => w.toString("latin1")), ["AT+CREG?\r", "AT+CSQ\r"], "the second waited for the first");
  s.push("\r\n+CMTI: \"SM\",3\r\n");
  assert.deepEqual(urcs.at(-1), "+CMTI: \"SM\",3");
});

test("an unsolicited code in the same chunk as an answer's OK is not lost", async () => {
  const s = scripted((d) => (d.toString().startsWith("AT+CSQ") ? "\r\n+CSQ: 3,99\r\n\r\nOK\r\n\r\n+CEREG: 0\r\n" : "\r\nOK\r\n"));
  const ch = new AtChannel(s.link, 10_000);
  const urcs: string[] = [];
  ch.on("urc", (l) => urcs.push(l));
  await Promise.all([ch.run({ line: "AT+CSQ" }), ch.run({ line: "AT" })]);
  assert.deepEqual(urcs, ["+CEREG: 0"]);
});

test("error results carry their code", async () => {
  const s = scripted(() => "\r\n+CME ERROR: 10\r\n");
  const ch = new AtChannel(s.link, 10_000);
  await assert.rejects(ch.run({ line: "AT+CPIN?" }), (e: unknown) => e instanceof AtCommandError && e.code === 10 && /SIM not inserted/.test(e.message));
});

test("the > prompt: text and Ctrl-Z go after it, an error before it ends the command", async () => {
  const s = scripted((d) => (d.includes(0x1a) ? "\r\n+CMGS: 7\r\n\r\nOK\r\n" : d.toString().startsWith("AT+CMGS") ? "\r\n> " : null));
  const ch = new AtChannel(s.link, 10_000);
  const r = await ch.run({ line: 'AT+CMGS="+861"', afterPrompt: Buffer.from([0x41, 0x11]) });
  assert.deepEqual(r.lines, ["+CMGS: 7"]);
  assert.deepEqual([...s.written[1]!], [0x41, 0x11, 0x1a]);

  // An unsolicited code just before the prompt, in the same chunk, is kept.
  const busy = scripted((d) => (d.includes(0x1a) ? "\r\n+CMGS: 8\r\n\r\nOK\r\n" : "\r\n+CREG: 2\r\n\r\n> "));
  const ch3 = new AtChannel(busy.link, 10_000);
  const urcs: string[] = [];
  ch3.on("urc", (l) => urcs.push(l));
  assert.deepEqual((await ch3.run({ line: 'AT+CMGS="+861"', afterPrompt: Buffer.from("y") })).lines, ["+CMGS: 8"]);
  assert.deepEqual(urcs, ["+CREG: 2"]);

  const refusing = scripted(() => "\r\n+CMS ERROR: 310\r\n");
  const ch2 = new AtChannel(refusing.link, 10_000);
  await assert.rejects(ch2.run({ line: 'AT+CMGS="+861"', afterPrompt: Buffer.from("x") }), (e: unknown) => e instanceof AtCommandError && e.code === 310);
  assert.equal(refusing.written.length, 1, "no text without a prompt");
});

test("a timeout frees the queue; a timed-out text entry is abandoned with ESC", async () => {
  let silent = true;
  const s = scripted(() => (silent ? null : "\r\nOK\r\n"));
  const ch = new AtChannel(s.link, 10_000);
  await assert.rejects(ch.run({ line: 'AT+CMGS="+861"', afterPrompt: Buffer.from("x"), timeoutMs: 50 }), (e: unknown) => e instanceof AtTimeoutError && /no > prompt/.test(e.message));
  assert.deepEqual([...s.written.at(-1)!], [0x1b]);
  silent = false;
  assert.deepEqual((await ch.run({ line: "AT" })).lines, []);
  await ch.close();
  await assert.rejects(ch.run({ line: "AT" }), /closed/);
});
