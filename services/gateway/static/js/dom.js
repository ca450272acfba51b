// Building the page from data without innerHTML, so no post text can ever run as markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// A loading, empty or error message in place of content; role=status/alert so it is announced.
export function state(kind, text) {
  return h("p", { class: `state ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

export function loading(what) { return state("loading", `Loading ${what}…`); }

// What the search service's highlighter escapes in a post's own text (Lucene's HTML encoder).
const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#x27;": "'", "&#x2F;": "/" };

function unescaped(text) {
  return text.replace(/&(?:amp|lt|gt|quot|#x27|#x2F);/g, (entity) => ENTITIES[entity]);
}

// Highlight fragments come HTML-escaped with the matched words in <em>…</em>: only those tags
// become <mark>; a literal "<em>" written in a post arrives as "&lt;em&gt;" and stays text.
export function highlighted(fragment) {
  const parts = fragment.split(/(<em>|<\/em>)/);
  const nodes = [];
  let inside = false;
  for (const part of parts) {
    if (part === "<em>") inside = true;
    else if (part === "</em>") inside = false;
    else if (part) nodes.push(inside ? h("mark", {}, unescaped(part)) : document.createTextNode(unescaped(part)));
  }
  return nodes;
}

export function announce(text) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  window.setTimeout(() => { region.textContent = text; }, 50);
}

export function safeLink(url, label) {
  return url && /^https?:\/\//.test(url)
    ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label)
    : null;
}
