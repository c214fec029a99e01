import { useT } from "../i18n";
import { hrefFor } from "../router";

/** A page that is not built yet: says so in the operator's language and leads back to the queue. */
export function Placeholder({ text }: { text: string }) {
  const t = useT();
  return (
    <section class="placeholder" data-testid="placeholder">
      <h1>{t("placeholder.coming")}</h1>
      <p>{text}</p>
      <a href={hrefFor({ page: "queue" })}>{t("placeholder.back")}</a>
    </section>
  );
}
