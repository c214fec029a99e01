import { useT } from "../i18n";
import { hrefFor, type Route } from "../router";

const PAGES = ["queue", "homes", "reports"] as const;

/** The console's sections; the queue's link carries how many incidents are open. */
export function Nav({ route, openCount }: { route: Route; openCount: number }) {
  const t = useT();
  const active = route.page === "incident" ? "queue" : route.page;
  return (
    <nav class="app-nav" aria-label={t("nav.label")}>
      {PAGES.map((page) => (
        <a key={page} href={hrefFor({ page })} aria-current={page === active ? "page" : undefined} data-nav={page}>
          {t(`nav.${page}`)}
          {page === "queue" && openCount > 0 && <span class="count">{openCount}</span>}
        </a>
      ))}
    </nav>
  );
}
