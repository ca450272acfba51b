// Charts drawn with Plotly (served by the gateway from the plotly package), in the viewer's locale.

import { h, state } from "./dom.js";
import { plotlySeparators } from "./format.js";

export const COLORS = {
  negative: "#c2410c", neutral: "#9ca3af", positive: "#1d6fb8",
  anger: "#b91c1c", joy: "#f59e0b", optimism: "#16a34a", sadness: "#4f46e5",
};

// A chart panel: a heading, the plot (an image with a summary for screen readers) and a note.
export function chartPanel(title, summary) {
  const plot = h("div", { class: "chart", role: "img", "aria-label": `${title}. ${summary}` });
  return { panel: h("section", { class: "panel", "aria-label": title }, h("h2", {}, title), plot), plot };
}

// Drawn once the calling page has put the plot into the document, so Plotly can size it.
export function draw(plot, traces, layout = {}) {
  window.setTimeout(() => drawNow(plot, traces, layout), 0);
}

function drawNow(plot, traces, layout) {
  if (!window.Plotly) {
    plot.replaceWith(state("error", "The charting library could not be loaded; the figures are in the tables."));
    return;
  }
  window.Plotly.newPlot(plot, traces, {
    separators: plotlySeparators(),
    margin: { l: 50, r: 20, t: 10, b: 40 },
    font: { family: "system-ui, sans-serif", size: 12 },
    legend: { orientation: "h", y: -0.2 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    ...layout,
  }, { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] });
}
