// MQTT topic names of wire contract v1.
export const TOPIC_ROOT = "anxin/v1";
export const topics = {
  evt: (hub: string) => `${TOPIC_ROOT}/${hub}/evt`,
  ack: (hub: string) => `${TOPIC_ROOT}/${hub}/ack`,
  state: (hub: string) => `${TOPIC_ROOT}/${hub}/state`,
  cmd: (hub: string) => `${TOPIC_ROOT}/${hub}/cmd`,
};
