// Topics: what the agency says its services are, how each topic is scored and how well, the marks
// analysts gave, and the jobs re-tagging history after a change.

import { api, viewer } from "./api.js";
import { announce, h, loading, state } from "./dom.js";
import { fmtAgo, fmtNumber, fmtPercent } from "./format.js";

const SCORER_WORDS = { description: "its description", prototype: "its description and examples", classifier: "a classifier trained on marks" };

function who() {
  const name = viewer().name;
  if (!name) throw new Error("Enter your name at the top of the page first: topic changes record who made them.");
  return name;
}

export function qualityText(q) {
  const marks = `${fmtNumber(q.relevant_marks)} relevant / ${fmtNumber(q.not_relevant_marks)} not relevant marks`;
  if (q.scorer === "classifier") {
    return `Scored by ${SCORER_WORDS.classifier}: precision ${fmtPercent(q.precision)}, recall ${fmtPercent(q.recall)} `
      + `on marks it was not trained on (${q.folds}-fold cross-validation); ${marks}.`;
  }
  return `Scored by ${SCORER_WORDS[q.scorer] || "its description"}; ${marks}; a classifier takes over after ${fmtNumber(q.marks_needed)} more.`;
}

function lines(text) { return text.split("\n").map((line) => line.trim()).filter(Boolean); }

function editor(topic, onSaved, show) {
  const named = Boolean(topic);
  const el = h("form", { class: "panel", "aria-label": named ? `Edit topic ${topic.name}` : "New topic" },
    h("h2", {}, named ? `Edit ${topic.name}` : "New topic"),
    h("div", { class: "controls" },
      h("label", {}, "Name", h("input", { name: "name", required: true, pattern: "[a-z][a-z0-9_]{0,63}", value: topic?.name || "",
        readonly: named, placeholder: "fares_and_tickets", size: 22 })),
      h("label", {}, "Threshold", h("input", { name: "threshold", type: "number", min: 0.01, max: 0.99, step: 0.01,
        value: topic?.threshold || 0.5, size: 5 })),
      h("label", { style: "flex:1 1 20rem" }, "Must match (optional query)", h("input", { name: "query", value: topic?.query || "",
        placeholder: '"ticket machine" OR fare*' }))),
    h("label", {}, "Description: what citizens write about, in their words",
      h("input", { name: "description", required: true, maxlength: 500, value: topic?.description || "", style: "width:100%",
        placeholder: "fares, ticket prices, ticket machines and passes" })),
    h("div", { class: "controls" },
      h("label", { style: "flex:1 1 20rem" }, "Example posts about it (one per line)",
        h("textarea", { name: "examples", rows: 4 }, (topic?.examples || []).join("\n"))),
      h("label", { style: "flex:1 1 20rem" }, "Posts that look close but are not about it (one per line)",
        h("textarea", { name: "counter_examples", rows: 4 }, (topic?.counter_examples || []).join("\n")))),
    h("button", { type: "submit" }, named ? "Save and re-tag history" : "Add topic"));
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(el);
    try {
      const name = String(data.get("name")).trim();
      const reply = await api(`/api/topics/${encodeURIComponent(name)}`, { method: "PUT", body: {
        description: String(data.get("description")), query: String(data.get("query")),
        threshold: Number(data.get("threshold")), examples: lines(String(data.get("examples"))),
        counter_examples: lines(String(data.get("counter_examples"))), by: who() } });
      announce(`${reply.topic.name} saved; re-tagging the agency's posts.`);
      onSaved();
    } catch (error) { show(error.message); }
  });
  return el;
}

function jobRow(job) {
  const share = job.total ? job.processed / job.total : (job.state === "done" ? 1 : 0);
  return h("tr", { dataset: { jobState: job.state } },
    h("td", {}, job.reason || job.kind),
    h("td", {}, job.state),
    h("td", {}, h("progress", { max: 1, value: share, "aria-label": `${job.reason} progress` }), ` ${fmtNumber(job.processed)} / ${fmtNumber(job.total)}`),
    h("td", { class: "num" }, fmtNumber(job.changed)),
    h("td", {}, fmtAgo(job.created_at)),
    h("td", {}, job.error || "–"));
}

function topicRow(topic, refresh, show, openTopic) {
  return h("tr", { dataset: { topic: topic.name } },
    h("th", { scope: "row" }, h("button", { type: "button", class: "link", onclick: () => openTopic(topic.name) }, topic.name)),
    h("td", {}, topic.description),
    h("td", { class: "num" }, topic.threshold.toFixed(2)),
    h("td", {}, qualityText(topic.quality)),
    h("td", {}, topic.updated_by ? `${topic.updated_by}, ${fmtAgo(topic.updated_at)}` : "shipped default"),
    h("td", {}, topic.version ? h("button", { type: "button", class: "secondary", "aria-label": `Delete ${topic.name}`,
      onclick: async () => {
        try {
          await api(`/api/topics/${encodeURIComponent(topic.name)}/delete`, { method: "POST", body: { by: who() } });
          announce(`${topic.name} deleted; re-tagging the agency's posts.`);
          refresh();
        } catch (error) { show(error.message); }
      } }, "Delete") : null));
}

function detail(topic) {
  return h("section", { class: "panel", "aria-label": `Topic ${topic.name}` },
    h("h2", {}, topic.name),
    h("p", {}, topic.description),
    h("p", { class: "help", dataset: { quality: topic.quality.scorer } }, qualityText(topic.quality)),
    topic.query ? h("p", {}, "Posts must match: ", h("code", {}, topic.query)) : null,
    h("h3", {}, "Marks"),
    topic.marks.length ? h("table", {}, h("thead", {}, h("tr", {}, ["Post", "Relevant", "By", "When"].map((t) => h("th", {}, t)))),
      h("tbody", {}, topic.marks.map((m) => h("tr", {}, h("td", {}, m.text || `${m.channel}/${m.post_id}`),
        h("td", {}, m.relevant ? "yes" : "no"), h("td", {}, m.by), h("td", {}, fmtAgo(m.marked_at))))))
      : state("empty", "No marks yet. Mark posts from the Search page: each result has Relevant / Not relevant for every topic."));
}

export async function render(main) {
  const message = h("div", {});
  const body = h("section", { "aria-label": "Topics" }, loading("the topics"));
  const side = h("div", {});
  main.append(message, body, side);
  const show = (text) => message.replaceChildren(state("error", text));
  let timer = null;
  async function openTopic(name) {
    try {
      const topic = await api(`/api/topics/${encodeURIComponent(name)}`);
      side.replaceChildren(detail(topic), editor(topic, refresh, show));
    } catch (error) { show(error.message); }
  }
  async function refresh() {
    let doc;
    try { doc = await api("/api/topics"); } catch (error) { body.replaceChildren(state("error", error.message)); return; }
    const heading = doc.defaults
      ? h("p", { role: "status" }, "This agency has not defined its topics: its posts are tagged with the shipped defaults. ",
        h("button", { type: "button", onclick: async () => {
          try { await api("/api/topics-copy-defaults", { method: "POST", body: { by: who() } }); refresh(); } catch (error) { show(error.message); }
        } }, "Copy the defaults to edit them"))
      : h("p", { role: "status" }, `Topic set version ${doc.version}: every post records the version that tagged it.`);
    const topics = h("table", {}, h("caption", { class: "sr-only" }, "The agency's topics"),
      h("thead", {}, h("tr", {}, ["Topic", "Description", "Threshold", "How it is scored", "Changed"].map((t) => h("th", {}, t)),
        h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
      h("tbody", {}, doc.topics.map((t) => topicRow(t, refresh, show, openTopic))));
    const jobs = doc.jobs.length ? h("table", { "aria-label": "Re-tagging jobs" },
      h("thead", {}, h("tr", {}, ["Job", "State", "Progress", "Posts changed", "Started", "Error"].map((t) => h("th", {}, t)))),
      h("tbody", {}, doc.jobs.map(jobRow))) : state("empty", "No re-tagging job yet.");
    body.replaceChildren(h("div", { class: "panel" }, heading, topics), editor(null, refresh, show),
      h("div", { class: "panel" }, h("h2", {}, "Re-tagging history"), jobs));
    const running = doc.jobs.some((j) => j.state === "queued" || j.state === "running");
    window.clearTimeout(timer);
    if (running) timer = window.setTimeout(refresh, 1500);
  }
  await refresh();
  return () => window.clearTimeout(timer);
}
