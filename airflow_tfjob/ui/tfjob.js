"use strict";
// What both pages share (page.html, task.html): elements, durations, replica counts, JSON.
// Every URL is relative to the page (tfjob/), so both work under any sub-path of Airflow.
const REFRESH_MS = 5000;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k.startsWith("data-")) node.setAttribute(k, v); else node[k] = v;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(child ?? ""));
  return node;
}

function span(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor(s % 3600 / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s % 86400 / 3600)}h`;
}

function replicas(counts) {
  return Object.entries(counts).map(([type, c]) => `${type} ${c.active}/${c.succeeded}/${c.failed} of ${c.total}`).join(" · ");
}

async function getJSON(url) {
  const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

function jobURL(job) {
  return `api/jobs/${encodeURIComponent(job.conn_id)}/${encodeURIComponent(job.namespace)}/${encodeURIComponent(job.name)}`;
}

function podRows(pods) {
  return pods.map(p => el("tr", {"data-replica": p.replica},
    el("td", {}, p.replica), el("td", {}, p.pod), el("td", {}, p.phase), el("td", {}, p.exit_code ?? "–"), el("td", {}, p.reason || ""), el("td", {}, String(p.restarts))));
}

function showError(error) {
  document.getElementById("errors").replaceChildren(el("div", {class: "target-error"}, String(error.message || error)));
}
