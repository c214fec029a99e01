// The camera stills of an incident, for the operator who has taken it (or an admin). Nothing is fetched until
// the operator asks: each list and each image is recorded in the audit log under their name, and the panel
// says so before anything is shown. The images come from the relay itself (same origin, never cached).
import { useEffect, useState } from "preact/hooks";
import { ApiError } from "../../api/client";
import { listStills, stillImageUrl, type StillsList } from "../../api/stills";
import { formatDateTime } from "../../format";
import { useT } from "../../i18n";
import { ErrorBanner } from "../ErrorBanner";

export function Stills({ incidentId }: { incidentId: string }) {
  const t = useT();
  const [list, setList] = useState<StillsList | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [notTaken, setNotTaken] = useState(false);
  const [busy, setBusy] = useState(false);

  // Another incident: nothing of the last one stays on screen.
  useEffect(() => {
    setList(undefined);
    setError(undefined);
    setNotTaken(false);
  }, [incidentId]);

  const load = async () => {
    setBusy(true);
    setError(undefined);
    setNotTaken(false);
    try {
      setList(await listStills(incidentId));
    } catch (err) {
      if (err instanceof ApiError && err.code === "not_taken") setNotTaken(true);
      else setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="panel stills" data-testid="stills" data-state={list ? "shown" : "hidden"} aria-labelledby="stills-title">
      <h2 id="stills-title">{t("stills.heading")}</h2>
      <p class="stills-notice" data-testid="stills-notice">
        {t("stills.notice")}
      </p>
      <ErrorBanner error={error} />
      {notTaken && (
        <p class="banner banner-info" role="status" data-testid="stills-not-taken">
          {t("stills.notTaken")}
        </p>
      )}
      <button type="button" class="stills-load" data-testid="stills-load" disabled={busy} onClick={() => void load()}>
        {t(busy ? "stills.loading" : list ? "stills.refresh" : "stills.show")}
      </button>
      {list && list.stills.length === 0 && <p class="muted">{t("stills.none", { hours: list.retentionHours })}</p>}
      {list && list.stills.length > 0 && (
        <ul class="stills-list">
          {list.stills.map((s) => (
            <li key={s.id} class="still" data-id={s.id}>
              <img src={stillImageUrl(incidentId, s.id)} alt={t("stills.alt", { index: s.index, time: formatDateTime(new Date(s.takenAt)) })} loading="lazy" decoding="async" />
              <span class="still-caption">
                {t("stills.caption", { index: s.index, time: formatDateTime(new Date(s.takenAt)) })}
                <span class="muted"> · {t("stills.expires", { time: formatDateTime(new Date(s.expiresAt)) })}</span>
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
