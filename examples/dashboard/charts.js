// The job charts, drawn by Chart.js (vendor/chart.umd.js, loaded by index.html before this
// module, vendored by scripts/refresh-dashboard-vendor.sh). Each chart's datasets hold the API's
// numbers as they came (milliseconds, fractions, null for a day without a value); only the axes
// and tooltips format them.
import { formatDuration } from './views.js';

const { Chart } = globalThis;

const PALETTE = {
  p50: '--RUNNING',
  p95: '--accent',
  failureRate: '--FAIL',
};

function color(variable) {
  return getComputedStyle(document.documentElement).getPropertyValue(variable).trim() || '#667085';
}

function percent(fraction) {
  return `${(fraction * 100).toFixed(fraction > 0 && fraction < 0.1 ? 1 : 0)} %`;
}

/** The options both charts share: no animation (a redraw is immediate), a day per label. */
function baseOptions(yTick, tooltipLabel) {
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    interaction: { mode: 'index', intersect: false },
    plugins: {
      legend: { position: 'bottom', labels: { boxWidth: 12 } },
      tooltip: { callbacks: { label: tooltipLabel } },
    },
    scales: {
      x: {
        ticks: {
          maxRotation: 0,
          maxTicksLimit: 10,
          // `05-31` under the axis; the label (and the tooltip's title) keeps the whole date.
          callback(value) {
            return this.getLabelForValue(value).slice(5);
          },
        },
      },
      y: { beginAtZero: true, ticks: { callback: yTick } },
    },
  };
}

/** Create the chart on `canvas`, or give the one there new labels, data and options. */
function draw(canvas, type, labels, datasets, options) {
  if (!Chart) throw new Error('Chart.js is missing: vendor/chart.umd.js did not load');
  const existing = Chart.getChart(canvas);
  if (existing) {
    existing.data.labels = labels;
    existing.data.datasets = datasets;
    existing.options = options;
    existing.update();
    return existing;
  }
  return new Chart(canvas, { type, data: { labels, datasets }, options });
}

/** `2025-05-31T00:00:00.000Z` -> `2025-05-31`: a bucket of the timeline is a UTC day. */
export function dayLabel(start) {
  return start.slice(0, 10);
}

/** p50 and p95 duration per day (milliseconds; null: no run of that day has a duration). */
export function drawDurations(canvas, timeline) {
  const p50 = color(PALETTE.p50);
  const p95 = color(PALETTE.p95);
  const line = (label, data, stroke) => ({
    label,
    data,
    borderColor: stroke,
    backgroundColor: stroke,
    borderWidth: 2,
    pointRadius: 2,
    spanGaps: false,
  });
  return draw(
    canvas,
    'line',
    timeline.map((bucket) => dayLabel(bucket.start)),
    [
      line('p50', timeline.map((bucket) => bucket.durationMs.p50), p50),
      line('p95', timeline.map((bucket) => bucket.durationMs.p95), p95),
    ],
    baseOptions(
      (value) => formatDuration(Math.round(value)),
      (item) => `${item.dataset.label}: ${formatDuration(Math.round(item.raw))}`,
    ),
  );
}

/** FAIL / all runs per day (null: no run that day), from each bucket's counts by status. */
export function failureRates(timeline) {
  return timeline.map((bucket) => {
    if (bucket.count === 0) return null;
    const failed = bucket.countsByStatus.find((entry) => entry.status === 'FAIL')?.count ?? 0;
    return failed / bucket.count;
  });
}

export function drawFailureRates(canvas, timeline) {
  const fill = color(PALETTE.failureRate);
  const counts = timeline.map((bucket) => ({
    failed: bucket.countsByStatus.find((entry) => entry.status === 'FAIL')?.count ?? 0,
    all: bucket.count,
  }));
  const options = baseOptions(
    (value) => percent(value),
    (item) => {
      const { failed, all } = counts[item.dataIndex];
      return `failed: ${percent(item.raw)} (${failed} of ${all})`;
    },
  );
  options.scales.y.suggestedMax = 0.1;
  return draw(
    canvas,
    'bar',
    timeline.map((bucket) => dayLabel(bucket.start)),
    [{ label: 'failure rate', data: failureRates(timeline), backgroundColor: fill }],
    options,
  );
}

/** Empty both charts (no job, or the request failed). */
export function clearChart(canvas) {
  Chart.getChart(canvas)?.destroy();
}
