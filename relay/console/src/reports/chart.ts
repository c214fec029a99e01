// Bar charts with Chart.js, bundled (no CDN) and with only the parts a horizontal bar chart needs registered,
// so esbuild leaves the rest out. Every bar carries its value as text beside it, and a second series differs
// from the first by its fill (solid or outlined) as well as its colour, so nothing depends on telling colours
// apart. Animation is off: the page shows figures, and tests never wait on a transition.
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip, type ChartConfiguration, type Plugin } from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip, Legend);

export interface Series {
  label: string;
  data: number[];
  /** "solid": filled bars; "outline": an outline on white, for a second series. */
  look: "solid" | "outline";
}

export interface BarChartSpec {
  labels: string[];
  series: Series[];
  /** A value as the text shown beside its bar and on the axis (e.g. a duration). */
  format: (value: number) => string;
  /** Counts: no ticks between whole numbers on the axis. */
  integers?: boolean;
}

/** The console's colours (base.css), read at drawing time so the chart matches the page. */
function cssColour(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/** Writes each bar's value at its end (Chart.js draws none without a plugin). */
function valueLabels(format: (v: number) => string): Plugin<"bar"> {
  return {
    id: "anxinValueLabels",
    afterDatasetsDraw(chart) {
      const { ctx } = chart;
      ctx.save();
      ctx.fillStyle = cssColour("--text", "#1b1f24");
      ctx.font = "12px system-ui, sans-serif";
      ctx.textBaseline = "middle";
      chart.data.datasets.forEach((ds, i) => {
        const meta = chart.getDatasetMeta(i);
        if (meta.hidden) return;
        meta.data.forEach((bar, j) => {
          const v = ds.data[j];
          if (typeof v === "number") ctx.fillText(format(v), bar.x + 4, bar.y);
        });
      });
      ctx.restore();
    },
  };
}

export function barConfig(spec: BarChartSpec): ChartConfiguration<"bar", number[], string> {
  const accent = cssColour("--accent", "#1f5fbf");
  const muted = cssColour("--muted", "#59636e");
  return {
    type: "bar",
    data: {
      labels: spec.labels,
      datasets: spec.series.map((s) => ({
        label: s.label,
        data: s.data,
        backgroundColor: s.look === "solid" ? accent : "#ffffff",
        borderColor: s.look === "solid" ? accent : muted,
        borderWidth: s.look === "solid" ? 0 : 2,
        maxBarThickness: 22,
      })),
    },
    options: {
      indexAxis: "y",
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      // Room on the right for the value written beside the longest bar.
      layout: { padding: { right: 72 } },
      scales: {
        x: { beginAtZero: true, ticks: { callback: (v) => spec.format(Number(v)), maxTicksLimit: 6, ...(spec.integers ? { precision: 0 } : {}) } },
        y: { ticks: { autoSkip: false } },
      },
      plugins: {
        legend: { display: spec.series.length > 1, position: "bottom" },
        tooltip: { callbacks: { label: (c) => `${c.dataset.label ?? ""}: ${spec.format(c.parsed.x ?? 0)}` } },
      },
    },
    plugins: [valueLabels(spec.format)],
  };
}

/** Enough height for every bar to keep its label readable. */
export function chartHeight(bars: number, series: number): number {
  return Math.max(140, bars * (series > 1 ? 44 : 30) + (series > 1 ? 90 : 60));
}

export { Chart };
