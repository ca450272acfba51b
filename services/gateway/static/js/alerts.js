// Alerts: the prioritized action queue with the reasons behind each priority, acknowledge, assign
// and resolve, silences, and live updates from the alerting service's event stream.

import { api, query, viewer, watch } from "./api.js";
import { announce, h, loading, safeLink, state } from "./dom.js";
import { fmtAgo, fmtDateTime, fmtDecimal, fmtPercent, plural } from "./format.js";
import { renderSilences } from "./silences.js";

const FACTOR_WORDS = {
  reach: "how many people the authors reach", negativity: "how negative the posts are",
  velocity: "how fast volume rose above usual", relevance: "how clearly the posts concern the agency's topics",
  severity: "the rule's severity", offensive: "offensive or threatening language", anger: "how angry the posts are",
};
const EVENT_WORDS = { fired: "fired", resolved: "resolved", acknowledged: "acknowledged", assigned: "assigned", escalated: "escalated" };

function who() {
  const name = viewer().name;
  if (!name) throw new Error("Enter your name at the top of the page first: alert actions record who took them.");
  return name;
}

function factorsTable(alert) {
  return h("details", {}, h("summary", {}, `Why priority ${fmtDecimal(alert.priority)}?`),
    h("table", { class: "factors" },
      h("caption", { class: "help" }, "Each factor is a value from 0 to 100 % times its weight; the points add up to the priority."),
      h("thead", {}, h("tr", {}, h("th", {}, "Factor"), h("th", { class: "num" }, "Value"), h("th", { class: "num" }, "Weight"),
        h("th", { class: "num" }, "Points"), h("th", {}, h("span", { class: "sr-only" }, "Share")))),
      h("tbody", {}, alert.priority_factors.map((f) => h("tr", {},
        h("td", {}, h("strong", {}, f.name), h("div", { class: "help" }, FACTOR_WORDS[f.name] || "")),
        h("td", { class: "num" }, fmtPercent(f.value)), h("td", { class: "num" }, fmtDecimal(f.weight)),
        h("td", { class: "num" }, fmtDecimal(f.points)),
        h("td", { class: "bar" }, h("div", { class: "meter", "aria-hidden": "true" }, h("span", { style: `width:${Math.min(100, f.value * 100)}%` }))))))));
}

function samples(alert) {
  if (!alert.sample_post_ids.length) return null;
  const box = h("details", {}, h("summary", {}, `Example posts (${alert.sample_post_ids.length})`));
  let loaded = false;
  box.addEventListener("toggle", async () => {
    if (!box.open || loaded) return;
    loaded = true;
    const list = h("ul", {}, loading("the posts"));
    box.append(list);
    const items = await Promise.all(alert.sample_post_ids.map(async (ref) => {
      const [channel, ...rest] = ref.split("/");
      try {
        const post = await api(`/api/posts/${encodeURIComponent(channel)}/${encodeURIComponent(rest.join("/"))}`);
        return h("li", {}, h("span", { class: `badge ${post.sentiment || ""}` }, post.sentiment || "?"), " ", post.text, " ",
          safeLink(post.url, "original ↗"));
      } catch (error) {
        // A post its author deleted is gone from search: the alert keeps counting it, without its words.
        if (error.status === 404) return h("li", { class: "gone" }, `${ref}: no longer available (deleted by its author or removed)`);
        return h("li", {}, `${ref}: ${error.message}`);
      }
    }));
    list.replaceChildren(...items);
  });
  return box;
}

function status(alert) {
  const parts = [];
  if (alert.acknowledged_by) parts.push(`Acknowledged by ${alert.acknowledged_by} ${fmtAgo(alert.acknowledged_at)}`);
  if (alert.assignee) parts.push(`Assigned to ${alert.assignee} by ${alert.assigned_by}`);
  if (alert.resolved_at) parts.push(alert.resolved_by ? `Resolved by ${alert.resolved_by} ${fmtAgo(alert.resolved_at)}` : `Resolved ${fmtAgo(alert.resolved_at)}`);
  if (alert.escalated_at) parts.push(`Escalated ${fmtAgo(alert.escalated_at)}`);
  if (alert.silenced_by.length) parts.push("Silenced: notifications held");
  return parts.length ? parts.join(" · ") : "Nobody has acknowledged it yet";
}

export class Queue {
  constructor(container, onChange) { this.container = container; this.alerts = new Map(); this.cards = new Map(); this.onChange = onChange; }

  set(alerts) {
    this.alerts = new Map(alerts.map((a) => [a.id, a]));
    this.draw();
  }

  upsert(alert, highlight = true) {
    const known = this.alerts.has(alert.id);
    this.alerts.set(alert.id, alert);
    if (known && this.cards.has(alert.id)) {
      const old = this.cards.get(alert.id);
      const focused = old.contains(document.activeElement) ? document.activeElement.dataset.action : null;
      const card = this.card(alert);
      if (highlight) card.classList.add("changed");
      old.replaceWith(card);
      this.cards.set(alert.id, card);
      if (focused) card.querySelector(`[data-action="${focused}"]`)?.focus();
    } else {
      this.draw();
    }
  }

  draw() {
    const sorted = [...this.alerts.values()].sort((a, b) => b.priority - a.priority);
    this.cards = new Map(sorted.map((a) => [a.id, this.card(a)]));
    if (!sorted.length) { this.container.replaceChildren(state("empty", "No alerts. The queue fills when a rule's condition holds.")); return; }
    this.container.replaceChildren(h("ol", { class: "results", "aria-label": "Alerts, highest priority first" },
      sorted.map((a) => h("li", {}, this.cards.get(a.id)))));
  }

  async act(alert, action, extra = {}) {
    try {
      const updated = await api(`/api/alerts/${encodeURIComponent(alert.id)}/${action}`, { method: "POST", body: { by: who(), ...extra } });
      this.upsert(updated);
      announce(`${updated.rule_name}: ${action === "acknowledge" ? "acknowledged" : action === "assign" ? `assigned to ${updated.assignee}` : "resolved"}.`);
    } catch (error) {
      this.onChange(error.message);
    }
  }

  card(alert) {
    const assignee = h("input", { "aria-label": `Assign "${alert.rule_name}" to`, placeholder: "person or team", size: 14, value: alert.assignee || "" });
    const firing = alert.state === "firing";
    return h("article", { class: `alert-card sev-${alert.severity}`, "aria-label": alert.rule_name, dataset: { alertId: alert.id, state: alert.state } },
      h("div", { class: "priority", title: "Priority 0–100" }, fmtDecimal(alert.priority), h("small", {}, "priority")),
      h("div", {},
        h("h3", {}, alert.rule_name, " ", h("span", { class: `badge ${alert.severity}` }, alert.severity), " ",
          h("span", { class: `badge ${alert.state}`, "data-role": "state" }, alert.state)),
        h("p", {}, alert.summary),
        h("p", { class: "help" }, `Window from ${fmtDateTime(alert.window_start)} · ${plural(alert.post_count, "post", "posts")} · fired ${fmtAgo(alert.fired_at)}`,
          alert.term ? ` · term “${alert.term}”` : ""),
        h("p", { class: "help", "data-role": "status" }, status(alert)),
        factorsTable(alert),
        samples(alert),
        h("div", { class: "actions" },
          h("button", { type: "button", "data-action": "acknowledge", disabled: !firing || Boolean(alert.acknowledged_by),
            onclick: () => this.act(alert, "acknowledge") }, alert.acknowledged_by ? "Acknowledged" : "Acknowledge"),
          assignee,
          h("button", { type: "button", class: "secondary", "data-action": "assign",
            onclick: () => (assignee.value.trim() ? this.act(alert, "assign", { assignee: assignee.value.trim() }) : this.onChange("Type who to assign the alert to.")) }, "Assign"),
          h("button", { type: "button", class: "danger", "data-action": "resolve", disabled: !firing,
            onclick: () => this.act(alert, "resolve") }, "Resolve"))));
  }
}

export async function render(main, params, ctx) {
  const opened = Date.now();
  const stateFilter = params.get("state") || "firing";
  const live = h("p", { class: "live off", role: "status" }, "Connecting to live updates…");
  const message = h("div", {});
  const show = (text) => message.replaceChildren(state("error", text));
  main.append(h("div", { class: "controls" },
    h("label", {}, "Show", h("select", { onchange: (e) => ctx.go(new URLSearchParams({ state: e.target.value })) },
      [["firing", "Firing"], ["all", "All"], ["resolved", "Resolved"]].map(([v, l]) => h("option", { value: v, selected: v === stateFilter }, l)))),
    live), message);
  const container = h("section", { "aria-label": "Alert queue" }, loading("the alerts"));
  const silences = h("section", { class: "panel", "aria-label": "Silences" });
  main.append(container, silences);
  const queue = new Queue(container, show);
  try {
    queue.set((await api(`/api/alerts${query({ state: stateFilter, limit: 200 })}`)).alerts);
  } catch (error) {
    container.replaceChildren(state("error", error.message));
    live.textContent = "Live updates are off until the alerts can be loaded.";
    silences.remove();
    return null;
  }
  renderSilences(silences, show);
  return watch("/api/alerts/events", {
    onState: (kind, text) => {
      live.className = `live ${kind === "live" ? "on" : "off"}`;
      live.textContent = kind === "live" ? "Live: changes appear as they happen" : kind === "stopped" ? `Live updates stopped: ${text}` : text;
    },
    onEvent: (event) => {
      const matches = stateFilter === "all" || event.alert.state === stateFilter;
      const fresh = Date.parse(event.at) >= opened - 2000;
      if (matches || queue.alerts.has(event.alert.id)) queue.upsert(event.alert, fresh);
      if (fresh) {
        announce(`Alert “${event.alert.rule_name}” ${EVENT_WORDS[event.kind] || event.kind}.`);
      }
    },
  });
}

