// Overview: volume and sentiment over time, tone, share of voice, emerging terms and the CX index
// per topic, for the chosen period against the one before it.

import { api, query } from "./api.js";
import { COLORS, chartPanel, draw } from "./charts.js";
import { h, loading, state } from "./dom.js";
import { fmtDate, fmtDateTime, fmtDecimal, fmtNumber, fmtPercent } from "./format.js";

const PERIODS = { "1d": "Last day", "3d": "Last 3 days", "7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days" };

function controls(params, ctx) {
  const period = h("select", { name: "period" },
    Object.entries(PERIODS).map(([value, label]) => h("option", { value, selected: (params.get("period") || "7d") === value }, label)));
  const q = h("input", { name: "q", type: "search", value: params.get("q") || "", placeholder: "all posts", size: 28 });
  const from = h("input", { name: "from", type: "date", value: (params.get("from") || "").slice(0, 10) });
  const end = params.get("to") ? new Date(Date.parse(params.get("to")) - 86400000).toISOString().slice(0, 10) : "";
  const to = h("input", { name: "to", type: "date", value: end });
  return h("form", {
    class: "controls", "aria-label": "Period and query",
    onsubmit: (event) => {
      event.preventDefault();
      const next = new URLSearchParams({ period: period.value });
      if (q.value.trim()) next.set("q", q.value.trim());
      if (from.value && to.value) {
        next.set("from", from.value);
        next.set("to", new Date(Date.parse(to.value) + 86400000).toISOString().slice(0, 10));
      }
      ctx.go(next);
    },
  },
  h("label", {}, "Period (ending at the newest post)", period),
  h("label", {}, "or from", from),
  h("label", {}, "to (inclusive)", to),
  h("label", {}, "Only posts matching", q),
  h("button", { type: "submit" }, "Update"));
}

function delta(current, previous, unit, higherIsBetter = true) {
  if (current === null || previous === null || previous === undefined) {
    return h("span", { class: "delta flat" }, "no earlier data to compare");
  }
  const diff = unit === "%" ? (previous ? (current - previous) / previous : null) : current - previous;
  if (diff === null) return h("span", { class: "delta flat" }, "none in the previous period");
  // higherIsBetter null: a change that is neither good nor bad in itself (volume).
  const direction = Math.abs(diff) < 1e-9 || higherIsBetter === null ? "flat" : (diff > 0) === higherIsBetter ? "up" : "down";
  const arrow = diff > 0 ? "▲" : diff < 0 ? "▼" : "■";
  const amount = unit === "%" ? fmtPercent(Math.abs(diff)) : unit === "pts" ? `${fmtDecimal(Math.abs(diff * 100))} points`
    : `${fmtDecimal(Math.abs(diff))} points`;
  const words = diff > 0 ? "up" : diff < 0 ? "down" : "unchanged";
  return h("span", { class: `delta ${direction}` }, `${arrow} ${words} ${diff ? amount : ""} vs previous period`);
}

function kpi(label, value, comparison) {
  return h("div", { class: "kpi" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), comparison);
}

function kpis(totals) {
  return h("section", { class: "kpis", "aria-label": "Key figures" },
    kpi("Posts", fmtNumber(totals.posts), delta(totals.posts, totals.previous_posts, "%", null)),
    kpi("Negative share", fmtPercent(totals.negative_share), delta(totals.negative_share, totals.previous_negative_share, "pts", false)),
    kpi("CX index (0–100)", fmtDecimal(totals.cx), delta(totals.cx, totals.previous_cx, "index")),
    kpi("Unique authors", fmtNumber(totals.unique_authors), null));
}

function volumeChart(doc) {
  const { panel, plot } = chartPanel("Volume and sentiment over time",
    `${fmtNumber(doc.totals.posts)} posts, stacked by sentiment per ${doc.period.interval}.`);
  const x = doc.volume.map((b) => b.start);
  draw(plot, ["negative", "neutral", "positive"].map((name) => ({
    type: "bar", name, x, y: doc.volume.map((b) => b[name]), marker: { color: COLORS[name] },
    hovertemplate: `%{x}<br>${name}: %{y:,}<extra></extra>`,
  })), { barmode: "stack", yaxis: { title: { text: "posts" } } });
  return panel;
}

function toneChart(doc) {
  const section = h("section", { class: "panel", "aria-label": "Tone" }, h("h2", {}, "Tone"));
  if (!doc.tone.has_tone) {
    section.append(state("empty", "These posts carry no tone yet (emotions and offensive language appear once the tone models have enriched them)."));
    return section;
  }
  const { panel, plot } = chartPanel("Emotions over time", "Posts per interval by their most likely emotion.");
  const x = doc.volume.map((b) => b.start);
  section.append(
    h("p", {}, "Offensive posts: ", h("strong", {}, fmtNumber(doc.tone.offensive)), ` (${fmtPercent(doc.tone.offensive_share)} of posts with tone)`),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Emotion"), h("th", { class: "num" }, "Posts"), h("th", { class: "num" }, "Share"))),
      h("tbody", {}, doc.tone.emotions.map((e) => h("tr", {}, h("td", {}, e.key), h("td", { class: "num" }, fmtNumber(e.count)), h("td", { class: "num" }, fmtPercent(e.share)))))),
    plot);
  panel.remove();
  draw(plot, ["anger", "sadness", "optimism", "joy"].map((name) => ({
    type: "scatter", mode: "lines", stackgroup: "tone", name, x, y: doc.volume.map((b) => b[name]), line: { color: COLORS[name] },
  })), { yaxis: { title: { text: "posts" } } });
  return section;
}

function channelsChart(doc) {
  const { panel, plot } = chartPanel("Share of voice by channel",
    doc.channels.map((c) => `${c.key} ${fmtPercent(c.share)}`).join(", "));
  if (!doc.channels.length) { plot.replaceWith(state("empty", "No posts in this period.")); return panel; }
  draw(plot, [{ type: "pie", hole: 0.5, labels: doc.channels.map((c) => c.key), values: doc.channels.map((c) => c.count),
    textinfo: "label+percent", sort: false }], { showlegend: false, margin: { l: 10, r: 10, t: 10, b: 10 } });
  return panel;
}

// The days of a period as the Search form reads them: from its first day to its last, inclusive.
function days(period) {
  return { from: period.from.slice(0, 10), to: new Date(Date.parse(period.to) - 1).toISOString().slice(0, 10) };
}

function termsList(doc) {
  const section = h("section", { class: "panel", "aria-label": "Top emerging terms" }, h("h2", {}, "Top emerging terms"),
    h("p", { class: "help" }, "Words unusually frequent in this period compared with all of the agency's posts."));
  if (!doc.emerging_terms.length) {
    section.append(state("empty", "No term stands out in this period. A period that holds most of the agency's posts has nothing to stand out against: choose a shorter one."));
    return section;
  }
  const top = Math.max(...doc.emerging_terms.map((t) => t.score)) || 1;
  section.append(h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Term"), h("th", { class: "num" }, "Posts in period"),
    h("th", { class: "num" }, "Posts ever"), h("th", {}, "How unusual"))),
  h("tbody", {}, doc.emerging_terms.map((t) => h("tr", {},
    h("td", {}, h("a", { href: `#/search?${new URLSearchParams({ q: t.key, ...days(doc.period) })}` }, t.key)),
    h("td", { class: "num" }, fmtNumber(t.count)), h("td", { class: "num" }, fmtNumber(t.background_count)),
    h("td", { class: "bar" }, h("div", { class: "meter", role: "img", "aria-label": `${fmtDecimal((100 * t.score) / top)} of 100` },
      h("span", { style: `width:${(100 * t.score) / top}%` }))))))));
  return section;
}

function cxPanel(doc) {
  const section = h("section", { class: "panel", "aria-label": "CX index per topic" }, h("h2", {}, "CX index per topic"),
    h("p", { class: "help" }, "Net sentiment on 0–100: 0 all negative, 50 balanced, 100 all positive. "
      + `This period (${fmtDate(doc.period.from)} – ${fmtDate(doc.period.to)}) against the one before it.`));
  if (!doc.topics.length) { section.append(state("empty", "No post in this period was assigned a topic.")); return section; }
  const plot = h("div", { class: "chart", role: "img", "aria-label": `CX index over time for ${doc.topics.map((t) => t.topic).join(", ")}` });
  section.append(plot, h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Topic"), h("th", { class: "num" }, "Posts"),
    h("th", { class: "num" }, "CX this period"), h("th", { class: "num" }, "Previous period"), h("th", {}, "Change"))),
  h("tbody", {}, doc.topics.map((t) => h("tr", {}, h("td", {}, t.topic.replaceAll("_", " ")), h("td", { class: "num" }, fmtNumber(t.posts)),
    h("td", { class: "num" }, fmtDecimal(t.cx)), h("td", { class: "num" }, fmtDecimal(t.previous_cx)),
    h("td", {}, delta(t.cx, t.previous_cx, "index")))))));
  draw(plot, doc.topics.map((t) => ({
    type: "scatter", mode: "lines+markers", connectgaps: false, name: t.topic.replaceAll("_", " "),
    x: t.series.map((p) => p.start), y: t.series.map((p) => p.cx),
  })), { yaxis: { range: [0, 100], title: { text: "CX index" } } });
  return section;
}

export async function render(main, params, ctx) {
  main.append(controls(params, ctx));
  const body = h("div", { "aria-busy": "true" }, loading("the overview"));
  main.append(body);
  const doc = await api(`/api/overview${query({ period: params.get("period"), q: params.get("q"), from: params.get("from"), to: params.get("to") })}`)
    .catch((error) => { body.replaceChildren(state("error", error.message)); return null; });
  body.removeAttribute("aria-busy");
  if (!doc) return;
  body.replaceChildren(h("p", { class: "help" }, `${fmtDateTime(doc.period.from)} – ${fmtDateTime(doc.period.to)}, compared with `
    + `${fmtDateTime(doc.period.previous_from)} – ${fmtDateTime(doc.period.from)}.`));
  if (!doc.totals.posts) {
    body.append(state("empty", "No posts in this period. Choose a longer period, or check that posts are being ingested."));
    return;
  }
  body.append(kpis(doc.totals));
  const grid = h("div", { class: "grid" });
  body.append(grid);
  grid.append(volumeChart(doc), toneChart(doc), channelsChart(doc), termsList(doc));
  body.append(cxPanel(doc));
}
