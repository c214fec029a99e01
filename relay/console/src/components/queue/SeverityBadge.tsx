import { tCode, useT } from "../../i18n";

/** Severity as a shape and a word as well as a colour: never colour alone. */
export function SeverityBadge({ severity }: { severity: string }) {
  const t = useT();
  return (
    <span class={`sev sev-${severity}`} data-testid="severity">
      <SeverityIcon severity={severity} />
      {tCode(t, "severity", severity)}
    </span>
  );
}

function SeverityIcon({ severity }: { severity: string }) {
  // Octagon (stop sign) for critical, triangle for high and warning, circle for the rest.
  const shape =
    severity === "critical" ? (
      <polygon points="5,1 11,1 15,5 15,11 11,15 5,15 1,11 1,5" />
    ) : severity === "high" || severity === "warning" ? (
      <polygon points="8,1 15,15 1,15" />
    ) : (
      <circle cx="8" cy="8" r="7" />
    );
  return (
    <svg class="sev-icon" viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">
      {shape}
    </svg>
  );
}
