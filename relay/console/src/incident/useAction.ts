// Carrying out one lifecycle action from its dialog: the request, then either the result to show (and a
// re-read of the incident) or the relay's refusal, translated, left in the dialog beside what was entered.
import { useCallback, useState } from "preact/hooks";
import { performAction, type ActionName, type Incident } from "../api/incident";
import { bodyOf, emptyValues, missingField, type FormValues } from "./actions";

export interface ActionDone {
  action: ActionName;
  incident: Incident;
  at: number;
}

export interface ActionState {
  /** The action whose dialog is open. */
  open: ActionName | undefined;
  values: FormValues;
  busy: boolean;
  /** A field still needing input, checked before anything is sent. */
  invalid: ReturnType<typeof missingField>;
  /** The relay refused or could not be reached. */
  error: unknown;
  done: ActionDone | undefined;
  start: (action: ActionName) => void;
  set: (field: string, value: string) => void;
  submit: () => Promise<void>;
  cancel: () => void;
  dismissDone: () => void;
}

export function useAction(id: string, after: () => Promise<void>): ActionState {
  const [open, setOpen] = useState<ActionName | undefined>(undefined);
  const [values, setValues] = useState<FormValues>({});
  const [busy, setBusy] = useState(false);
  const [invalid, setInvalid] = useState<ReturnType<typeof missingField>>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [done, setDone] = useState<ActionDone | undefined>(undefined);

  const start = useCallback((action: ActionName) => {
    setOpen(action);
    setValues(emptyValues(action));
    setInvalid(undefined);
    setError(undefined);
  }, []);

  const set = useCallback((field: string, value: string) => setValues((v) => ({ ...v, [field]: value })), []);

  const submit = useCallback(async () => {
    if (!open || busy) return;
    const missing = missingField(open, values);
    setInvalid(missing);
    if (missing) return;
    setBusy(true);
    setError(undefined);
    try {
      const out = await performAction(id, open, bodyOf(open, values));
      setDone({ action: open, incident: out.incident, at: out.entry.at });
      setOpen(undefined);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
      // Refused or done: either way the page shows the incident as it is now (and the buttons that fit it).
      void after();
    }
  }, [open, busy, values, id, after]);

  const cancel = useCallback(() => {
    setOpen(undefined);
    setError(undefined);
    setInvalid(undefined);
  }, []);

  return { open, values, busy, invalid, error, done, start, set, submit, cancel, dismissDone: () => setDone(undefined) };
}
