import { useEffect, useState } from "preact/hooks";
import { alarmBlocked, onAlarmChange, startAlarm, stopAlarm } from "./alarm";

/** Sounds the alarm while `on`; returns whether the browser is holding the sound back. */
export function useAlarm(on: boolean): boolean {
  const [blocked, setBlocked] = useState(alarmBlocked);
  useEffect(() => onAlarmChange(() => setBlocked(alarmBlocked())), []);
  useEffect(() => {
    if (on) startAlarm();
    else stopAlarm();
  }, [on]);
  // Leaving the queue (another page, sign-out) must not leave it beeping.
  useEffect(() => stopAlarm, []);
  return blocked;
}
