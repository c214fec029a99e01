import type { Urgency } from "../../api/homes";
import { tCode, useT } from "../../i18n";

/** Urgency as a shape and a word as well as a colour (never colour alone), like the queue's severity. */
export function UrgencyBadge({ urgency }: { urgency: Urgency }) {
  const t = useT();
  return (
    <span class={`urg urg-${urgency}`} data-testid="urgency" data-urgency={urgency}>
      <UrgencyIcon urgency={urgency} />
      {tCode(t, "homes.urgency", urgency)}
    </span>
  );
}

/**
 * Octagon (stop) with "!" for urgent, triangle with "!" for attention, circle with "i" for a notice: the marks
 * are cut out (even-odd), so the shapes stay apart even at 14 px and in one colour.
 */
const SHAPES: Record<string, string> = {
  urgent: "M5 1H11L15 5V11L11 15H5L1 11V5Z M7 3.5H9V9.5H7Z M7 11H9V13H7Z",
  attention: "M8 0.5L15.8 15H0.2Z M7.1 5.5H8.9V10.5H7.1Z M7.1 11.8H8.9V13.5H7.1Z",
  notice: "M8 1A7 7 0 1 1 7.99 1Z M7 3.5H9V5.5H7Z M7 7H9V12.5H7Z",
};

export function UrgencyIcon({ urgency }: { urgency: string }) {
  return (
    <svg class="urg-icon" viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">
      <path fill-rule="evenodd" d={SHAPES[urgency] ?? SHAPES.notice} />
    </svg>
  );
}
