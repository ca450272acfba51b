// The JSON API of the gateway, called with the viewer's agency and token; errors come back in words.

const VIEWER_KEY = "civic.viewer";

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export function viewer() {
  try { return JSON.parse(window.localStorage.getItem(VIEWER_KEY)) || {}; } catch { return {}; }
}

export function saveViewer(next) {
  window.localStorage.setItem(VIEWER_KEY, JSON.stringify({ ...viewer(), ...next }));
}

export function headers(extra = {}) {
  const who = viewer();
  const result = { Accept: "application/json", ...extra };
  if (who.tenant) result["X-Civic-Tenant"] = who.tenant;
  if (who.token) result.Authorization = `Bearer ${who.token}`;
  return result;
}

export async function api(path, { method = "GET", body, signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method, signal, body: body === undefined ? undefined : JSON.stringify(body),
      headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }),
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The dashboard cannot reach its server. Check the connection, then try again.");
  }
  let document = null;
  try { document = await response.json(); } catch { document = null; }
  if (!response.ok) {
    throw new ApiError(response.status, document?.error || `The server answered ${response.status} ${response.statusText}.`);
  }
  return document;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "" && value !== false) search.set(key, value === true ? "1" : value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// Server-sent events read with fetch (EventSource cannot send the viewer's headers). Calls onEvent
// for each event and onState("live" | "retrying" | "stopped", message); reconnects after a drop,
// resuming after the last sequence seen. Returns a function that stops it.
export function watch(path, { after = 0, onEvent, onState }) {
  let stopped = false;
  let last = after;
  let controller = null;
  let delay = 1000;
  async function run() {
    while (!stopped) {
      controller = new AbortController();
      try {
        const response = await fetch(`${path}?after=${last}`, { headers: headers({ Accept: "text/event-stream" }), signal: controller.signal });
        if (!response.ok) {
          let message = `The server answered ${response.status}.`;
          try { message = (await response.json()).error || message; } catch { /* keep the status line */ }
          if (response.status >= 400 && response.status < 500) { onState("stopped", message); return; }
          throw new Error(message);
        }
        onState("live", "");
        delay = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = { name: "message", data: "", id: null };
            for (const line of block.split("\n")) {
              if (line.startsWith("event: ")) event.name = line.slice(7);
              else if (line.startsWith("data: ")) event.data += line.slice(6);
              else if (line.startsWith("id: ")) event.id = Number(line.slice(4));
            }
            if (!event.data) continue;
            if (event.id !== null) last = Math.max(last, event.id);
            const data = JSON.parse(event.data);
            if (event.name === "problem") {
              if (data.status >= 400 && data.status < 500) { onState("stopped", data.error); return; }
              throw new Error(data.error);
            }
            onEvent(data);
          }
        }
        throw new Error("The live connection closed.");
      } catch (error) {
        if (stopped || error.name === "AbortError") return;
        onState("retrying", `${error.message} Reconnecting in ${Math.round(delay / 1000)} s…`);
        await new Promise((resolve) => window.setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 30000);
      }
    }
  }
  run();
  return () => { stopped = true; controller?.abort(); };
}
