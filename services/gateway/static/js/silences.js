// Silences: hold the notifications of matching alerts for a while (they stay in the queue).

import { api, query, viewer } from "./api.js";
import { h, loading, state } from "./dom.js";
import { fmtDateTime } from "./format.js";

const OPERATORS = { equal: "=", not_equal: "≠", regex: "matches", not_regex: "does not match" };
const DURATIONS = [[60, "1 hour"], [120, "2 hours"], [480, "8 hours"], [1440, "1 day"], [10080, "1 week"]];

function describe(silence) {
  return silence.matchers.map((m) => `${m.name} ${OPERATORS[m.operator] || m.operator} ${m.value}`).join(" and ");
}

export async function renderSilences(section, show) {
  section.replaceChildren(h("h2", {}, "Silences"),
    h("p", { class: "help" }, "A silence holds the notifications of the alerts whose labels match (e.g. rule, severity, team) until it ends; the alerts stay in the queue."));
  const list = h("div", {}, loading("the silences"));
  const name = h("input", { "aria-label": "Label", value: "rule", size: 10, list: "silence-labels" });
  const operator = h("select", { "aria-label": "Comparison" }, Object.entries(OPERATORS).map(([v, l]) => h("option", { value: v }, l)));
  const value = h("input", { "aria-label": "Value", size: 22, placeholder: "e.g. city-transit-line-3" });
  const minutes = h("select", { "aria-label": "For how long" }, DURATIONS.map(([m, l]) => h("option", { value: m, selected: m === 120 }, l)));
  const comment = h("input", { "aria-label": "Comment", size: 24, placeholder: "why" });
  const form = h("form", { class: "controls", "aria-label": "New silence" },
    h("datalist", { id: "silence-labels" }, ["rule", "severity", "kind", "team"].map((l) => h("option", { value: l }))),
    h("label", {}, "Label", name), h("label", {}, "Comparison", operator), h("label", {}, "Value", value),
    h("label", {}, "For", minutes), h("label", {}, "Comment", comment), h("button", { type: "submit" }, "Create silence"));
  section.append(list, h("h3", {}, "New silence"), form);

  async function refresh() {
    try {
      const { silences } = await api(`/api/silences${query({})}`);
      list.replaceChildren(silences.length
        ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Matches"), h("th", {}, "Ends"), h("th", {}, "By"), h("th", {}, "Comment"), h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
          h("tbody", {}, silences.map((s) => h("tr", {}, h("td", {}, describe(s)), h("td", {}, fmtDateTime(s.ends_at)), h("td", {}, s.created_by), h("td", {}, s.comment),
            h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `End the silence on ${describe(s)} now`,
              onclick: async () => { try { await api(`/api/silences/${encodeURIComponent(s.id)}/expire`, { method: "POST" }); refresh(); } catch (e) { show(e.message); } } }, "End now"))))))
        : state("empty", "No active silence."));
    } catch (error) {
      list.replaceChildren(state("error", error.message));
    }
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!viewer().name) { show("Enter your name at the top of the page first: silences record who created them."); return; }
    try {
      await api("/api/silences", { method: "POST", body: {
        matchers: [{ name: name.value.trim(), value: value.value.trim(), operator: operator.value }],
        minutes: Number(minutes.value), comment: comment.value.trim(), by: viewer().name } });
      value.value = ""; comment.value = "";
      refresh();
    } catch (error) { show(error.message); }
  });
  await refresh();
}
