// Numbers and dates in the viewer's own locale (Intl, with the browser's language settings).

const number = new Intl.NumberFormat();
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const percent = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export const fmtNumber = (n) => (n === null || n === undefined ? "–" : number.format(n));
export const fmtDecimal = (n) => (n === null || n === undefined ? "–" : decimal.format(n));
export const fmtPercent = (x) => (x === null || x === undefined ? "–" : percent.format(x));
export const fmtDateTime = (iso) => (iso ? dateTime.format(new Date(iso)) : "–");
export const fmtDate = (iso) => (iso ? dateOnly.format(new Date(iso)) : "–");

export function fmtAgo(iso) {
  if (!iso) return "never";
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  const steps = [[60, "second"], [3600, "minute"], [86400, "hour"], [604800, "day"], [Infinity, "week"]];
  let unit = 1;
  for (const [limit, name] of steps) {
    if (Math.abs(seconds) < limit) return relative.format(Math.round(seconds / unit), name);
    unit = limit;
  }
  return fmtDateTime(iso);
}

// Plotly's `separators`: the decimal then the thousands character of the viewer's locale.
export function plotlySeparators() {
  const parts = new Intl.NumberFormat().formatToParts(12345.6);
  const dec = parts.find((p) => p.type === "decimal")?.value || ".";
  const group = parts.find((p) => p.type === "group")?.value || ",";
  return dec + group;
}

export function plural(n, one, many) { return `${fmtNumber(n)} ${n === 1 ? one : many}`; }
