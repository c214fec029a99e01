// Loads the report for a period; an answer for a period no longer chosen is dropped.
import { useEffect, useState } from "preact/hooks";
import { getReport, type Report } from "../api/reports";
import type { Period } from "./period";

export interface ReportState {
  report: Report | undefined;
  loading: boolean;
  error: unknown;
}

export function useReport(period: Period | undefined): ReportState {
  const [state, setState] = useState<ReportState>({ report: undefined, loading: false, error: undefined });
  const since = period?.since;
  const until = period?.until;
  useEffect(() => {
    if (since === undefined || until === undefined) return;
    let current = true;
    setState((s) => ({ ...s, loading: true, error: undefined }));
    getReport(since, until).then(
      (report) => current && setState({ report, loading: false, error: undefined }),
      (error: unknown) => current && setState((s) => ({ ...s, loading: false, error })),
    );
    return () => {
      current = false;
    };
  }, [since, until]);
  return state;
}
