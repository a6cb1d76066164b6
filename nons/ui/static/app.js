// nons ui: the page. Everything it shows comes from the server as JSON and is put in
// the document with createElement and textContent only (never innerHTML): node
// outputs and error messages are untrusted model text. The Content-Security-Policy
// allows no inline script either.
"use strict";

const state = {
  status: null,
  networks: [],
  executions: new Map(),
  totals: {},
  jaegerUrl: null,
  detail: null,
  detailMissing: false,
  watched: null,
  source: null,
};

// -- DOM helpers: text only ------------------------------------------------------------

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "href") node.setAttribute("href", safeHref(value));
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function safeHref(value) {
  const text = String(value);
  if (text.startsWith("#/")) return text;
  try {
    const url = new URL(text);
    if (url.protocol === "http:" || url.protocol === "https:") return url.href;
  } catch (error) { /* not a URL */ }
  return "#/";
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

const $ = (id) => document.getElementById(id);

// -- formatting ------------------------------------------------------------------------

function ms(value) {
  if (!value) return "–";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`;
}
const usd = (value) => (value ? `$${value.toFixed(value < 0.01 ? 6 : 4)}` : "$0");
const when = (ts) => (ts ? new Date(ts * 1000).toLocaleTimeString() : "–");
const shortId = (id) => (id.length > 12 ? `${id.slice(0, 12)}…` : id);

function asText(value) {
  if (typeof value === "string") return value;
  try { return JSON.stringify(value, null, 2); } catch (error) { return String(value); }
}

function badge(status) {
  return el("span", { class: "badge", "data-status": status, text: status });
}

// -- the stream ------------------------------------------------------------------------

function connect(executionId) {
  if (state.source && state.watched === executionId) return;
  if (state.source) state.source.close();
  state.watched = executionId;
  const query = executionId ? `?execution=${encodeURIComponent(executionId)}` : "";
  const source = new EventSource(`/api/stream${query}`);
  state.source = source;
  source.addEventListener("open", () => { state.pageLost = false; renderBanner(); });
  source.addEventListener("error", () => { state.pageLost = true; renderBanner(); });
  source.addEventListener("snapshot", (message) => {
    const data = JSON.parse(message.data);
    state.status = data.status;
    state.networks = data.networks;
    state.totals = data.totals;
    state.jaegerUrl = data.jaeger_url;
    state.executions = new Map(data.executions.map((row) => [row.execution_id, row]));
    if (executionId) {
      state.detail = data.detail;
      state.detailMissing = !data.detail;
    }
    renderAll();
  });
  source.addEventListener("status", (message) => {
    state.status = JSON.parse(message.data);
    renderBanner();
  });
  source.addEventListener("networks", (message) => {
    state.networks = JSON.parse(message.data);
    renderNetworks();
    renderRunForm();
  });
  source.addEventListener("executions", (message) => {
    const data = JSON.parse(message.data);
    for (const row of data.changed) state.executions.set(row.execution_id, row);
    state.totals = data.totals;
    renderExecutions();
    renderNetworks();
  });
  source.addEventListener("detail", (message) => {
    const detail = JSON.parse(message.data);
    if (detail.execution_id !== state.watched) return;
    state.detail = detail;
    state.detailMissing = false;
    renderDetail();
  });
}

// -- routing ---------------------------------------------------------------------------

function route() {
  const match = location.hash.match(/^#\/executions\/([^/]+)$/);
  const executionId = match ? decodeURIComponent(match[1]) : null;
  $("home-view").hidden = executionId !== null;
  $("execution-view").hidden = executionId === null;
  if (executionId !== state.watched) {
    state.detail = null;
    state.detailMissing = false;
  }
  connect(executionId);
  renderAll();
}

// -- rendering -------------------------------------------------------------------------

function renderAll() {
  renderBanner();
  renderNetworks();
  renderRunForm();
  renderExecutions();
  renderDetail();
}

function renderBanner() {
  const banner = $("banner");
  const pill = $("nats-status");
  const status = state.status;
  let message = null;
  if (state.pageLost) message = "Lost the connection to nons ui: reconnecting…";
  else if (status && !status.connected) {
    message = `NATS connection lost (${status.url}): reconnecting…`;
  }
  banner.hidden = message === null;
  banner.textContent = message || "";
  if (status) {
    const up = status.connected && !state.pageLost;
    pill.dataset.connected = up ? "yes" : "no";
    pill.textContent = up ? `NATS ${status.url}` : "disconnected";
  }
  const note = $("history-note");
  note.hidden = !(status && status.history);
  note.textContent = (status && status.history) || "";
}

function renderNetworks() {
  const root = clear($("networks"));
  if (!state.networks.length) {
    root.append(el("p", { class: "muted", text: "No network answers discovery yet: start one with `nons up TARGET`." }));
    return;
  }
  for (const network of state.networks) {
    const totals = state.totals[network.name] || {};
    const graph = el("div", { class: "graph" });
    for (const layer of network.layers) {
      const column = el("div", { class: "layer" },
        el("div", { class: "layer-title", text: layer.layer_index === null ? "layer ?" : `layer ${layer.layer_index}` }));
      for (const node of layer.nodes) {
        column.append(el("div", { class: "node", "data-node-id": node.node_id, "data-breaker": node.breaker },
          el("div", { class: "node-id", text: node.node_id }),
          el("div", { class: "muted", text: `${node.operator || "?"} · ${node.model || "default model"}` }),
          el("div", { class: "muted", text: `${node.replicas} replica${node.replicas === 1 ? "" : "s"} · breaker ${node.breaker}` })));
      }
      graph.append(column);
    }
    root.append(el("article", { class: "network", "data-network": network.name },
      el("h3", {}, network.name,
        el("span", { class: "muted", text: ` ${network.coordinators} coordinator${network.coordinators === 1 ? "" : "s"}` })),
      el("p", { class: "totals" },
        `${totals.executions || 0} executions · ${totals.tokens || 0} tokens · cost ${usd(totals.cost_usd)} · cache saved ${usd(totals.saved_usd)}`),
      graph));
  }
}

function renderRunForm() {
  const select = $("run-network");
  const current = select.value;
  const names = state.networks.filter((n) => n.coordinators > 0).map((n) => n.name);
  clear(select);
  for (const name of names) select.append(el("option", { value: name, text: name }));
  if (names.includes(current)) select.value = current;
  $("run-button").disabled = names.length === 0;
}

function renderExecutions() {
  const body = clear(document.querySelector("#executions tbody"));
  const rows = [...state.executions.values()].sort((a, b) => (b.started_at || 0) - (a.started_at || 0));
  if (!rows.length) {
    body.append(el("tr", {}, el("td", { colspan: 9, class: "muted", text: "No execution yet." })));
  }
  for (const row of rows) {
    body.append(el("tr", { "data-execution-id": row.execution_id },
      el("td", {}, el("a", { href: `#/executions/${encodeURIComponent(row.execution_id)}`, text: shortId(row.execution_id), title: row.execution_id })),
      el("td", { text: row.network }),
      el("td", {}, badge(row.status), row.error_type ? el("span", { class: "error-type", text: ` ${row.error_type}` }) : null),
      el("td", { text: ms(row.duration_ms) }),
      el("td", { text: row.tokens }),
      el("td", { text: usd(row.cost_usd) }),
      el("td", { text: row.cached_nodes ? `${usd(row.saved_usd)} (${row.cached_nodes} cached)` : usd(row.saved_usd) }),
      el("td", { text: row.is_mock ? "mock" : "" }),
      el("td", { text: when(row.started_at) })));
  }
}

function renderDetail() {
  const root = $("execution-view");
  if (state.watched === null) return;
  clear(root);
  root.append(el("p", {}, el("a", { href: "#/", text: "← all executions" })));
  if (state.detailMissing) {
    root.append(el("h2", { id: "not-found", text: "Execution not found" }),
      el("p", { class: "muted", text: `No execution ${state.watched} is known here or recorded in NONS_EVENTS.` }));
    return;
  }
  const detail = state.detail;
  if (!detail) {
    root.append(el("p", { class: "muted", text: "Loading…" }));
    return;
  }
  root.append(
    el("h2", {}, `${detail.network} `, badge(detail.status), detail.is_mock ? el("span", { class: "mock", text: " mock output" }) : null),
    el("dl", { class: "facts" },
      fact("execution", detail.execution_id),
      fact("duration", ms(detail.duration_ms)),
      fact("tokens", detail.tokens),
      fact("cost", usd(detail.cost_usd)),
      fact("cache saved", usd(detail.saved_usd)),
      traceFact(detail.trace_id)));
  if (detail.error) root.append(errorBox(detail.error, "execution-error"));
  root.append(el("h3", { text: "Layers" }), graph(detail));
  root.append(el("h3", { text: "Waterfall" }), waterfall(detail));
  root.append(el("h3", { text: "Output" }), outputBox(detail));
  root.append(el("h3", { text: "Nodes" }));
  for (const node of detail.nodes) root.append(nodePanel(node));
}

function fact(name, value) {
  return el("div", {}, el("dt", { text: name }), el("dd", { text: value }));
}

function traceFact(traceId) {
  if (!traceId) return fact("trace", "–");
  const value = el("dd", {}, el("code", { id: "trace-id", text: traceId }));
  if (state.jaegerUrl) {
    value.append(" ", el("a", { id: "trace-link", href: `${state.jaegerUrl}/trace/${encodeURIComponent(traceId)}`, target: "_blank", rel: "noopener noreferrer", text: "open in Jaeger" }));
  }
  return el("div", {}, el("dt", { text: "trace" }), value);
}

function errorBox(error, id) {
  return el("div", { class: "error", id },
    el("strong", { class: "error-type", text: error.type }), ": ", el("span", { text: error.message }));
}

function graph(detail) {
  const byId = new Map(detail.nodes.map((node) => [node.node_id, node]));
  const root = el("div", { class: "graph", id: "execution-graph" });
  for (const layer of detail.layers) {
    const column = el("div", { class: "layer", "data-layer": layer.layer_index, "data-status": layer.status },
      el("div", { class: "layer-title" }, `layer ${layer.layer_index} `, badge(layer.status)));
    for (const nodeId of layer.node_ids) {
      const node = byId.get(nodeId);
      if (!node) continue;
      const box = el("div", { class: "node", "data-node-id": node.node_id, "data-status": node.status },
        el("div", { class: "node-id", text: node.node_id }),
        el("div", {}, badge(node.status), node.attempt > 1 ? el("span", { class: "muted", text: ` attempt ${node.attempt}` }) : null),
        el("div", { class: "muted", text: `${ms(node.duration_ms)} · ${node.tokens} tok · ${usd(node.cost_usd)}` }),
        node.error ? el("div", { class: "error-type", text: node.error.type }) : null);
      box.addEventListener("click", () => {
        const panel = document.getElementById(`node-${node.node_id}`);
        if (panel) panel.scrollIntoView({ behavior: "smooth", block: "start" });
      });
      column.append(box);
    }
    root.append(column);
  }
  return root;
}

function waterfall(detail) {
  const spans = [];
  for (const layer of detail.layers) {
    if (layer.started_at) spans.push({ label: `layer ${layer.layer_index}`, kind: "layer", start: layer.started_at, end: layer.ended_at, status: layer.status });
    for (const node of detail.nodes.filter((n) => n.layer_index === layer.layer_index)) {
      if (node.started_at) spans.push({ label: node.node_id, kind: "node", start: node.started_at, end: node.ended_at, status: node.status });
    }
  }
  const root = el("div", { class: "waterfall", id: "waterfall" });
  if (!spans.length) return el("p", { class: "muted", text: "No timings yet." });
  const now = Date.now() / 1000;
  const start = Math.min(...spans.map((s) => s.start), detail.started_at || Infinity);
  const end = Math.max(...spans.map((s) => s.end || now), detail.ended_at || 0);
  const total = Math.max(end - start, 0.001);
  for (const span of spans) {
    const left = ((span.start - start) / total) * 100;
    const width = Math.max((((span.end || now) - span.start) / total) * 100, 0.5);
    const bar = el("div", { class: "bar", "data-status": span.status });
    bar.style.marginLeft = `${left}%`;
    bar.style.width = `${width}%`;
    root.append(el("div", { class: `row row-${span.kind}` },
      el("div", { class: "label", text: span.label }),
      el("div", { class: "track" }, bar),
      el("div", { class: "took", text: ms(((span.end || now) - span.start) * 1000) })));
  }
  return root;
}

function outputBox(detail) {
  if (detail.output_known) return el("pre", { class: "output", id: "output", text: asText(detail.output) });
  const why = detail.status === "running" ? "Running…" : detail.status === "failed"
    ? "No output: the execution failed."
    : "The output went to its caller and events do not carry outputs: run it from this page, or durably, to see it here.";
  return el("p", { class: "muted", id: "output-missing", text: why });
}

function nodePanel(node) {
  const panel = el("article", { class: "node-panel", id: `node-${node.node_id}`, "data-node-id": node.node_id, "data-status": node.status },
    el("h4", {}, `${node.node_id} `, badge(node.status),
      node.retry_reason && node.status === "retrying" ? el("span", { class: "muted", text: ` (${node.retry_reason})` }) : null),
    el("p", { class: "muted", text: `layer ${node.layer_index} · attempt ${node.attempt} · ${ms(node.duration_ms)} · ${node.tokens} tokens · ${usd(node.cost_usd)}${node.saved_usd ? ` · cache saved ${usd(node.saved_usd)}` : ""}${node.model ? ` · ${node.model}` : ""}${node.is_mock ? " · mock" : ""}` }));
  if (node.error) panel.append(errorBox(node.error, null));
  if (node.text) panel.append(el("div", { class: "muted", text: "streamed" }), el("pre", { class: "delta", text: node.text }));
  if (node.output_known) panel.append(el("div", { class: "muted", text: "output" }), el("pre", { class: "node-output", text: asText(node.output) }));
  return panel;
}

// -- running from the page -------------------------------------------------------------

async function run(event) {
  event.preventDefault();
  const network = $("run-network").value;
  const text = $("run-input").value;
  let value = text;
  try { value = JSON.parse(text); } catch (error) { /* plain text is the input */ }
  $("run-message").textContent = "starting…";
  try {
    const response = await fetch("/api/run", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ network, input: value }),
    });
    const data = await response.json();
    if (!response.ok) { $("run-message").textContent = data.error || "refused"; return; }
    $("run-message").textContent = "";
    location.hash = `#/executions/${encodeURIComponent(data.execution_id)}`;
  } catch (error) {
    $("run-message").textContent = "nons ui did not answer";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("run-form").addEventListener("submit", run);
  window.addEventListener("hashchange", route);
  route();
});
