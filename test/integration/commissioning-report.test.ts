// The relay side of the commissioning report: a hub's signed `audit/commissioning_report` event, through the
// real ingest, lands in commissioning_reports in the event's commit (an invalid one stays an event only); the
// operator API hands it out as JSON, HTML and a PDF that is rendered back with pdftotext and searched for the
// devices, results and waiver; the household is masked; installers reach only their own homes; every read is
// audited. On SQLite and, with ANXIN_TEST_PG_URL, on PostgreSQL.
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { ulid } from "ulid";
import type { CommissioningReport } from "../../protocol/commissioning.js";
import type { Envelope } from "../../protocol/envelope.js";
import { signEnvelope } from "../../protocol/signing.js";
import { addToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { findCjkFont } from "../../relay/src/commissioning/fonts.js";
import { commissioningDb } from "../../relay/src/commissioning/tables.js";
import { dropPgSchema, PG_URL, pgSkipReason, uniquePgSchema } from "../support/pg.js";
import { startRelayForTest, type RelayRig } from "../support/relay-rig.js";

const HUB = "hub-report-1";
const ELDER = "张三丰";
const ADDRESS = "幸福路12弄3号502室";
const T0 = Date.parse("2026-12-06T02:00:00Z"); // 10:00 in Shanghai
const WAIVER_REASON = "elder declines a second smoke detector in the hall";

function report(household: string): CommissioningReport {
  return {
    v: 1,
    hub: HUB,
    household,
    plan: { version: 3, level: "medium", items: [{ kind: "smoke_detector", count: 2, rooms: ["bedroom", "living"] }, { kind: "gas_detector", count: 1, rooms: ["kitchen"] }, { kind: "sos_button", count: 1 }] },
    installer: "ivan-li",
    startedAt: T0,
    finishedAt: T0 + 40 * 60_000,
    state: "commissioned",
    devices: [
      { id: "smoke-bedroom", kind: "smoke_detector", model: "HS1SA-Z", address: "0x00124b0012345678", room: "卧室", signal: 168, battery: 97, result: "passed", testedAt: T0 + 5 * 60_000, eventId: ulid(T0 + 5 * 60_000), ackedAt: T0 + 5 * 60_000 + 180 },
      { id: "gas-kitchen", kind: "gas_detector", model: "JT-GAS-485", address: "rs485:/dev/ttyUSB0#3", room: "kitchen", result: "passed", testedAt: T0 + 12 * 60_000, eventId: ulid(T0 + 12 * 60_000), ackedAt: T0 + 12 * 60_000 + 95 },
      { id: "sos-bed", kind: "sos_button", model: "SOS-Z3", address: "0x00124b00abcdef01", room: "bedroom", signal: 201, battery: 88, result: "passed", testedAt: T0 + 20 * 60_000 },
      { id: null, kind: "smoke_detector", room: "living", result: "waived", waiver: { reason: WAIVER_REASON, by: "admin:root", at: T0 + 30 * 60_000 } },
    ],
  };
}

interface Backend {
  name: string;
  skip: string | false;
  store(t: TestContext): Record<string, unknown> | undefined;
}
const BACKENDS: Backend[] = [
  { name: "SQLite", skip: false, store: () => undefined },
  {
    name: "PostgreSQL",
    skip: PG_URL ? false : pgSkipReason("commissioning reports on PostgreSQL"),
    store: (t) => {
      const schema = uniquePgSchema("anxin_report");
      t.after(() => dropPgSchema(PG_URL as string, schema));
      return { kind: "postgres", url: PG_URL, schema, poolSize: 4 };
    },
  },
];

async function http(rig: RelayRig, p: string, token: string, init: { method?: string; body?: unknown } = {}) {
  const res = await fetch(`${rig.httpUrl}${p}`, {
    method: init.method ?? "GET",
    headers: { authorization: `Bearer ${token}`, ...(init.body ? { "content-type": "application/json" } : {}) },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
  });
  return { status: res.status, type: res.headers.get("content-type") ?? "", bytes: Buffer.from(await res.arrayBuffer()) };
}
const json = (r: { bytes: Buffer }) => JSON.parse(r.bytes.toString("utf8"));

/** The PDF's text as pdftotext (poppler-utils) renders it, whitespace folded to single spaces. */
async function pdfText(pdf: Buffer): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-pdf-"));
  try {
    const file = path.join(dir, "report.pdf");
    await writeFile(file, pdf);
    const out = spawnSync("pdftotext", ["-enc", "UTF-8", file, "-"], { encoding: "utf8" });
    assert.ok(!out.error, `pdftotext could not run (apt-get install poppler-utils): ${out.error?.message}`);
    assert.equal(out.status, 0, `pdftotext failed: ${out.stderr}`);
    return out.stdout.replace(/\s+/g, " ");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

for (const b of BACKENDS) {
  test(`${b.name}: a signed report through ingest is stored, served as JSON/HTML/PDF masked, role-checked and audited`, { skip: b.skip }, async (t) => {
    const logs: string[] = [];
    const log = pino({ level: "info" }, { write: (l: string) => void logs.push(l) });
    const store = b.store(t);
    const rig = await startRelayForTest({ log, config: store ? { store } : {} });
    t.after(() => rig.stop());
    const db = rig.relay.db;
    const tok = async (name: string, role: "admin" | "operator" | "installer") => (await addToken(db, name, role, Date.now())).token;
    const [admin, operator, installer, otherInstaller] = [await tok("root", "admin"), await tok("olga", "operator"), await tok("ivan", "installer"), await tok("ines", "installer")];

    // The installer registers the home (it is theirs), then the hub enrols and reports.
    const created = await http(rig, "/v1/households", installer, { method: "POST", body: { hub: HUB, elder: { name: ELDER }, address: ADDRESS, street: "石门二路街道", community: "幸福社区" } });
    assert.equal(created.status, 201, created.bytes.toString());
    const householdId = json(created).id as string;
    const key = Buffer.from((await rig.enrolHub(HUB)).key, "base64");
    const send = (seq: number, data: unknown): Envelope => {
      const env = signEnvelope({ v: 1, hub: HUB, boot: 1, seq, id: ulid(), ts: Date.now(), kind: "audit", type: "commissioning_report", severity: "info", data: data as Record<string, unknown> }, key);
      rig.relay.ingest.handle(HUB, Buffer.from(JSON.stringify(env)));
      return env;
    };
    const sent = report(householdId);
    const good = send(1, sent);
    // Invalid: "commissioned" although a device failed.
    const bad = send(2, { ...sent, devices: [{ id: "smoke-x", kind: "smoke_detector", result: "failed", detail: "no alarm seen" }] });
    await rig.relay.ingest.flush();

    // Both are events (nothing captured is lost); only the valid one is a report.
    assert.equal(await rig.relay.store.countEvents(HUB), 2);
    const rows = await commissioningDb(db).selectFrom("commissioning_reports").selectAll().execute();
    assert.deepEqual(
      rows.map((r) => ({ id: r.id, event_id: r.event_id, hub: r.hub, household_id: r.household_id, state: r.state, finished_at: Number(r.finished_at) })),
      [{ id: good.id, event_id: good.id, hub: HUB, household_id: householdId, state: "commissioned", finished_at: T0 + 40 * 60_000 }],
    );
    assert.deepEqual(JSON.parse(rows[0]!.report), sent);
    const invalidLine = logs.find((l) => l.includes("commissioning report invalid"));
    assert.ok(invalidLine, "the invalid report is logged");
    assert.match(invalidLine, new RegExp(bad.id));
    assert.match(invalidLine, /state: commissioned while a device is failed or missing/);
    const counted = await rig.relay.metrics.registry.getSingleMetricAsString("anxin_relay_commissioning_reports_total");
    assert.match(counted, /result="stored"} 1/);
    assert.match(counted, /result="invalid"} 1/);

    // The list and the JSON, household masked.
    const list = await http(rig, `/v1/hubs/${HUB}/commissioning-reports`, operator);
    assert.equal(list.status, 200, list.bytes.toString());
    assert.deepEqual(
      json(list).reports.map((r: Record<string, unknown>) => [r.id, r.eventId, r.state, r.devices, r.failed, r.waived, r.installer]),
      [[good.id, good.id, "commissioned", 4, 0, 1, "ivan-li"]],
    );
    const one = await http(rig, `/v1/commissioning-reports/${good.id}`, operator);
    assert.equal(one.status, 200);
    const body = json(one);
    assert.equal(body.signedBy, `hub:${HUB}`);
    assert.deepEqual(body.household, { id: householdId, elder: "张**", address: "幸福路12弄*号***室", street: "石门二路街道", community: "幸福社区" });
    assert.deepEqual(body.report, sent);
    assert.equal((await http(rig, `/v1/commissioning-reports/${bad.id}`, operator)).status, 404, "the invalid report is not served");

    // HTML, by suffix and by query: every device, result, the waiver, times in Shanghai; nothing unmasked.
    for (const p of [`/v1/commissioning-reports/${good.id}.html`, `/v1/commissioning-reports/${good.id}?format=html`]) {
      const page = await http(rig, p, admin);
      assert.equal(page.status, 200);
      assert.match(page.type, /^text\/html; charset=utf-8/);
      const html = page.bytes.toString("utf8");
      for (const d of sent.devices) {
        if (d.id) assert.ok(html.includes(d.id), `device ${d.id} in the HTML`);
        if (d.model) assert.ok(html.includes(d.model), `model ${d.model} in the HTML`);
        if (d.address) assert.ok(html.includes(d.address), `address ${d.address} in the HTML`);
      }
      for (const s of ["通过", "passed", "豁免", "waived", WAIVER_REASON, "admin:root", "卧室", "168", "97%", "2026-12-06 10:05:00 GMT+08:00", "ivan-li", "张**", "幸福路12弄*号***室", "石门二路街道", good.id, "调试报告", "Commissioning report", "已完成调试"])
        assert.ok(html.includes(s), `${s} in the HTML`);
      assert.ok(!html.includes(ELDER) && !html.includes("三丰"), "the elder's name is masked");
      assert.ok(!html.includes(ADDRESS) && !html.includes("502"), "the flat is masked");
      assert.ok(!/<script/i.test(html) && !/(src|href)="http/i.test(html), "self-contained");
    }

    // The PDF, made by the library, rendered back to text.
    const pdf = await http(rig, `/v1/commissioning-reports/${good.id}?format=pdf`, operator);
    assert.equal(pdf.status, 200);
    assert.equal(pdf.type, "application/pdf");
    assert.equal(pdf.bytes.subarray(0, 5).toString("latin1"), "%PDF-");
    const text = await pdfText(pdf.bytes);
    for (const d of sent.devices) {
      if (d.id) assert.ok(text.includes(d.id), `device ${d.id} in the PDF: ${text}`);
      if (d.model) assert.ok(text.includes(d.model), `model ${d.model} in the PDF`);
    }
    for (const s of ["passed", "waived", WAIVER_REASON, "2026-12-06 10:05:00 GMT+08:00", "ivan-li", good.id, "Commissioning report"]) assert.ok(text.includes(s), `${s} in the PDF: ${text}`);
    assert.equal((text.match(/\bpassed\b/g) ?? []).length >= 3, true, "each passed device shows its result");
    assert.ok(!text.includes("三丰") && !text.includes("502"), "nothing unmasked in the PDF");
    if (await findCjkFont()) {
      for (const s of ["调试报告", "设备", "豁免项", "通过", "卧室", "张**", "石门二路街道"]) assert.ok(text.includes(s), `${s} (Chinese) in the PDF: ${text}`);
      assert.ok(!text.includes("no CJK font"));
    } else {
      t.diagnostic("no CJK font on this machine: checking the English-only PDF");
      assert.ok(text.includes("no CJK font was found"));
    }
    assert.equal((await http(rig, `/v1/commissioning-reports/${good.id}.pdf`, admin)).type, "application/pdf");

    // Installers: their own home yes, another's no (audited); anything else 4xx.
    assert.equal((await http(rig, `/v1/commissioning-reports/${good.id}`, installer)).status, 200);
    assert.equal((await http(rig, `/v1/hubs/${HUB}/commissioning-reports`, installer)).status, 200);
    const refused = await http(rig, `/v1/commissioning-reports/${good.id}.pdf`, otherInstaller);
    assert.equal(refused.status, 403);
    assert.equal(json(refused).error, "forbidden");
    assert.equal((await http(rig, `/v1/hubs/${HUB}/commissioning-reports`, otherInstaller)).status, 403);
    assert.equal((await http(rig, `/v1/commissioning-reports/${good.id}.pdf?format=html`, admin)).status, 400);
    assert.equal((await http(rig, `/v1/commissioning-reports/${good.id}?format=docx`, admin)).status, 400);

    const audit = (await listAudit(db, { subject: HUB })).filter((a) => a.action.startsWith("commissioning_report."));
    const count = (action: string) => audit.filter((a) => a.action === action).length;
    assert.equal(count("commissioning_report.read"), 6, JSON.stringify(audit)); // json, 2 html, 2 pdf, the installer's json; never a 404 or a 400
    assert.equal(count("commissioning_report.list"), 2);
    assert.equal(count("commissioning_report.refused"), 2);
    assert.ok(audit.some((a) => a.action === "commissioning_report.read" && a.actor === "operator:olga" && a.purpose === `api; report ${good.id} as pdf`));
    assert.ok(audit.some((a) => a.action === "commissioning_report.refused" && a.actor === "installer:ines"));
    assert.ok(logs.every((l) => !l.includes(ELDER) && !l.includes(ADDRESS) && !l.includes(WAIVER_REASON)), "no personal data or report contents in the log");
  });
}
