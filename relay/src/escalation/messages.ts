// The words a call or SMS says. Built here from the alarm type and the audience; they name the keys that
// keys.ts interprets. Contacts hear the address (they may have to go there); nobody hears a phone number.
import type { CarePlan } from "../careplans/schema.js";
import type { Channel } from "./policy.js";
import type { TargetRole } from "./plan.js";

const WHAT_ZH: Record<string, string> = {
  smoke: "烟雾（火警）",
  gas: "燃气泄漏",
  co: "一氧化碳",
  valve_fault: "燃气阀门故障",
  sos: "一键呼叫",
  fall: "跌倒",
  vital_absent: "生命体征消失",
  vital_abnormal: "生命体征异常",
  inactivity: "长时间无活动",
  hub_offline: "安全网关离线",
};
const WHAT_EN: Record<string, string> = {
  smoke: "smoke (fire)",
  gas: "gas leak",
  co: "carbon monoxide",
  valve_fault: "gas valve fault",
  sos: "emergency call button",
  fall: "fall",
  vital_absent: "no vital signs",
  vital_abnormal: "abnormal vital signs",
  inactivity: "no activity for a long time",
  hub_offline: "safety hub offline",
};

export function buildMessage(o: { type: string; role: TargetRole; channel: Channel; care: CarePlan | undefined; maintenance: boolean }): string {
  const zh = (o.care?.language ?? "zh") === "zh";
  const what = (zh ? WHAT_ZH : WHAT_EN)[o.type] ?? o.type;
  const address = o.care?.elder.address ?? "";
  const voice = o.channel === "voice";
  if (o.maintenance) {
    if (o.role === "elder")
      return zh
        ? `安心平台提醒：您家中的安全网关已离线，请检查电源和网络。${voice ? "您会去检查请按1。" : ""}`
        : `Anxin: your home safety hub is offline; please check its power and network.${voice ? " Press 1 if you will check it." : ""}`;
    return zh
      ? `安心平台提醒：${address}的安全网关已离线，需要上门检查。${voice ? "您会去检查请按1，不能请按2。" : ""}`
      : `Anxin: the safety hub at ${address} is offline and needs a visit.${voice ? " Press 1 if you will check it, 2 if you cannot." : ""}`;
  }
  if (o.role === "elder")
    return zh
      ? `安心平台紧急来电：您家中发生${what}报警。${voice ? "需要帮助请按1，平安无事请按2。" : "如需帮助请立即回电。"}`
      : `Anxin emergency call: a ${what} alarm went off in your home.${voice ? " Press 1 if you need help, 2 if you are fine." : " Call back at once if you need help."}`;
  return zh
    ? `安心平台紧急通知：${address}老人家中发生${what}报警，暂未确认老人安全。${voice ? "您能上门查看请按1，不能请按2。" : "请尽快上门查看。"}`
    : `Anxin emergency: a ${what} alarm at ${address}; the elder's safety is not yet confirmed.${voice ? " Press 1 if you will go to the door, 2 if you cannot." : " Please go to the door if you can."}`;
}

/** The arrival check to a responder who said they would go to the door: keys on a call, a reply by SMS. */
export function buildArrivalMessage(o: { channel: Channel; care: CarePlan | undefined }): string {
  const zh = (o.care?.language ?? "zh") === "zh";
  const address = o.care?.elder.address ?? "";
  if (o.channel === "voice")
    return zh
      ? `安心平台确认来电：您已答应上门查看${address}的老人。您已在老人身边请按1，未能到达请按2。`
      : `Anxin check: you said you would go to the door at ${address}. Press 1 if you are with the elder now, 2 if you could not get there.`;
  return zh
    ? `安心平台确认：您已答应上门查看${address}的老人。已在老人身边请回复1，未能到达请回复2。`
    : `Anxin check: you said you would go to the door at ${address}. Reply 1 if you are with the elder now, 2 if you could not get there.`;
}
