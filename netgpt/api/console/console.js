// NetGPT console: plain DOM, no framework. Every string from the server goes in as text, never
// as HTML (intent text and device strings are operator- and device-controlled).
"use strict";

const $ = (id) => document.getElementById(id);
let me = null;
let events = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    ...options,
  });
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const detail = body && body.detail ? (typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)) : response.statusText;
    if (response.status === 401 && me) showLogin("session ended: " + detail);
    throw new Error(detail);
  }
  return body;
}

function showLogin(message) {
  me = null;
  if (events) { events.close(); events = null; }
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login-panel").hidden = false;
  $("whoami").textContent = "";
  $("login-error").textContent = message || "";
}

async function start() {
  try {
    me = await api("/api/me");
  } catch (e) {
    showLogin("");
    return;
  }
  $("login-panel").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("whoami").textContent = `${me.name} (${me.role})`;
  $("whoami").dataset.role = me.role;
  await Promise.all([drawMap(), refreshIntents(), refreshApprovals(), refreshAudit()]);
  events = new EventSource("/api/events");
  events.addEventListener("links", (e) => paintLinks(JSON.parse(e.data).links));
  for (const kind of ["intent", "run", "watch", "policy"]) {
    events.addEventListener(kind, () => { refreshIntents(); refreshApprovals(); refreshAudit(); });
  }
}

// -- map ---------------------------------------------------------------------------------------

let positions = {};

function project(devices) {
  const located = devices.filter((d) => d.location);
  if (located.length === devices.length && devices.length > 0) {
    const lats = located.map((d) => d.location[0]), lons = located.map((d) => d.location[1]);
    const [la0, la1] = [Math.min(...lats), Math.max(...lats)];
    const [lo0, lo1] = [Math.min(...lons), Math.max(...lons)];
    for (const d of devices) {
      positions[d.name] = [
        60 + 880 * (d.location[1] - lo0) / Math.max(lo1 - lo0, 1e-6),
        40 + 440 * (la1 - d.location[0]) / Math.max(la1 - la0, 1e-6),
      ];
    }
  } else {
    devices.forEach((d, i) => {
      const a = 2 * Math.PI * i / devices.length;
      positions[d.name] = [500 + 400 * Math.cos(a), 260 + 220 * Math.sin(a)];
    });
  }
}

function utilClass(u) {
  if (u === null || u === undefined) return "unknown";
  return u < 0.5 ? "u0" : u < 0.7 ? "u1" : u < 0.9 ? "u2" : "u3";
}

async function drawMap() {
  const topo = await api("/api/topology");
  $("topo-name").textContent = topo.name;
  positions = {};
  project(topo.devices);
  const svg = $("map");
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  for (const lk of topo.links) {
    const [x1, y1] = positions[lk.a], [x2, y2] = positions[lk.b];
    const line = document.createElementNS(ns, "line");
    for (const [k, v] of Object.entries({ x1, y1, x2, y2, id: `link-${lk.a}-${lk.b}` })) line.setAttribute(k, v);
    line.addEventListener("click", () => showPlot(lk.a, lk.b, lk.a_to_b >= lk.b_to_a));
    const title = document.createElementNS(ns, "title");
    line.append(title);
    svg.append(line);
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", (x1 + x2) / 2 + 4);
    label.setAttribute("y", (y1 + y2) / 2 - 4);
    label.setAttribute("id", `label-${lk.a}-${lk.b}`);
    svg.append(label);
  }
  for (const d of topo.devices) {
    const [x, y] = positions[d.name];
    const dot = document.createElementNS(ns, "circle");
    dot.setAttribute("cx", x); dot.setAttribute("cy", y); dot.setAttribute("r", 7);
    if (!d.reachable) dot.setAttribute("style", "fill:#c0001a");
    svg.append(dot);
    const name = document.createElementNS(ns, "text");
    name.setAttribute("x", x + 9); name.setAttribute("y", y + 16);
    name.textContent = d.name;
    svg.append(name);
  }
  paintLinks(topo.links);
}

function paintLinks(links) {
  for (const lk of links) {
    const line = $(`link-${lk.a}-${lk.b}`);
    if (!line) continue;
    const busier = lk.a_to_b === null ? null : Math.max(lk.a_to_b, lk.b_to_a);
    line.setAttribute("class", utilClass(busier));
    line.dataset.util = busier === null ? "" : busier.toFixed(4);
    line.dataset.aToB = lk.a_to_b === null ? "" : lk.a_to_b.toFixed(4);
    line.dataset.bToA = lk.b_to_a === null ? "" : lk.b_to_a.toFixed(4);
    line.querySelector("title").textContent = busier === null ? `${lk.a}–${lk.b}: no rates yet`
      : `${lk.a}->${lk.b} ${(100 * lk.a_to_b).toFixed(1)}%, ${lk.b}->${lk.a} ${(100 * lk.b_to_a).toFixed(1)}%`;
    $(`label-${lk.a}-${lk.b}`).textContent = busier === null ? "" : `${Math.round(100 * busier)}%`;
  }
}

function showPlot(a, b, forward) {
  const [src, dst] = forward ? [a, b] : [b, a];
  $("plot-link").textContent = `${src}->${dst}`;
  const img = $("plot");
  img.onerror = async () => {
    img.hidden = true;
    try { await api(`/api/links/${src}/${dst}/forecast`); } catch (e) { $("plot-error").textContent = e.message; }
  };
  img.onload = () => { img.hidden = false; $("plot-error").textContent = ""; };
  img.src = `/api/links/${encodeURIComponent(src)}/${encodeURIComponent(dst)}/forecast.png?t=${Date.now()}`;
}

// -- intents, approvals, audit ------------------------------------------------------------------

function runSummary(run) {
  const box = el("div", { id: `run-${run.run_id}`, class: "run", "data-outcome": run.outcome });
  box.append(el("p", {}, el("strong", {}, run.outcome), ` ${run.run_id}: ${run.reason}`));
  if (run.awaiting_approval) box.append(el("p", { class: "state-awaiting_approval" }, `waits for an approver: ${run.awaiting_approval}`));
  const choice = run.plan_choice;
  if (choice) {
    const list = el("ul", { class: "plan-options", id: `plan-options-${run.run_id}` });
    for (const o of choice.options) {
      const mark = o.index === choice.chosen ? "chosen" : (o.passes ? "passes" : `fails: ${o.failed_on}`);
      list.append(el("li", { "data-chosen": String(o.index === choice.chosen) }, `option ${o.index} (${mark}): ${o.summary}`));
    }
    const by = choice.adapter ? `${choice.by} (${choice.adapter} adapter)` : choice.by;
    box.append(el("p", {}, `plan chosen by ${by}: ${choice.reason}`), list);
  }
  for (const [device, diff] of Object.entries(run.diffs)) box.append(el("p", {}, `diff on ${device}`), el("pre", {}, diff));
  for (const v of run.verdicts.filter((v) => !v.passed)) box.append(el("p", { class: "error" }, `${v.rule}: ${v.evidence}`));
  return box;
}

async function submitIntent(event) {
  event.preventDefault();
  const out = $("run-result");
  out.replaceChildren(el("p", { class: "muted" }, "running…"));
  try {
    const run = await api("/api/intents", {
      method: "POST",
      body: JSON.stringify({ text: $("intent-text").value, dry_run: $("dry-run").checked }),
    });
    out.replaceChildren(runSummary(run));
  } catch (e) {
    out.replaceChildren(el("p", { class: "error" }, e.message));
  }
  refreshIntents(); refreshApprovals(); refreshAudit();
}

async function refreshIntents() {
  const body = $("intents").querySelector("tbody");
  const intents = await api("/api/intents");
  body.replaceChildren(...intents.map((i) => {
    const row = el("tr", { id: `intent-${i.id}` },
      el("td", {}, i.id), el("td", {}, i.text), el("td", {}, i.owner),
      el("td", { class: `state state-${i.state}` }, i.state.replaceAll("_", " ")), el("td"));
    if (me && ["operator", "approver", "admin"].includes(me.role) && !["withdrawn", "failed"].includes(i.state)) {
      const b = el("button", {}, "withdraw");
      b.addEventListener("click", async () => {
        try { await api(`/api/intents/${encodeURIComponent(i.id)}/withdraw`, { method: "POST" }); }
        catch (e) { alert(e.message); }
        refreshIntents(); refreshAudit();
      });
      row.lastChild.append(b);
    }
    return row;
  }));
}

async function refreshApprovals() {
  const box = $("approvals");
  const pending = await api("/api/approvals");
  if (!pending.length) { box.replaceChildren(el("p", { class: "muted" }, "none")); return; }
  box.replaceChildren(...pending.map((p) => {
    const card = el("div", { class: "pending", id: `pending-${p.run_id}` },
      el("p", {}, el("strong", {}, p.run_id), ` "${p.text}" from ${p.submitter}`),
      el("p", { class: "muted" }, p.why));
    for (const [device, diff] of Object.entries(p.diffs)) card.append(el("p", {}, `diff on ${device}`), el("pre", {}, diff));
    const status = el("p", { class: "error" });
    for (const decision of ["approve", "reject"]) {
      const b = el("button", { id: `${decision}-${p.run_id}` }, decision);
      b.addEventListener("click", async () => {
        status.textContent = "";
        try {
          const run = await api(`/api/approvals/${encodeURIComponent(p.run_id)}/${decision}`, { method: "POST" });
          $("run-result").replaceChildren(runSummary(run));
        } catch (e) { status.textContent = e.message; return; }
        refreshApprovals(); refreshIntents(); refreshAudit();
      });
      card.append(b, " ");
    }
    card.append(status);
    return card;
  }));
}

async function refreshAudit() {
  const records = await api("/api/audit?limit=40");
  $("audit").querySelector("tbody").replaceChildren(...records.reverse().map((r) =>
    el("tr", {}, el("td", {}, r.seq), el("td", {}, r.at.replace("T", " ").slice(0, 19)),
      el("td", {}, r.actor), el("td", {}, r.intent_id), el("td", {}, r.step), el("td", {}, r.outcome))));
}

// -- wiring ------------------------------------------------------------------------------------

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("/api/login", { method: "POST", body: JSON.stringify({ token: $("token").value }) });
    $("token").value = "";
    await start();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});
$("logout").addEventListener("click", async () => { await api("/api/logout", { method: "POST" }); showLogin("logged out"); });
$("intent-form").addEventListener("submit", submitIntent);
start();
