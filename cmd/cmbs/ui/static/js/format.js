// Number formats shared by the views.

/** rate formats events per second. */
export function rate(v) {
  if (v === null || v === undefined) return '–';
  return `${v < 10 ? v.toFixed(2) : v.toFixed(1)}/s`;
}

/** seconds formats a duration in seconds, in ms below one second. */
export function seconds(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v < 1) return `${(v * 1000).toFixed(v < 0.01 ? 2 : 1)} ms`;
  return `${v.toFixed(2)} s`;
}

/** count formats a counter value. */
export function count(v) {
  if (v === null || v === undefined) return '–';
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
