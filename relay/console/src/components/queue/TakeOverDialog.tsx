import { useEffect, useRef } from "preact/hooks";
import { useT } from "../../i18n";

/** "Already taken by X — take it over?": a modal dialog (focus stays in it; Esc answers no). */
export function TakeOverDialog({ holder, onAnswer }: { holder: string; onAnswer: (takeOver: boolean) => void }) {
  const t = useT();
  const ref = useRef<HTMLDialogElement>(null);
  // The latest callback, so a re-render does not close and reopen the dialog.
  const answer = useRef(onAnswer);
  answer.current = onAnswer;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    dialog.showModal();
    const onClose = () => answer.current(dialog.returnValue === "confirm");
    dialog.addEventListener("close", onClose);
    return () => {
      dialog.removeEventListener("close", onClose);
      if (dialog.open) dialog.close();
    };
  }, []);
  return (
    <dialog ref={ref} class="take-over" data-testid="take-over" aria-labelledby="take-over-title">
      <form method="dialog">
        <h2 id="take-over-title">{t("takeOver.title")}</h2>
        <p>{t("takeOver.body", { name: holder })}</p>
        <div class="dialog-actions">
          <button value="cancel" data-testid="take-over-cancel" autofocus>
            {t("takeOver.cancel")}
          </button>
          <button value="confirm" class="primary" data-testid="take-over-confirm">
            {t("takeOver.confirm")}
          </button>
        </div>
      </form>
    </dialog>
  );
}
