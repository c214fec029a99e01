// One bar chart on a canvas, with its title as the caption and as the canvas's accessible name. The table
// beside it carries the same figures, so nothing depends on reading the chart.
import { useEffect, useRef } from "preact/hooks";
import { barConfig, Chart, chartHeight, type BarChartSpec } from "../../reports/chart";

interface Props extends BarChartSpec {
  title: string;
  testId: string;
}

export function BarChart({ title, testId, labels, series, format, integers }: Props) {
  const box = useRef<HTMLDivElement>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  // Redrawn when what it shows changes (figures, or words after a language switch), not on every render.
  const signature = JSON.stringify([labels, series, series.map((s) => s.data.map(format)), integers]);
  const latest = useRef<BarChartSpec>({ labels, series, format, integers });
  latest.current = { labels, series, format, integers };

  useEffect(() => {
    const el = canvas.current;
    const wrap = box.current;
    if (!el || !wrap) return;
    const spec = latest.current;
    // Set through the CSSOM, which the page's style-src 'self' allows (an inline style attribute it would not).
    wrap.style.height = `${chartHeight(spec.labels.length, spec.series.length)}px`;
    // Drawn afresh each time: the value labels' plugin holds its formatter, and these charts are small.
    const chart = new Chart(el, barConfig(spec));
    return () => chart.destroy();
  }, [signature]);

  return (
    <figure class="report-chart" data-testid={testId}>
      <figcaption>{title}</figcaption>
      <div class="report-chart-box" ref={box}>
        <canvas ref={canvas} role="img" aria-label={title} />
      </div>
    </figure>
  );
}
