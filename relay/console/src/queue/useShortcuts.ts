import { useEffect, useRef } from "preact/hooks";

/** Single-key shortcuts (j, k, t, Enter…), ignored while typing in a field, with a modifier, or under a dialog. */
export function useShortcuts(keys: Record<string, () => void>): void {
  // The latest handlers without re-binding the listener on every render.
  const current = useRef(keys);
  current.current = keys;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing || e.defaultPrevented) return;
      if (document.querySelector("dialog[open]")) return;
      const target = e.target as HTMLElement | null;
      if (target?.closest("input, textarea, select, button, a, [contenteditable]")) {
        // Enter on a focused button or link is that control's own action.
        if (e.key === "Enter" || e.key === " " || target.closest("input, textarea, select, [contenteditable]")) return;
      }
      const handler = current.current[e.key];
      if (!handler) return;
      e.preventDefault();
      handler();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, []);
}
