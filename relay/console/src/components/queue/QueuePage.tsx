import { useEffect, useMemo, useState } from "preact/hooks";
import type { Row, User } from "../../api/types";
import { useT } from "../../i18n";
import { sortRows } from "../../queue/sort";
import type { Incidents } from "../../queue/useIncidents";
import { useNow } from "../../queue/useNow";
import { useShortcuts } from "../../queue/useShortcuts";
import { useTake } from "../../queue/useTake";
import { navigate } from "../../router";
import { ErrorBanner } from "../ErrorBanner";
import { QueueTable } from "./QueueTable";
import { TakeOverDialog } from "./TakeOverDialog";

/** The duty queue: open incidents, most urgent first, taken with a click or the keyboard. */
export function QueuePage({ user, incidents }: { user: User; incidents: Incidents }) {
  const t = useT();
  const now = useNow();
  const rows = useMemo(() => sortRows(incidents.rows.values()), [incidents.rows]);
  const take = useTake(incidents.upsert);
  const [selectedId, setSelectedId] = useState<string | undefined>(undefined);
  const open = (id: string) => navigate({ page: "incident", id });

  const move = (by: number) => {
    const i = rows.findIndex((r) => r.id === selectedId);
    const next = i < 0 ? rows[0] : rows[Math.min(rows.length - 1, Math.max(0, i + by))];
    if (next) setSelectedId(next.id);
  };
  const selected = (): Row | undefined => rows.find((r) => r.id === selectedId);
  useShortcuts({
    j: () => move(1),
    k: () => move(-1),
    t: () => {
      const row = selected();
      if (row && row.takenBy?.username !== user.username) void take.take(row);
    },
    Enter: () => {
      const row = selected();
      if (row) open(row.id);
    },
  });
  useScrollIntoView(selectedId);

  return (
    <section class="queue-page">
      <div class="queue-head">
        <h1>{t("queue.heading")}</h1>
        <span class="queue-count">{t("queue.count", { count: rows.length })}</span>
        <LiveStatus live={incidents.live} />
      </div>
      <ErrorBanner error={incidents.loadError} />
      <ErrorBanner error={take.error} onDismiss={take.dismissError} />
      {rows.length === 0 ? (
        <p class="empty">{t("queue.empty")}</p>
      ) : (
        <QueueTable rows={rows} user={user} now={now} selectedId={selectedId} busy={take.busy} onSelect={setSelectedId} onOpen={open} onTake={(row) => void take.take(row)} />
      )}
      <p class="hint">{t("queue.hint")}</p>
      {take.conflict && <TakeOverDialog holder={take.conflict.holder} onAnswer={take.answer} />}
    </section>
  );
}

function LiveStatus({ live }: { live: boolean }) {
  const t = useT();
  return (
    <span class={live ? "live live-on" : "live live-off"} role="status" data-testid="live">
      {t(live ? "queue.live" : "queue.reconnecting")}
    </span>
  );
}

/** Keeps the keyboard's selection on screen in a long queue. */
function useScrollIntoView(id: string | undefined): void {
  useEffect(() => {
    if (id !== undefined) document.querySelector(`tr[data-id="${CSS.escape(id)}"]`)?.scrollIntoView({ block: "nearest" });
  }, [id]);
}
