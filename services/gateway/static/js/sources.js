// Sources: the channel connectors that feed the agency's posts, how each is doing, and the posts
// that were accepted but failed further down (dead letters, replayable with `civic failed replay`).

import { api } from "./api.js";
import { announce, h, loading, state } from "./dom.js";
import { fmtAgo, fmtDateTime, fmtNumber, plural } from "./format.js";

function row(source, refresh, show) {
  const paused = source.state === "paused";
  const health = source.status.last_error ? h("span", { class: "badge negative" }, "failing")
    : source.status.last_polled_at ? h("span", { class: "badge positive" }, "ok") : h("span", { class: "badge" }, "not polled yet");
  return h("tr", { dataset: { sourceId: source.id } },
    h("th", { scope: "row" }, source.name),
    h("td", {}, source.kind),
    h("td", {}, h("span", { class: "help" }, source.url || "(receives webhooks)")),
    h("td", {}, paused ? "paused" : "active", " ", health),
    h("td", {}, fmtAgo(source.status.last_polled_at)),
    h("td", { class: "num" }, fmtNumber(source.status.polls)),
    h("td", { class: "num" }, fmtNumber(source.status.accepted)),
    h("td", { class: "num" }, fmtNumber(source.status.errors)),
    h("td", {}, source.status.last_error || "–"),
    h("td", {}, h("button", { type: "button", class: "secondary", "aria-label": `${paused ? "Resume" : "Pause"} ${source.name}`,
      onclick: async () => {
        try {
          await api(`/api/sources/${encodeURIComponent(source.id)}/${paused ? "resume" : "pause"}`, { method: "POST" });
          announce(`${source.name} ${paused ? "resumed" : "paused"}.`);
          refresh();
        } catch (error) { show(error.message); }
      } }, paused ? "Resume" : "Pause")));
}

async function renderFailed(panel) {
  let found;
  try { found = await api("/api/failed-posts?limit=20"); } catch (error) { panel.replaceChildren(state("error", error.message)); return; }
  const heading = h("h2", {}, "Posts that failed downstream");
  if (!found.total) {
    panel.replaceChildren(heading, state("empty", "None: every accepted post was enriched, indexed and evaluated, or is on its way."));
    return;
  }
  panel.replaceChildren(heading,
    h("p", { class: "help" }, `${plural(found.total, "post was", "posts were")} accepted but given up on further down; `,
      "once the cause is fixed, `civic failed replay` sends them again."),
    h("table", {}, h("caption", { class: "sr-only" }, "Posts that failed downstream, latest first"),
      h("thead", {}, h("tr", {}, ["Failed", "Channel", "Post", "Reason"].map((t) => h("th", {}, t)))),
      h("tbody", {}, found.posts.map((post) => h("tr", { dataset: { postId: post.post_id } },
        h("td", {}, fmtDateTime(post.failed_at)), h("td", {}, post.channel), h("td", {}, post.post_id),
        h("td", {}, post.reason))))));
}

export async function render(main) {
  const message = h("div", {});
  const body = h("section", { class: "panel", "aria-label": "Sources" }, loading("the sources"));
  const failed = h("section", { class: "panel", "aria-label": "Posts that failed downstream" }, loading("the failed posts"));
  main.append(message, body, failed);
  renderFailed(failed);
  const show = (text) => message.replaceChildren(state("error", text));
  async function refresh() {
    let sources;
    try { sources = (await api("/api/sources")).sources; } catch (error) { body.replaceChildren(state("error", error.message)); return; }
    if (!sources.length) {
      body.replaceChildren(state("empty", "No sources yet. Register feeds, hashtags, subreddits or webhooks with `civic sources create`."));
      return;
    }
    body.replaceChildren(h("table", {}, h("caption", { class: "sr-only" }, "Channel sources and their status"),
      h("thead", {}, h("tr", {}, ["Name", "Connector", "Address", "State", "Last polled", "Polls", "Posts accepted", "Failed polls", "Last error"].map((t) =>
        h("th", { class: ["Polls", "Posts accepted", "Failed polls"].includes(t) ? "num" : null }, t)), h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
      h("tbody", {}, sources.map((s) => row(s, refresh, show)))));
  }
  await refresh();
}
