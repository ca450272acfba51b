// The dashboard's shell: the viewer bar (agency, name, token), hash routes to the five pages.

import { api, saveViewer, viewer } from "./api.js";
import { h, state } from "./dom.js";
import * as alerts from "./alerts.js";
import * as overview from "./overview.js";
import * as search from "./search.js";
import * as sources from "./sources.js";
import * as topics from "./topics.js";

const PAGES = { overview, search, alerts, topics, sources };
const TITLES = { overview: "Overview", search: "Search", alerts: "Alerts", topics: "Topics", sources: "Sources" };
let cleanup = null;

export function route() {
  const [path, queryText] = (window.location.hash.replace(/^#\/?/, "") || "overview").split("?");
  return { page: PAGES[path] ? path : "overview", params: new URLSearchParams(queryText || "") };
}

export function go(page, params) {
  const text = params.toString();
  window.location.hash = `#/${page}${text ? `?${text}` : ""}`;
}

async function show() {
  const main = document.getElementById("main");
  if (cleanup) { cleanup(); cleanup = null; }
  const { page, params } = route();
  for (const link of document.querySelectorAll("nav a[data-page]")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${TITLES[page]} · civic-listening`;
  const who = viewer();
  main.replaceChildren(h("h1", {}, TITLES[page], who.tenant ? h("span", { class: "help" }, ` — ${who.tenant}`) : null));
  if (!who.tenant && !who.token) {
    main.append(state("empty", "Choose your agency (or enter your access token) at the top of the page, then press Apply."));
    return;
  }
  try {
    cleanup = (await PAGES[page].render(main, params, { go: (next) => go(page, next) })) || null;
  } catch (error) {
    main.append(state("error", `This page could not be shown: ${error.message}`));
  }
}

function initViewerForm(tenants) {
  const form = document.getElementById("viewer-form");
  const who = viewer();
  document.getElementById("viewer-tenants").replaceChildren(...tenants.map((t) => h("option", { value: t })));
  form.tenant.value = who.tenant || "";
  form.name.value = who.name || "";
  form.token.value = who.token || "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    saveViewer({ tenant: form.tenant.value.trim(), name: form.name.value.trim(), token: form.token.value.trim() });
    show();
  });
}

async function start() {
  document.documentElement.dataset.started = "1";
  // The skip link moves focus without touching the hash, which names the page.
  document.querySelector(".skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("main").focus();
  });
  const fromUrl = new URLSearchParams(window.location.search).get("tenant");
  if (fromUrl) saveViewer({ tenant: fromUrl });
  let tenants = [];
  try {
    tenants = (await api("/api/config")).tenants;
  } catch (error) {
    document.getElementById("main").replaceChildren(state("error", error.message));
  }
  const who = viewer();
  if (!who.tenant && !who.token && tenants.length === 1) saveViewer({ tenant: tenants[0] });
  initViewerForm(tenants);
  window.addEventListener("hashchange", show);
  await show();
}

start();
