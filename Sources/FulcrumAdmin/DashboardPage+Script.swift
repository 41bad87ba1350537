extension DashboardPage {
    /// The page's JavaScript: polling, rendering, history and the change buttons.
    static let script = #"""
"use strict";
(() => {
  const ALGORITHMS = "__FULCRUM_ALGORITHMS__";
  const POLL_MS = 1000;
  const HISTORY_MS = 5 * 60 * 1000;
  const MIN_WINDOW_MS = 60 * 1000;
  const DECISIONS_SHOWN = 5;
  const TOKEN_KEY = "fulcrum.admin.token";
  const CHART = { width: 152, rpsTop: 2, rpsBottom: 17, p99Top: 22, p99Bottom: 37 };

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  const cards = new Map();
  const history = new Map();
  let token = readToken();
  let statusSource = null;
  let statusTimer = null;
  let pollTimer = null;
  let polling = false;
  let pollAgain = false;
  let loaded = false;

  function readToken() {
    try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (e) { return ""; }
  }

  // ---- the API ---------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, title, detail) {
      super(detail);
      this.status = status;
      this.title = title;
      this.detail = detail;
    }
  }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method, headers, cache: "no-store",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiError(0, "No answer", "The admin API did not answer (" + error.message + "). Is Fulcrum running?");
    }
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (!response.ok) {
      const detail = json && typeof json.detail === "string" ? json.detail : (text.trim() || response.statusText);
      throw new ApiError(response.status, (json && json.title) || response.statusText, detail);
    }
    return json;
  }

  function describe(error) {
    if (!(error instanceof ApiError)) return String(error && error.message || error);
    let text = error.status ? error.status + " " + error.title + ": " + error.detail : error.detail;
    if (error.status === 401) text += token ? " The saved token was refused: paste the right one into the field at the top." : " Paste the admin token into the field at the top.";
    return text;
  }

  // ---- status line and live indicator ----------------------------------------------------

  function showStatus(kind, text, source, seconds) {
    const line = $("status");
    line.className = "status " + kind;
    line.textContent = text;
    statusSource = source;
    clearTimeout(statusTimer);
    if (seconds) statusTimer = setTimeout(() => { if (statusSource === source) clearStatus(); }, seconds * 1000);
  }

  function clearStatus() {
    $("status").textContent = "";
    $("status").className = "status";
    statusSource = null;
  }

  function setLive(ok, when) {
    const live = $("live");
    live.className = "live " + (ok ? "on" : "off");
    $("live-text").textContent = ok
      ? "Live · updated " + when.toLocaleTimeString([], { hour12: false })
      : "Not updating";
    for (const card of cards.values()) card.root.classList.toggle("stale", !ok);
  }

  function showToken() {
    const chip = $("token-chip");
    chip.textContent = token ? "token saved" : "no token";
    chip.className = "chip " + (token ? "set" : "unset");
    $("token").placeholder = token ? "saved; paste to replace" : "paste it once";
  }

  // ---- polling ---------------------------------------------------------------------------

  async function poll() {
    if (polling) { pollAgain = true; return; }
    polling = true;
    clearTimeout(pollTimer);
    try {
      const stats = await api("GET", "api/stats");
      const backends = (stats && stats.backends) || [];
      const decisions = new Map(await Promise.all(backends
        .filter((backend) => backend.algorithm === "adaptive")
        .map((backend) => api("GET", "api/backends/" + enc(backend.name) + "/decisions")
          .then((answer) => [backend.name, answer.decisions || []], () => [backend.name, null]))));
      const now = Date.now();
      record(backends, now);
      render(backends, decisions, now);
      setLive(true, new Date(now));
      if (statusSource === "poll") clearStatus();
    } catch (error) {
      setLive(false);
      if (statusSource !== "action") showStatus("error", describe(error), "poll");
      if (!loaded) $("placeholder").textContent = "Cannot load the live state: see the message below.";
    } finally {
      polling = false;
      if (pollAgain) { pollAgain = false; pollTimer = setTimeout(poll, 0); }
      else pollTimer = setTimeout(poll, POLL_MS);
    }
  }

  function record(backends, now) {
    for (const backend of backends) {
      for (const server of backend.servers) {
        const key = backend.name + "\u0000" + server.name;
        let points = history.get(key);
        if (!points) history.set(key, points = []);
        points.push({ t: now, rps: server.requestsPerSecond, p99: server.p99Milliseconds ?? null });
        while (points.length && now - points[0].t > HISTORY_MS) points.shift();
      }
    }
  }

  // ---- rendering -------------------------------------------------------------------------

  function clone(id) {
    const root = $(id).content.firstElementChild.cloneNode(true);
    const refs = {};
    for (const element of root.querySelectorAll("[data-ref]")) refs[element.dataset.ref] = element;
    return { root, refs };
  }

  function setText(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function setNumber(cell, value, unit) {
    cell.textContent = value;
    if (unit && value !== "—") {
      const span = document.createElement("span");
      span.className = "unit";
      span.textContent = unit;
      cell.appendChild(span);
    }
  }

  const formatRate = (v) => v == null ? "—" : v >= 1000 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1);
  const formatMs = (v) => v == null ? "—" : v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : Math.round(v).toLocaleString("en-US");
  const formatCount = (v) => v == null ? "—" : Number(v).toLocaleString("en-US");
  function formatPercent(rate) {
    if (rate == null) return "—";
    const percent = rate * 100;
    return percent === 0 ? "0.0" : percent < 0.1 ? "<0.1" : percent < 10 ? percent.toFixed(1) : String(Math.round(percent));
  }
  function formatAgo(seconds) {
    if (seconds < 60) return Math.round(seconds) + " s ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    return (seconds / 3600).toFixed(1) + " h ago";
  }

  function render(backends, decisions, now) {
    const main = $("backends");
    loaded = true;
    if (backends.length) for (const placeholder of main.querySelectorAll(".placeholder")) placeholder.remove();
    const seen = new Set();
    let previous = null;
    for (const backend of backends) {
      seen.add(backend.name);
      let card = cards.get(backend.name);
      if (!card) {
        card = makeCard(backend);
        cards.set(backend.name, card);
      }
      // Configuration order.
      const next = previous ? previous.nextSibling : main.firstChild;
      if (card.root !== next) main.insertBefore(card.root, next);
      previous = card.root;
      updateCard(card, backend, decisions.get(backend.name), now);
    }
    for (const [name, card] of cards) {
      if (!seen.has(name)) { card.root.remove(); cards.delete(name); }
    }
    if (!backends.length) {
      const placeholder = main.querySelector(".placeholder") || main.appendChild(document.createElement("div"));
      placeholder.className = "placeholder";
      setText(placeholder, "No backends are configured.");
    }
  }

  function makeCard(backend) {
    const card = clone("card-template");
    card.rows = new Map();
    card.root.dataset.backend = backend.name;
    const { refs } = card;
    setText(refs.name, backend.name);
    const adaptive = backend.algorithm === "adaptive";
    card.adaptive = adaptive;
    for (const name of adaptive ? ALGORITHMS : [backend.algorithm]) {
      const option = document.createElement("option");
      option.value = name;
      option.textContent = name;
      refs.select.appendChild(option);
    }
    if (adaptive) {
      refs.note.remove();
      refs.select.addEventListener("change", () => { card.touched = true; });
      refs.switch.addEventListener("click", () => switchAlgorithm(card, backend.name));
      refs.unpin.addEventListener("click", () => unpin(card, backend.name));
    } else {
      for (const control of [refs.select, refs.pin, refs.switch, refs.unpin]) control.disabled = true;
      refs["pin-label"].classList.add("muted");
      refs.note.textContent = "Fixed by the configuration: only adaptive backends switch at run time.";
      refs.note.title = "PUT api/backends/{b}/algorithm answers 422 for a backend that is not adaptive; its algorithm changes with the configuration.";
      refs.decisions.remove();
    }
    return card;
  }

  function updateCard(card, backend, decisions, now) {
    const { refs, root } = card;
    const adaptive = card.adaptive;
    root.dataset.active = backend.activeAlgorithm;
    setText(refs.configured, backend.algorithm);
    setText(refs.active, backend.activeAlgorithm);
    refs.arrow.hidden = refs.active.hidden = !adaptive;
    refs.pinned.hidden = backend.pinned !== true;
    if (adaptive) {
      refs.unpin.disabled = backend.pinned !== true || card.busy;
      refs.switch.disabled = !!card.busy;
      if (!card.touched && refs.select.value !== backend.activeAlgorithm) refs.select.value = backend.activeAlgorithm;
    }

    const servers = backend.servers;
    const up = servers.filter((server) => server.state === "up").length;
    const rps = servers.reduce((sum, server) => sum + server.requestsPerSecond, 0);
    const failing = servers.reduce((sum, server) => sum + server.requestsPerSecond * server.errorRate, 0);
    const p99s = servers.map((server) => server.p99Milliseconds).filter((v) => v != null);
    setText(refs.up, up + "/" + servers.length);
    setText(refs.rps, formatRate(rps));
    setText(refs.errors, formatPercent(rps > 0 ? failing / rps : 0) + " %");
    setText(refs.p99, p99s.length ? formatMs(Math.max(...p99s)) + " ms" : "—");

    const seen = new Set();
    let previous = null;
    for (const server of servers) {
      seen.add(server.name);
      let row = card.rows.get(server.name);
      if (!row) {
        row = makeRow(card, backend.name, server);
        card.rows.set(server.name, row);
      }
      const next = previous ? previous.nextSibling : refs.rows.firstChild;
      if (row.root !== next) refs.rows.insertBefore(row.root, next);
      previous = row.root;
      updateRow(row, backend.name, server, now);
    }
    for (const [name, row] of card.rows) {
      if (!seen.has(name)) { row.root.remove(); card.rows.delete(name); }
    }
    if (adaptive) updateDecisions(card, decisions);
  }

  function makeRow(card, backendName, server) {
    const row = clone("row-template");
    row.root.dataset.server = server.name;
    setText(row.refs.name, server.name);
    for (const button of row.root.querySelectorAll("button[data-state]")) {
      button.addEventListener("click", () => setState(card, row, backendName, server.name, button.dataset.state));
    }
    return row;
  }

  const STATE_OF_CHANGE = { drain: "draining", maintenance: "maintenance" };

  function updateRow(row, backendName, server, now) {
    const { refs, root } = row;
    root.dataset.state = server.state;
    root.dataset.requests = String(server.totals.requests);
    setText(refs.address, server.address);
    const badgeClass = ["up", "draining", "maintenance", "down", "ejected"].includes(server.state) ? server.state : "other";
    refs.state.className = "badge " + badgeClass;
    setText(refs.state, server.state);
    setText(refs.weight, String(server.weight));
    setText(refs.inflight, formatCount(server.inFlight));
    refs.inflight.title = server.connectionsOpen + " connection" + (server.connectionsOpen === 1 ? "" : "s") + " open to it";
    setText(refs.rps, formatRate(server.requestsPerSecond));
    setNumber(refs.errors, formatPercent(server.errorRate), "%");
    refs.errors.className = "num" + (server.errorRate >= 0.05 ? " bad-text" : server.errorRate >= 0.01 ? " warn-text" : "");
    setNumber(refs.p50, formatMs(server.p50Milliseconds), "ms");
    setNumber(refs.p99, formatMs(server.p99Milliseconds), "ms");

    const totals = server.totals;
    refs.requests.textContent = formatCount(totals.requests);
    const failures = [];
    if (totals.responses5xx) failures.push(formatCount(totals.responses5xx) + " 5xx");
    if (totals.connectFailures) failures.push(formatCount(totals.connectFailures) + " refused");
    if (totals.timeouts) failures.push(formatCount(totals.timeouts) + " timeouts");
    if (totals.noResponses) failures.push(formatCount(totals.noResponses) + " no answer");
    if (failures.length) {
      const sub = document.createElement("span");
      sub.className = "second bad";
      sub.textContent = failures.join(" · ");
      refs.requests.appendChild(sub);
    }
    refs.requests.title = "Since start: " + formatCount(totals.requests) + " requests, " + formatCount(totals.responses5xx)
      + " 5xx, " + formatCount(totals.connectFailures) + " connect failures, " + formatCount(totals.timeouts)
      + " timeouts, " + formatCount(totals.noResponses) + " without a response";

    // The button of the state the server is in is shown pressed; "ready" covers up, down
    // and ejected (health decides among those).
    const current = server.state === "draining" ? "drain" : server.state === "maintenance" ? "maintenance" : "ready";
    for (const button of root.querySelectorAll("button[data-state]")) {
      const active = button.dataset.state === current;
      button.setAttribute("aria-pressed", String(active));
      button.disabled = active || !!row.busy;
    }
    drawChart(refs, history.get(backendName + "\u0000" + server.name) || [], now);
  }

  function drawChart(refs, points, now) {
    const { width, rpsTop, rpsBottom, p99Top, p99Bottom } = CHART;
    if (points.length < 2) {
      refs["chart-empty"].style.display = "";
      return;
    }
    refs["chart-empty"].style.display = "none";
    const span = Math.min(HISTORY_MS, Math.max(MIN_WINDOW_MS, now - points[0].t));
    const x = (t) => (width - (now - t) / span * width).toFixed(1);
    const rpsMax = Math.max(1, ...points.map((p) => p.rps));
    const p99Values = points.map((p) => p.p99).filter((v) => v != null);
    const p99Max = Math.max(1, ...p99Values);
    const yRps = (v) => (rpsBottom - v / rpsMax * (rpsBottom - rpsTop)).toFixed(1);
    const yP99 = (v) => (p99Bottom - Math.min(v, p99Max) / p99Max * (p99Bottom - p99Top)).toFixed(1);

    let line = "";
    for (const p of points) line += (line ? "L" : "M") + x(p.t) + " " + yRps(p.rps);
    refs["rps-line"].setAttribute("d", line);
    refs["rps-area"].setAttribute("d", line + "L" + x(points[points.length - 1].t) + " " + rpsBottom
      + "L" + x(points[0].t) + " " + rpsBottom + "Z");

    let p99 = "";
    let gap = true;
    for (const p of points) {
      if (p.p99 == null) { gap = true; continue; }
      p99 += (gap ? "M" : "L") + x(p.t) + " " + yP99(p.p99);
      gap = false;
    }
    refs["p99-line"].setAttribute("d", p99);
    const minutes = Math.max(1, Math.round((now - points[0].t) / 60000));
    refs["chart-title"].textContent = "Last " + (now - points[0].t < 60000 ? Math.round((now - points[0].t) / 1000) + " s" : minutes + " min")
      + ": req/s up to " + formatRate(Math.max(...points.map((p) => p.rps)))
      + (p99Values.length ? ", p99 up to " + formatMs(Math.max(...p99Values)) + " ms" : ", no p99 yet");
  }

  function updateDecisions(card, decisions) {
    const { refs } = card;
    const list = refs["decision-list"];
    list.textContent = "";
    refs["last-switch"].textContent = "";
    refs["why-now"].textContent = "";
    if (decisions == null) {
      const item = document.createElement("li");
      item.className = "muted";
      item.textContent = "The decisions could not be read.";
      list.appendChild(item);
      return;
    }
    if (!decisions.length) {
      const item = document.createElement("li");
      item.className = "muted";
      item.style.display = "block";
      item.textContent = "No evaluation yet: the engine looks at each window of evaluate_every (5 s by default).";
      list.appendChild(item);
      return;
    }
    // Why the algorithm is what it is now: the latest evaluation's evidence, whether it
    // switched, kept, or was held by min_switch_interval.
    const latest = decisions[0];
    const evidence = latest.explanation.replace(/^\S+ (keeps \S+|\S+ → \S+): /, "");
    if (latest.rule === "min_switch_interval") {
      refs["why-now"].append("On " + latest.to + ", " + evidence);
    } else {
      const rule = document.createElement("b");
      rule.textContent = latest.rule;
      refs["why-now"].append((latest.switched ? "Switched to " : "Kept ") + latest.to + " — ", rule, ": " + evidence);
    }
    const shown = decisions.slice(0, DECISIONS_SHOWN);
    for (const decision of shown) list.appendChild(decisionItem(decision));
    if (!shown.some((decision) => decision.switched)) {
      const last = decisions.find((decision) => decision.switched);
      refs["last-switch"].textContent = last
        ? "Last switch " + formatAgo(last.secondsAgo) + " (" + last.rule + "): " + last.explanation
        : "No switch in the last " + decisions.length + " evaluations.";
    }
  }

  function decisionItem(decision) {
    const item = document.createElement("li");
    const cells = [
      ["ago", formatAgo(decision.secondsAgo)],
      ["tag " + (decision.switched ? "switched" : "kept"), decision.switched ? "switched" : "kept"],
      ["change", decision.switched ? decision.from + " → " + decision.to : decision.to],
      ["rule", decision.rule],
      ["why", decision.explanation],
    ];
    for (const [className, text] of cells) {
      const span = document.createElement("span");
      span.className = className;
      span.textContent = text;
      if (className === "why" || className === "change") span.title = text;
      item.appendChild(span);
    }
    return item;
  }

  // ---- changes ---------------------------------------------------------------------------

  async function change(target, method, path, body, success) {
    target.busy = true;
    try {
      const answer = await api(method, path, body);
      showStatus("ok", success(answer), "action", 6);
    } catch (error) {
      showStatus("error", describe(error), "action", 15);
    } finally {
      target.busy = false;
      poll();
    }
  }

  function setState(card, row, backend, server, state) {
    for (const button of row.root.querySelectorAll("button[data-state]")) button.disabled = true;
    change(row, "PATCH", "api/backends/" + enc(backend) + "/servers/" + enc(server), { state },
      (answer) => server + " (" + backend + ") is now " + (answer && answer.state || STATE_OF_CHANGE[state] || "up") + ".");
  }

  function switchAlgorithm(card, backend) {
    const algorithm = card.refs.select.value;
    const pin = card.refs.pin.checked;
    card.refs.switch.disabled = true;
    change(card, "PUT", "api/backends/" + enc(backend) + "/algorithm", { algorithm, pin }, (answer) => {
      card.touched = false;
      return backend + " now balances with " + answer.activeAlgorithm + (answer.pinned ? " (pinned)." : " (the engine may switch again).");
    });
  }

  function unpin(card, backend) {
    card.refs.unpin.disabled = true;
    change(card, "PUT", "api/backends/" + enc(backend) + "/algorithm", { pin: false }, (answer) => {
      card.touched = false;
      return backend + " is unpinned: the decision engine chooses again (now " + answer.activeAlgorithm + ").";
    });
  }

  // ---- start -----------------------------------------------------------------------------

  $("host").textContent = location.host;
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (!value) { showStatus("error", "Paste the admin token first.", "action", 6); return; }
    token = value;
    try { localStorage.setItem(TOKEN_KEY, token); } catch (e) { /* kept for this tab only */ }
    $("token").value = "";
    showToken();
    showStatus("ok", "Token saved in this browser; every call now sends it.", "action", 5);
    poll();
  });
  $("forget").addEventListener("click", () => {
    token = "";
    try { localStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing stored */ }
    showToken();
    showStatus("info", "Token forgotten: changes need it again.", "action", 5);
  });
  showToken();
  poll();
})();
"""#
}
