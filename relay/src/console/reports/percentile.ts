// Percentiles by linear interpolation between the two nearest ranks (PostgreSQL's percentile_cont, and the
// usual median: the mean of the two middle values when there is an even number). SQLite has no percentile
// function, so the database ranks the values and returns only the ranks these formulas need (rankIndices);
// the interpolation happens here.

/** A percentile as a fraction in tenths (5 = median, 9 = 90th): integer arithmetic, the same in SQL and here. */
export type Tenths = 5 | 9;

/** The 0-based ranks p's interpolation reads among n sorted values: floor(p·(n−1)) and ceil(p·(n−1)). */
export function rankIndices(n: number, p: Tenths): [number, number] {
  const h10 = p * (n - 1);
  return [Math.floor(h10 / 10), Math.ceil(h10 / 10)];
}

/** The percentile from the values at the ranks rankIndices named; undefined when there are none. */
export function interpolate(n: number, p: Tenths, at: (rank: number) => number | undefined): number | undefined {
  if (n <= 0) return undefined;
  const [lo, hi] = rankIndices(n, p);
  const a = at(lo);
  const b = at(hi);
  if (a === undefined || b === undefined) return undefined;
  const frac = ((p * (n - 1)) % 10) / 10;
  return Math.round(a + (b - a) * frac);
}

/** The same over a whole list (tests and small inputs). */
export function percentile(values: readonly number[], p: Tenths): number | undefined {
  const sorted = [...values].sort((x, y) => x - y);
  return interpolate(sorted.length, p, (k) => sorted[k]);
}

