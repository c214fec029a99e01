// What the installer is asked to do at each step, in Chinese and English (docs/commissioning.md lists them).
import type { PlanDeviceKind } from "../../../protocol/commissioning.js";

export interface Bilingual {
  zh: string;
  en: string;
}

/** How a planned kind is proven: the device's own alarm, an observed state, or the valve's close and reopen. */
export type TestMethod = "alarm" | "presence" | "valve" | "none";

export interface KindInfo {
  /** Hub roles that can serve the planned kind (HubRole names). */
  roles: readonly string[];
  method: TestMethod;
  /** The alarm type the device's test raises (method "alarm"). */
  alarm?: string;
  /** A detector: its test alarm must clear again (the detector recovering) within the session's recovery time. */
  recovers?: true;
  name: Bilingual;
  instruction: Bilingual;
}

export const KINDS: Record<PlanDeviceKind, KindInfo> = {
  smoke_detector: { roles: ["smoke_detector"], method: "alarm", alarm: "smoke", recovers: true, name: { zh: "烟感", en: "smoke detector" }, instruction: { zh: "请按住烟感的测试按钮直到报警", en: "Press and hold the smoke detector's test button until it sounds" } },
  gas_detector: { roles: ["gas_detector"], method: "alarm", alarm: "gas", recovers: true, name: { zh: "燃气探测器", en: "gas detector" }, instruction: { zh: "请按下燃气探测器的测试按钮（或通入测试气体）；燃气阀会按真实报警关闭", en: "Press the gas detector's test button (or apply test gas); the gas valve closes as for a real alarm" } },
  co_detector: { roles: ["co_detector"], method: "alarm", alarm: "co", recovers: true, name: { zh: "一氧化碳探测器", en: "CO detector" }, instruction: { zh: "请按下一氧化碳探测器的测试按钮；燃气阀会按真实报警关闭", en: "Press the CO detector's test button; the gas valve closes as for a real alarm" } },
  sos_button: { roles: ["sos_button"], method: "alarm", alarm: "sos", name: { zh: "一键呼叫按钮", en: "one-key call button" }, instruction: { zh: "请按下一键呼叫按钮（测试，不会呼叫任何人）", en: "Press the one-key call button (a test: nobody is called)" } },
  gas_valve: { roles: ["valve"], method: "valve", name: { zh: "燃气阀", en: "gas valve" }, instruction: { zh: "请关闭燃气阀（燃气测试已关闭则跳过），确认关到位后运行 `anxin-hub valve reopen` 或在此按回车重新打开", en: "Close the gas valve (already closed by the gas test: skip), then reopen it: press Enter here or run `anxin-hub valve reopen`" } },
  fall_radar: { roles: ["fall_detector", "presence"], method: "presence", name: { zh: "跌倒雷达", en: "fall radar" }, instruction: { zh: "请在雷达前走动", en: "Walk in front of the radar" } },
  vital_radar: { roles: ["breathing_monitor", "presence"], method: "presence", name: { zh: "生命体征雷达", en: "vital-sign radar" }, instruction: { zh: "请在雷达前走动或躺到床上", en: "Walk in front of the radar or lie on the bed" } },
  camera: { roles: [], method: "none", name: { zh: "摄像头", en: "camera" }, instruction: { zh: "本网关不能安装摄像头：请用 --waive camera=<原因> 豁免", en: "not installable by this hub: waive it with --waive camera=<reason>" } },
};

export const RECOVER_TEXT: Bilingual = { zh: "正在等待探测器恢复（报警解除）：请移开测试气体或烟雾", en: "Waiting for the detector to recover (its alarm to clear): remove any test gas or smoke" };

export const FIND_TEXT: Bilingual = { zh: "正在查找设备：请给未上线的设备上电，Zigbee 设备请按配对键", en: "Finding devices: power any device not yet online; press the pairing button of Zigbee devices" };
