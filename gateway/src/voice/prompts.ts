// The fixed catalogue of what the hub may say to the elder. Nothing else is ever spoken: no text from the
// network, no text from a configuration file. Each prompt is rendered once, offline, to a WAV file named by its
// id (render.ts) and played from there (player.ts).
import type { Announcement } from "../../../protocol/messages.js";

export type Language = "zh-CN" | "en";

/**
 * How a prompt is queued: `urgent` is advice about a danger now (gas, a possible fall) and the one-key call's
 * own answer; `alarm` is news about an alarm the elder already knows of; both play in quiet hours. `info` is
 * held back in quiet hours.
 */
export type Urgency = "urgent" | "alarm" | "info";

export interface Prompt {
  urgency: Urgency;
  /** How long a queued prompt stays worth saying (it waits behind a siren or another prompt). */
  keepMs: number;
  /** Queuing this prompt drops these (its text already says what they say). */
  supersedes?: readonly PromptId[];
  text: Record<Language, string>;
}

export const PROMPT_IDS = [
  "call_sent",
  "platform_received",
  "family_coming",
  "helper_coming",
  "operator_handling",
  "help_dispatched",
  "gas_alarm",
  "gas_valve_closed",
  "fall_check",
  "inactivity_check",
  "voice_test",
] as const;
export type PromptId = (typeof PROMPT_IDS)[number];

const MIN = 60_000;

export const PROMPTS: Record<PromptId, Prompt> = {
  call_sent: { urgency: "urgent", keepMs: 2 * MIN, text: { "zh-CN": "呼叫已发出。", en: "Your call has been sent." } },
  platform_received: { urgency: "alarm", keepMs: 5 * MIN, text: { "zh-CN": "平台已收到。", en: "The duty platform has received your call." } },
  family_coming: { urgency: "alarm", keepMs: 10 * MIN, text: { "zh-CN": "您的家人正在赶来。", en: "Your family is on the way." } },
  helper_coming: { urgency: "alarm", keepMs: 10 * MIN, text: { "zh-CN": "有人正在赶来帮助您。", en: "Someone is on the way to help you." } },
  operator_handling: { urgency: "alarm", keepMs: 10 * MIN, text: { "zh-CN": "值班人员正在处理您的呼叫。", en: "The duty team is dealing with your call." } },
  help_dispatched: { urgency: "alarm", keepMs: 10 * MIN, text: { "zh-CN": "救援人员已经出发。", en: "Help has been sent and is on the way." } },
  gas_alarm: {
    urgency: "urgent",
    keepMs: 15 * MIN,
    text: {
      "zh-CN": "检测到燃气泄漏。请打开窗户，不要开关任何电器，不要点火，请离开房间。",
      en: "Gas leak detected. Open the windows, do not switch anything on or off, no flames, and leave the room.",
    },
  },
  gas_valve_closed: {
    urgency: "urgent",
    keepMs: 15 * MIN,
    supersedes: ["gas_alarm"],
    text: {
      "zh-CN": "燃气阀门已关闭。请打开窗户，不要开关任何电器，不要点火，请离开房间。",
      en: "The gas valve is closed. Open the windows, do not switch anything on or off, no flames, and leave the room.",
    },
  },
  fall_check: {
    urgency: "urgent",
    keepMs: 2 * MIN,
    text: {
      "zh-CN": "您是否摔倒了？如果您没事，请起身走动一下。如果需要帮助，请按呼叫按钮。",
      en: "Have you fallen? If you are fine, please get up and move about. If you need help, press the call button.",
    },
  },
  inactivity_check: {
    urgency: "alarm",
    keepMs: 10 * MIN,
    text: {
      "zh-CN": "很久没有检测到您的活动，平台会给您打电话。如果您没事，请走动一下并接听电话。如果需要帮助，请按呼叫按钮。",
      en: "We have not noticed you moving for a long time; the platform will call you. If you are fine, please move about and answer the phone. If you need help, press the call button.",
    },
  },
  voice_test: { urgency: "info", keepMs: MIN, text: { "zh-CN": "语音提示正常。", en: "Voice prompts are working." } },
};

/** The prompt each announcement from the relay is spoken as. */
export const ANNOUNCEMENT_PROMPT: Record<Announcement, PromptId> = {
  family_coming: "family_coming",
  helper_coming: "helper_coming",
  operator_handling: "operator_handling",
  help_dispatched: "help_dispatched",
};

/** The file a prompt is rendered to and played from, inside the prompts folder. */
export function promptFile(language: Language, id: PromptId): string {
  return `${language}/${id}.wav`;
}
