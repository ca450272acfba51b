// Search: the boolean query language or search by meaning, filters, and hits with highlights,
// sentiment, tone and a link to the original post.

import { api, query, viewer } from "./api.js";
import { announce, h, highlighted, loading, safeLink, state } from "./dom.js";
import { fmtDateTime, fmtPercent, plural } from "./format.js";

const SENTIMENTS = ["negative", "neutral", "positive"];
const EMOTIONS = ["anger", "joy", "optimism", "sadness"];
const TEXT_FILTERS = [["channels", "Channels", "mastodon, reddit"], ["languages", "Languages", "en, fr"],
  ["topics", "Topics", "public_transit"]];

function checkboxes(name, values, chosen) {
  return values.map((value) => h("label", {}, h("input", { type: "checkbox", name, value, checked: chosen.includes(value) }), value));
}

function form(params, ctx) {
  const chosen = (name) => (params.get(name) || "").split(",").filter(Boolean);
  const el = h("form", { class: "panel", role: "search", "aria-label": "Search posts" },
    h("div", { class: "controls" },
      h("label", { style: "flex:1 1 28rem" }, "Query",
        h("input", { name: "q", type: "search", value: params.get("q") || "", "aria-describedby": "query-help",
          placeholder: '"line 3" AND (outage OR delay) NOT bus' })),
      h("label", {}, "Sort", h("select", { name: "sort" }, ["relevance", "newest", "reach"].map((s) =>
        h("option", { value: s, selected: (params.get("sort") || "relevance") === s }, s)))),
      h("button", { type: "submit" }, "Search")),
    h("p", { id: "query-help", class: "help" }, "Words must all occur; use \"phrases\", AND, OR, NOT, (grouping), trailing wildcards (delay*) "
      + "and field:value such as channel:reddit or language:fr. With search by meaning, write what you are looking for in plain words."),
    h("div", { class: "controls" },
      h("label", { style: "flex-direction:row;gap:.4rem;align-items:center" },
        h("input", { type: "checkbox", name: "semantic", checked: params.get("semantic") === "1" }), "Search by meaning (semantic)"),
      h("fieldset", { class: "inline" }, h("legend", {}, "Sentiment"), checkboxes("sentiments", SENTIMENTS, chosen("sentiments"))),
      h("fieldset", { class: "inline" }, h("legend", {}, "Emotion"), checkboxes("emotions", EMOTIONS, chosen("emotions")),
        h("label", {}, h("input", { type: "checkbox", name: "offensive", checked: params.get("offensive") === "1" }), "offensive only"))),
    h("div", { class: "controls" },
      TEXT_FILTERS.map(([name, label, hint]) => h("label", {}, label, h("input", { name, value: params.get(name) || "", placeholder: hint, size: 14 }))),
      h("label", {}, "From", h("input", { name: "from", type: "date", value: (params.get("from") || "").slice(0, 10) })),
      h("label", {}, "To", h("input", { name: "to", type: "date", value: (params.get("to") || "").slice(0, 10) })),
      h("label", {}, "Least followers", h("input", { name: "min_reach", type: "number", min: 0, value: params.get("min_reach") || "", size: 8 }))));
  el.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(el);
    const next = new URLSearchParams();
    for (const key of ["q", "sort", "channels", "languages", "topics", "from", "to", "min_reach"]) {
      const value = String(data.get(key) || "").trim();
      if (value && !(key === "sort" && value === "relevance")) next.set(key, value);
    }
    for (const key of ["sentiments", "emotions"]) if (data.getAll(key).length) next.set(key, data.getAll(key).join(","));
    for (const key of ["semantic", "offensive"]) if (data.get(key)) next.set(key, "1");
    next.set("run", String(Date.now() % 100000));
    ctx.go(next);
  });
  return el;
}

// Relevant / not relevant for one of the agency's topics: the marks that teach its classifier.
function marker(hit, topics) {
  if (!topics.length) return null;
  const select = h("select", { "aria-label": `Topic to mark post ${hit.id} for` },
    topics.map((name) => h("option", { value: name, selected: name === hit.topic }, name.replaceAll("_", " "))));
  const said = h("span", { class: "help", role: "status" });
  const send = (relevant) => async () => {
    const name = viewer().name;
    if (!name) { said.textContent = "Enter your name at the top of the page first: marks record who made them."; return; }
    try {
      const reply = await api(`/api/topics/${encodeURIComponent(select.value)}/marks`, { method: "POST",
        body: { channel: hit.channel, post_id: hit.id, relevant, by: name } });
      said.textContent = `Marked ${relevant ? "relevant" : "not relevant"} to ${select.value}`
        + (reply.quality.scorer === "classifier" ? "; its classifier was retrained." : `; ${reply.quality.marks_needed} more marks until a classifier takes over.`);
      announce(said.textContent);
    } catch (error) { said.textContent = error.message; }
  };
  return h("div", { class: "meta marker" }, "Mark for ", select,
    h("button", { type: "button", class: "secondary", onclick: send(true) }, "Relevant"),
    h("button", { type: "button", class: "secondary", onclick: send(false) }, "Not relevant"), said);
}

function hitCard(hit, topics = []) {
  const fragments = hit.highlights.length ? hit.highlights.flatMap((f, i) => [i ? " … " : "", ...highlighted(f)]) : [hit.text];
  const tone = [];
  if (hit.emotion) tone.push(h("span", { class: "badge" }, `${hit.emotion} ${fmtPercent(hit.emotion_scores[hit.emotion])}`));
  if (hit.offensive) tone.push(h("span", { class: "badge offensive" }, "offensive"));
  return h("li", { class: "hit" },
    h("div", { class: "meta" },
      h("time", { datetime: hit.created_at }, fmtDateTime(hit.created_at)),
      h("span", {}, hit.channel), hit.source ? h("span", {}, hit.source) : null,
      h("span", {}, hit.author.name || hit.author.id || "unknown author",
        hit.author.followers ? ` (${plural(hit.author.followers, "follower", "followers")})` : ""),
      h("span", { lang: hit.language || undefined }, `language ${hit.language || "unknown"}`),
      (hit.topics || []).length ? h("span", {}, `${hit.topics.length > 1 ? "topics" : "topic"} ${hit.topics.map((t) => t.replaceAll("_", " ")).join(", ")}`)
        : h("span", {}, "no topic"),
      hit.near_duplicate ? h("span", {}, "copy-paste campaign") : null),
    h("p", { class: "text", lang: hit.language || undefined }, fragments),
    h("div", { class: "meta" },
      hit.sentiment ? h("span", { class: `badge ${hit.sentiment}` },
        `${hit.sentiment} ${fmtPercent(hit.sentiment_scores[hit.sentiment])}`) : h("span", { class: "badge" }, "sentiment not computed"),
      tone,
      safeLink(hit.url, "Open the original post ↗")),
    marker(hit, topics));
}

export async function render(main, params, ctx) {
  main.append(form(params, ctx));
  const results = h("section", { "aria-label": "Results" });
  main.append(results);
  const asked = new URLSearchParams(params);
  asked.delete("run");
  if (![...asked.keys()].length) {
    results.append(state("empty", "Type a query, or choose filters, and press Search. An empty query with filters lists matching posts."));
    return;
  }
  const list = h("ol", { class: "results" });
  async function page(token) {
    const args = Object.fromEntries(asked);
    if (token) args.page_token = token;
    for (const key of ["from", "to"]) if (args[key] && args[key].length === 10) {
      args[key] = key === "to" ? new Date(Date.parse(args[key]) + 86400000).toISOString().slice(0, 10) : args[key];
    }
    return api(`/api/search${query(args)}`);
  }
  results.replaceChildren(loading("results"));
  let doc;
  let topics = [];
  try {
    const [found, set] = await Promise.all([page(""), api("/api/topics").catch(() => null)]);
    doc = found;
    topics = set && !set.defaults ? set.topics.map((t) => t.name) : [];
  } catch (error) { results.replaceChildren(state("error", error.message)); return; }
  const card = (hit) => hitCard(hit, topics);
  if (!doc.hits.length) { results.replaceChildren(state("empty", "No post matches. Loosen a filter or try other words.")); return; }
  const summary = doc.semantic ? `${plural(doc.hits.length, "post", "posts")} closest in meaning`
    : `${plural(doc.total, "post matches", "posts match")}`;
  results.replaceChildren(h("p", { role: "status" }, h("strong", {}, summary)), list);
  list.append(...doc.hits.map(card));
  let next = doc.next_page_token;
  const more = h("button", { type: "button", class: "secondary" }, "More results");
  more.addEventListener("click", async () => {
    more.disabled = true;
    more.textContent = "Loading…";
    try {
      const following = await page(next);
      const first = following.hits.length ? card(following.hits[0]) : null;
      list.append(...(first ? [first, ...following.hits.slice(1).map(card)] : []));
      next = following.next_page_token;
      first?.setAttribute("tabindex", "-1");
      first?.focus();
    } catch (error) {
      results.append(state("error", error.message));
    }
    more.disabled = false;
    more.textContent = "More results";
    if (!next) more.remove();
  });
  if (next) results.append(more);
}
