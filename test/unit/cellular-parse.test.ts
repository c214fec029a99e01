// Reading a modem's answers (gateway/src/cellular/at-parse.ts): final result codes, +CSQ, +CREG/+CEREG in
// both their read and unsolicited forms, +COPS, +CPIN, +CMGS.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isRegReadLine, isUrc, parseCmgs, parseCops, parseCpin, parseCsq, parseFinal, parseRegRead, parseRegUrc, simStateOfCme } from "../../gateway/src/cellular/at-parse.js";

test("final result codes", () => {
  assert.deepEqual(parseFinal("OK"), { ok: true });
  assert.deepEqual(parseFinal("ERROR"), { ok: false, kind: "error" });
  assert.deepEqual(parseFinal("+CME ERROR: 10"), { ok: false, kind: "cme", code: 10, text: "SIM not inserted" });
  assert.deepEqual(parseFinal("+CMS ERROR: 330"), { ok: false, kind: "cms", code: 330, text: "SMSC address unknown" });
  assert.deepEqual(parseFinal("+CMS ERROR: 331"), { ok: false, kind: "cms", code: 331, text: "no network service" });
  assert.deepEqual(parseFinal("+CMS ERROR: 500"), { ok: false, kind: "cms", code: 500, text: "unknown error" });
  assert.deepEqual(parseFinal("+CME ERROR: 9999"), { ok: false, kind: "cme", code: 9999, text: "unknown error" });
  // A module left at AT+CMEE=2 answers in words.
  assert.deepEqual(parseFinal("+CME ERROR: SIM not inserted"), { ok: false, kind: "cme", code: null, text: "SIM not inserted" });
  for (const l of ["+CSQ: 20,99", "OKAY", "RING", "> ", ""]) assert.equal(parseFinal(l), null, l);
});

test("+CSQ: rssi to dBm, 99 unknown", () => {
  assert.deepEqual(parseCsq("+CSQ: 0,0"), { rssi: 0, dbm: -113, ber: 0 });
  assert.deepEqual(parseCsq("+CSQ: 20,99"), { rssi: 20, dbm: -73, ber: null });
  assert.deepEqual(parseCsq("+CSQ: 31,7"), { rssi: 31, dbm: -51, ber: 7 });
  assert.deepEqual(parseCsq("+CSQ: 99,99"), { rssi: null, dbm: null, ber: null });
  for (const l of ["+CSQ: 32,99", "+CSQ: ,", "+CSQ: 20", "+CREG: 0,1", "+CSQ: a,1"]) assert.equal(parseCsq(l), null, l);
});

test("+CREG / +CEREG: read responses and unsolicited reports", () => {
  assert.equal(parseRegRead("+CREG: 0,1"), "home");
  assert.equal(parseRegRead("+CREG: 2,5,\"1A2B\",\"00C3D4\",7"), "roaming");
  assert.equal(parseRegRead("+CREG: 0,2"), "searching");
  assert.equal(parseRegRead("+CREG: 0,3"), "denied");
  assert.equal(parseRegRead("+CREG: 0,0"), "not_registered");
  assert.equal(parseRegRead("+CEREG: 0,1", "CEREG"), "home");
  assert.equal(parseRegRead("+CEREG: 0,1"), null, "asked for CREG");
  assert.equal(parseRegRead("+CREG: 1"), null, "an unsolicited report is not the read answer");

  assert.equal(isRegReadLine("+CREG: 0,1"), true);
  assert.equal(isRegReadLine("+CREG: 1"), false);
  assert.equal(isRegReadLine("+CEREG: 1,\"1A2B\",\"01A2B3C4\",7"), false);
  assert.deepEqual(parseRegUrc("+CREG: 0"), { name: "CREG", state: "not_registered" });
  assert.deepEqual(parseRegUrc("+CEREG: 5,\"1A2B\",\"01A2B3C4\",7"), { name: "CEREG", state: "roaming" });
  assert.equal(isUrc("+CREG: 0"), true);
  assert.equal(isUrc("+CREG: 0,1"), false, "the answer to AT+CREG?");
  for (const l of ["RING", "+CMTI: \"SM\",3", "+QIND: SMS DONE", "RDY", "+CPIN: NOT READY"]) assert.equal(isUrc(l), true, l);
  for (const l of ["+CSQ: 20,99", "OK", "+COPS: 0"]) assert.equal(isUrc(l), false, l);
});

test("+COPS: the operator's name or none", () => {
  assert.equal(parseCops('+COPS: 0,0,"CHINA MOBILE",7'), "CHINA MOBILE");
  assert.equal(parseCops('+COPS: 0,0,"Op, with comma",2'), "Op, with comma");
  assert.equal(parseCops("+COPS: 0"), null);
  assert.equal(parseCops('+COPS: 0,0,""'), null);
});

test("+CPIN, the SIM errors and +CMGS", () => {
  assert.equal(parseCpin("+CPIN: READY"), "ready");
  assert.equal(parseCpin("+CPIN: SIM PIN"), "pin");
  assert.equal(parseCpin("+CPIN: SIM PUK"), "puk");
  assert.equal(parseCpin("+CPIN: PH-NET PIN"), "other");
  assert.equal(parseCpin("+CSQ: 1,1"), null);
  assert.equal(simStateOfCme(10), "absent");
  assert.equal(simStateOfCme(13), "failure");
  assert.equal(parseCmgs("+CMGS: 42"), 42);
  assert.equal(parseCmgs("+CMGS: x"), null);
});
