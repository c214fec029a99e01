// What a rendered report shows, in one place for both renderings (HTML, PDF): the bilingual labels, the
// household masked, times in the district's zone. The renderers only lay this out.
import type { CommissioningReport, DeviceResult, PlanDeviceKind } from "../../../protocol/commissioning.js";
import type { Household } from "../households/store.js";
import { maskAddress, maskName } from "../households/mask.js";

/** [Chinese, English]. */
export type Label = readonly [string, string];

export const LABELS = {
  title: ["调试报告", "Commissioning report"],
  state: ["状态", "State"],
  household: ["住户", "Household"],
  householdId: ["住户编号", "Household id"],
  elder: ["老人", "Elder"],
  address: ["地址", "Address"],
  street: ["街道", "Street"],
  community: ["社区", "Community"],
  notRegistered: ["未在平台登记", "not registered at the relay"],
  hub: ["网关", "Hub"],
  installer: ["安装人员", "Installer"],
  started: ["开始", "Started"],
  finished: ["完成", "Finished"],
  received: ["平台接收", "Received by the relay"],
  plan: ["配置方案", "Plan"],
  planVersion: ["方案版本", "Plan version"],
  level: ["风险等级", "Risk level"],
  count: ["数量", "Count"],
  rooms: ["房间", "Rooms"],
  devices: ["设备", "Devices"],
  device: ["设备编号", "Device"],
  kind: ["类型", "Kind"],
  model: ["型号", "Model"],
  deviceAddress: ["通信地址", "Address"],
  room: ["房间", "Room"],
  signal: ["信号", "Signal (LQI)"],
  battery: ["电量", "Battery"],
  result: ["结果", "Result"],
  testedAt: ["测试时间", "Tested at"],
  ackedAt: ["平台确认", "Acked by the relay"],
  testEvent: ["测试事件", "Test event"],
  detail: ["说明", "Detail"],
  waivers: ["豁免项", "Waivers"],
  waiverReason: ["原因", "Reason"],
  waivedBy: ["批准人", "Waived by"],
  waivedAt: ["时间", "At"],
  none: ["无", "none"],
  notConfigured: ["未配置", "not configured"],
  signature: ["签名", "Signature"],
  secondPath: ["备用通道（蜂窝）", "Second path (cellular)"],
  sim: ["SIM 卡", "SIM"],
  registration: ["网络注册", "Registration"],
  operator: ["运营商", "Operator"],
  rssi: ["信号强度", "Signal"],
  longestSms: ["最长告警短信", "Longest alarm SMS"],
  testSms: ["测试短信", "Test SMS"],
} as const satisfies Record<string, Label>;

export const RESULT_LABELS: Record<DeviceResult, Label> = {
  passed: ["通过", "passed"],
  failed: ["失败", "failed"],
  missing: ["缺失", "missing"],
  waived: ["豁免", "waived"],
};
export const STATE_LABELS: Record<CommissioningReport["state"], Label> = { commissioned: ["已完成调试", "commissioned"], blocked: ["调试受阻", "blocked"] };
export const LEVEL_LABELS: Record<CommissioningReport["plan"]["level"], Label> = { low: ["低", "low"], medium: ["中", "medium"], high: ["高", "high"] };
export const KIND_LABELS: Record<PlanDeviceKind, Label> = {
  smoke_detector: ["烟雾探测器", "smoke_detector"],
  gas_detector: ["燃气探测器", "gas_detector"],
  gas_valve: ["燃气切断阀", "gas_valve"],
  co_detector: ["一氧化碳探测器", "co_detector"],
  sos_button: ["一键呼叫", "sos_button"],
  camera: ["摄像头", "camera"],
  fall_radar: ["跌倒雷达", "fall_radar"],
  vital_radar: ["生命体征雷达", "vital_radar"],
};

/** The household as a report shows it: name and address masked. */
export interface HouseholdView {
  id: string;
  elder: string;
  address: string;
  street: string;
  community: string;
}

export function householdView(h: Household): HouseholdView {
  return { id: h.id, elder: maskName(h.elder.name), address: maskAddress(h.address), street: h.street, community: h.community };
}

export interface ReportView {
  id: string;
  /** The signed event in `events` that carried the report. */
  eventId: string;
  hub: string;
  receivedAt: number;
  report: CommissioningReport;
  household: HouseholdView | null;
}

/** 2026-03-01 08:00:05 GMT+08:00 in `timeZone`. */
export function formatTime(ms: number | undefined, timeZone: string): string {
  if (ms === undefined) return "—";
  const d = new Date(ms);
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", { timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "longOffset" })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  ) as Record<string, string>;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName === "GMT" ? "GMT+00:00" : parts.timeZoneName}`;
}

/** The statement that the content is the hub's, not the relay's. */
export function signatureLine(v: ReportView): Label {
  return [
    `本报告由网关 ${v.hub} 以其密钥签名，作为事件 ${v.eventId} 发送；签名原文保存在平台的事件记录中。`,
    `This report was signed by hub ${v.hub} with its own key and sent as event ${v.eventId}; the signed original is kept in the relay's events.`,
  ];
}

export const present = (x: string | number | undefined | null, suffix = ""): string => (x === undefined || x === null ? "—" : `${x}${suffix}`);

/** The household's rows, masked, for either rendering. */
export function householdViewRows(h: HouseholdView): Array<[Label, string]> {
  return [
    [LABELS.householdId, h.id],
    [LABELS.elder, h.elder],
    [LABELS.address, h.address],
    [LABELS.street, h.street],
    [LABELS.community, h.community],
  ];
}

/** The second path's rows (absent when the hub has no cellular module), for either rendering. */
export function secondPathRows(r: CommissioningReport, t: (ms: number | undefined) => string): Array<[Label, string]> | null {
  const c = r.secondPath;
  if (!c) return null;
  return [
    [LABELS.result, `${RESULT_LABELS[c.result][0]} ${RESULT_LABELS[c.result][1]}`],
    [LABELS.sim, present(c.sim)],
    [LABELS.registration, present(c.registration)],
    [LABELS.operator, present(c.operator)],
    [LABELS.rssi, present(c.rssiDbm, " dBm")],
    [LABELS.longestSms, `${c.longestSms} / 160`],
    [LABELS.testSms, c.testedAt === undefined ? "—" : `${t(c.testedAt)}${c.mr !== undefined ? ` (ref ${c.mr})` : ""}`],
    ...(c.detail ? [[LABELS.detail, c.detail] as [Label, string]] : []),
    ...(c.waiver ? [[LABELS.waivers, `${c.waiver.reason} (${c.waiver.by}, ${t(c.waiver.at)})`] as [Label, string]] : []),
  ];
}
