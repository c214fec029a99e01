// The form of one lifecycle action in a modal dialog: its fields, required ones marked, sent with Enter or
// the button; Esc cancels. A refusal from the relay stays in the dialog beside what was entered.
import { useEffect, useRef } from "preact/hooks";
import { errorMessage } from "../../api/errors";
import { useT } from "../../i18n";
import { FIELDS, type Field } from "../../incident/actions";
import type { ActionState } from "../../incident/useAction";

export function ActionDialog({ action }: { action: ActionState }) {
  const t = useT();
  const ref = useRef<HTMLDialogElement>(null);
  const cancel = useRef(action.cancel);
  cancel.current = action.cancel;
  const name = action.open;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    dialog.showModal();
    // Esc (the dialog's own cancel) closes it without sending.
    const onCancel = (e: Event) => {
      e.preventDefault();
      cancel.current();
    };
    dialog.addEventListener("cancel", onCancel);
    return () => {
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
    };
  }, []);
  if (!name) return null;
  const fields = FIELDS[name];
  const titleId = "incident-action-title";
  return (
    <dialog ref={ref} class="incident-dialog" data-testid="action-dialog" data-action={name} aria-labelledby={titleId}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action.submit();
        }}
      >
        <h2 id={titleId}>{t(`incident.action.${name}`)}</h2>
        <p class="muted">{t(`incident.explain.${name}`)}</p>
        {fields.map((f, i) => (
          <FieldInput key={f.name} field={f} value={action.values[f.name] ?? ""} autofocus={i === 0} onInput={(v) => action.set(f.name, v)} invalid={action.invalid?.field === f.name} />
        ))}
        {action.invalid && (
          <p class="field-error" role="alert" data-testid="field-error">
            {t(`incident.form.${action.invalid.problem}`, { field: t(`incident.field.${action.invalid.field}`) })}
          </p>
        )}
        {action.error !== undefined && (
          <div class="banner banner-error" role="alert" data-testid="action-error">
            {errorMessage(t, action.error)}
          </div>
        )}
        <div class="dialog-actions">
          <button type="button" data-testid="action-cancel" onClick={action.cancel}>
            {t("incident.cancel")}
          </button>
          <button type="submit" class="primary" data-testid="action-submit" disabled={action.busy}>
            {t(action.busy ? "incident.sending" : "incident.submit")}
          </button>
        </div>
      </form>
    </dialog>
  );
}

function FieldInput({ field, value, autofocus, invalid, onInput }: { field: Field; value: string; autofocus: boolean; invalid: boolean; onInput: (v: string) => void }) {
  const t = useT();
  const id = `incident-field-${field.name}`;
  const label = (
    <label for={id}>
      {t(`incident.field.${field.name}`)}
      {field.required ? <span class="required"> {t("incident.form.requiredMark")}</span> : <span class="muted"> {t("incident.form.optional")}</span>}
    </label>
  );
  const common = { id, name: field.name, autofocus, "aria-invalid": invalid, "aria-required": field.required };
  if (field.kind === "select") {
    return (
      <div class="field">
        {label}
        <select {...common} value={value} onChange={(e) => onInput((e.target as HTMLSelectElement).value)}>
          <option value="">{t("incident.form.choose")}</option>
          {field.options.map((o) => (
            <option key={o} value={o}>
              {t(`incident.${field.name}.${o}`)}
            </option>
          ))}
        </select>
      </div>
    );
  }
  return (
    <div class="field">
      {label}
      {field.kind === "textarea" ? (
        <textarea {...common} rows={3} maxLength={field.max} value={value} onInput={(e) => onInput((e.target as HTMLTextAreaElement).value)} />
      ) : (
        <input {...common} type="text" maxLength={field.max} value={value} onInput={(e) => onInput((e.target as HTMLInputElement).value)} />
      )}
    </div>
  );
}
