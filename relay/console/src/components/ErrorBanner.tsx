import { errorMessage } from "../api/errors";
import { useT } from "../i18n";

/** An API or network error as a translated sentence; role=alert so screen readers announce it. */
export function ErrorBanner({ error, onDismiss }: { error: unknown; onDismiss?: () => void }) {
  const t = useT();
  if (error === undefined) return null;
  return (
    <div class="banner banner-error" role="alert" data-testid="error">
      <span>{errorMessage(t, error)}</span>
      {onDismiss && (
        <button type="button" class="banner-close" onClick={onDismiss} aria-label={t("common.dismiss")}>
          ×
        </button>
      )}
    </div>
  );
}
