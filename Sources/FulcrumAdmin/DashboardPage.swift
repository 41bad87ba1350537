import FulcrumConfig
import Hummingbird
import NIOCore

/// The live dashboard served at `GET /` on the admin listener: one self-contained page (inline
/// CSS and JavaScript, no request beyond the admin API itself, so it works offline).
///
/// The page polls `api/stats` every second (and each adaptive backend's decisions), keeps
/// five minutes of history per server in the tab for its sparklines (p99 and req/s), and
/// changes server states and adaptive algorithms through the API with the token the operator
/// pastes once (kept in `localStorage`, sent as `Authorization: Bearer` on every call).
/// The page itself holds no data, so it needs no token even beyond loopback (a browser cannot
/// attach one to a navigation); everything it shows comes from calls that do.
enum DashboardPage {
    /// The page, with the algorithm names filled in from `AlgorithmName`.
    static let html: String = template.replacingOccurrences(of: "\"__FULCRUM_ALGORITHMS__\"", with: algorithmsJSON)

    /// What a manual switch may choose: every algorithm but `adaptive` itself.
    private static var algorithmsJSON: String {
        let names = AlgorithmName.allCases.filter { $0 != .adaptive }.map { "\"\($0.rawValue)\"" }
        return "[\(names.joined(separator: ", "))]"
    }

    /// Requests only to this origin, nothing loaded from elsewhere, never framed.
    static let contentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        + "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static func response() -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/html; charset=utf-8",
                .cacheControl: "no-store",
                .contentSecurityPolicy: contentSecurityPolicy,
                .xContentTypeOptions: "nosniff",
                .init("Referrer-Policy")!: "no-referrer",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html))
        )
    }

    /// The markup and style, the script (`DashboardPage+Script.swift`), and the end of the page.
    private static let template = page + "\n" + script + "\n" + pageEnd

    private static let page = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Fulcrum · dashboard</title>
<link rel="icon" href="data:,">
<style>
:root {
  --bg: #f3f5f8; --card: #ffffff; --line: #e3e7ee; --line-soft: #eef1f5; --text: #18202c;
  --muted: #5f6b7c; --faint: #8d97a6; --head: #f8f9fb; --hover: #f7f9fc;
  --accent: #2563eb; --accent-soft: #e8effe;
  --rps: #2563eb; --p99: #e0702b;
  --ok: #157347; --ok-bg: #e3f5ea; --warn: #9a5b00; --warn-bg: #fff1d6;
  --bad: #b42318; --bad-bg: #fde8e7; --info: #4338ca; --info-bg: #ebe9fe;
  --grey: #475467; --grey-bg: #eceff3;
  --mono: ui-monospace, "SFMono-Regular", "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Liberation Sans", "DejaVu Sans", Arial, sans-serif;
  --shadow: 0 1px 2px rgba(16, 24, 40, .05), 0 1px 3px rgba(16, 24, 40, .04);
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e131a; --card: #151c26; --line: #263142; --line-soft: #1d2633; --text: #e5eaf1;
    --muted: #9aa5b5; --faint: #6c7888; --head: #18212d; --hover: #1a2330;
    --accent: #5b8def; --accent-soft: #1c2a44; --rps: #5b8def; --p99: #f0904f;
    --ok: #4ade80; --ok-bg: #12301f; --warn: #fbbf24; --warn-bg: #33270c;
    --bad: #f87171; --bad-bg: #3a1717; --info: #a5b4fc; --info-bg: #23224a;
    --grey: #b4bfcc; --grey-bg: #232d3a; --shadow: none;
  }
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; font: 14px/1.45 var(--sans); color: var(--text); -webkit-font-smoothing: antialiased; }
.num, .mono, td.num, input, select { font-family: var(--mono); font-variant-numeric: tabular-nums; }
button, input, select { font-size: 13px; color: inherit; }

.top { position: sticky; top: 0; z-index: 2; display: flex; align-items: center; gap: 20px;
  padding: 10px 24px; background: var(--card); border-bottom: 1px solid var(--line); box-shadow: var(--shadow); }
.brand { display: flex; align-items: center; gap: 9px; font-weight: 650; font-size: 17px; letter-spacing: -.01em; }
.brand svg { color: var(--accent); }
.brand .sub { font-weight: 450; color: var(--muted); font-size: 14px; }
.brand .host { font: 12px var(--mono); color: var(--faint); font-weight: 400; }
.live { display: flex; align-items: center; gap: 7px; color: var(--muted); font-size: 13px; white-space: nowrap; }
.live .dot { width: 8px; height: 8px; border-radius: 50%; background: var(--faint); }
.live.on .dot { background: #22c55e; box-shadow: 0 0 0 3px rgba(34, 197, 94, .18); }
.live.off .dot { background: var(--bad); box-shadow: 0 0 0 3px rgba(220, 38, 38, .16); }
.live.off { color: var(--bad); }
.token { margin-left: auto; display: flex; align-items: center; gap: 8px; }
.token label { color: var(--muted); font-size: 13px; white-space: nowrap; }
.token input { width: 210px; padding: 6px 9px; border: 1px solid var(--line); border-radius: 7px; background: var(--bg); }
.token input:focus, select:focus { outline: 2px solid var(--accent-soft); border-color: var(--accent); }
.chip { font-size: 12px; padding: 2px 8px; border-radius: 999px; white-space: nowrap; }
.chip.set { color: var(--ok); background: var(--ok-bg); }
.chip.unset { color: var(--grey); background: var(--grey-bg); }

.btn { padding: 5px 11px; border: 1px solid var(--line); border-radius: 7px; background: var(--card);
  cursor: pointer; line-height: 1.3; font-family: var(--sans); font-weight: 500; }
.btn:hover:not(:disabled) { background: var(--hover); border-color: var(--faint); }
.btn:disabled { cursor: default; opacity: .45; }
.btn.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
.btn.primary:hover:not(:disabled) { background: var(--accent); filter: brightness(1.08); }
.btn.small { padding: 3px 8px; font-size: 12px; }

.status { position: fixed; z-index: 3; left: 50%; bottom: 20px; transform: translateX(-50%); max-width: min(960px, calc(100vw - 56px));
  padding: 9px 14px; border-radius: 9px; font-size: 13px; border: 1px solid transparent; box-shadow: 0 6px 24px rgba(16, 24, 40, .14); }
.status:empty { display: none; }
.status.error { color: var(--bad); background: var(--bad-bg); border-color: rgba(180, 35, 24, .25); }
.status.ok { color: var(--ok); background: var(--ok-bg); border-color: rgba(21, 115, 71, .25); }
.status.info { color: var(--grey); background: var(--grey-bg); border-color: var(--line); }

main { padding: 16px 24px 8px; display: grid; gap: 16px; }
.placeholder { color: var(--muted); padding: 40px; text-align: center; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; box-shadow: var(--shadow); overflow: hidden; }
.card.stale { opacity: .6; }
.card-head { display: flex; align-items: center; gap: 24px; padding: 14px 18px 12px; border-bottom: 1px solid var(--line); }
.card-head h2 { margin: 0; font-size: 17px; font-weight: 650; letter-spacing: -.01em; }
.title { display: flex; align-items: center; gap: 10px; flex: none; }
.algo { font: 12px var(--mono); padding: 2px 8px; border-radius: 6px; background: var(--grey-bg); color: var(--grey); white-space: nowrap; }
.algo.active { background: var(--accent-soft); color: var(--accent); font-weight: 600; }
.arrow { color: var(--faint); }
.pinned { font-size: 11px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: var(--warn); background: var(--warn-bg); padding: 2px 7px; border-radius: 6px; }
.summary { display: flex; gap: 18px; color: var(--muted); font-size: 13px; white-space: nowrap; min-width: 0; }
.summary b { color: var(--text); font: 600 13px var(--mono); }
.control { margin-left: auto; display: flex; flex-direction: column; align-items: flex-end; gap: 4px; }
.control-row { display: flex; align-items: center; gap: 8px; }
.control select { padding: 5px 8px; border: 1px solid var(--line); border-radius: 7px; background: var(--card); }
.control label { display: flex; align-items: center; gap: 4px; color: var(--muted); font-size: 13px; }
.control .note { color: var(--faint); font-size: 12px; line-height: 1.3; }

table { width: 100%; border-collapse: collapse; table-layout: fixed; }
th { text-align: left; font-size: 11px; font-weight: 600; text-transform: uppercase; letter-spacing: .05em;
  color: var(--muted); background: var(--head); padding: 8px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
td { padding: 8px 10px; border-bottom: 1px solid var(--line-soft); vertical-align: middle; white-space: nowrap; }
tbody tr:last-child td { border-bottom: 0; }
tbody tr:hover td { background: var(--hover); }
th:first-child, td:first-child { padding-left: 18px; }
th:last-child, td:last-child { padding-right: 18px; }
th.num, td.num { text-align: right; }
td.num { font-size: 13px; }
.unit { color: var(--faint); font-size: 11px; margin-left: 2px; }
.server-name { font-weight: 600; }
td.server > * { overflow: hidden; text-overflow: ellipsis; }
td.server .server-name { display: block; }
.address { font: 12px var(--mono); color: var(--faint); }
.second { display: block; font-size: 11px; color: var(--faint); }
.second.bad { color: var(--bad); }
.warn-text { color: var(--warn); }
.bad-text { color: var(--bad); font-weight: 600; }
.muted { color: var(--faint); }

.badge { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; font-weight: 600; padding: 2px 9px 2px 8px; border-radius: 999px; }
.badge::before { content: ""; width: 6px; height: 6px; border-radius: 50%; background: currentColor; }
.badge.up { color: var(--ok); background: var(--ok-bg); }
.badge.draining { color: var(--warn); background: var(--warn-bg); }
.badge.maintenance { color: var(--info); background: var(--info-bg); }
.badge.down, .badge.ejected { color: var(--bad); background: var(--bad-bg); }
.badge.other { color: var(--grey); background: var(--grey-bg); }

th.chart { text-align: left; }
.legend { text-transform: none; letter-spacing: 0; font-weight: 500; margin-left: 6px; }
.legend i { display: inline-block; width: 10px; height: 3px; border-radius: 2px; vertical-align: middle; margin: 0 3px 0 6px; }
.legend .rps { background: var(--rps); }
.legend .p99 { background: var(--p99); }
svg.spark { display: block; overflow: visible; }
svg.spark .base { stroke: var(--line); stroke-width: 1; }
svg.spark .rps-area { fill: var(--rps); fill-opacity: .14; stroke: none; }
svg.spark .rps-line { fill: none; stroke: var(--rps); stroke-width: 1.4; stroke-linejoin: round; }
svg.spark .p99-line { fill: none; stroke: var(--p99); stroke-width: 1.4; stroke-linejoin: round; }
svg.spark .empty { fill: var(--faint); font: 10px var(--sans); }

.actions { display: inline-flex; border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
.actions .btn { border: 0; border-radius: 0; border-right: 1px solid var(--line); padding: 4px 9px; font-size: 12px; }
.actions .btn:last-child { border-right: 0; }
.actions .btn[aria-pressed="true"] { background: var(--grey-bg); color: var(--text); opacity: 1; box-shadow: inset 0 1px 2px rgba(16, 24, 40, .1); }

.decisions { border-top: 1px solid var(--line); padding: 10px 18px 12px; }
.decisions h3 { margin: 0 0 6px; font-size: 11px; font-weight: 600; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.decisions ol { list-style: none; margin: 0; padding: 0; display: grid; gap: 3px; }
.decisions li { display: grid; grid-template-columns: 64px 66px 250px 150px 1fr; gap: 10px; align-items: baseline; font-size: 13px; }
.decisions .ago { color: var(--faint); text-align: right; font: 12px var(--mono); }
.decisions .change { font: 12px var(--mono); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.decisions .rule { font: 12px var(--mono); color: var(--muted); }
.decisions .why { color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.decisions .last-switch { margin-top: 6px; font-size: 12px; color: var(--muted); }
.decisions .why-now { margin: 0 0 8px; font-size: 13px; }
.decisions .why-now b { font: 600 12px var(--mono); }
.tag { font-size: 11px; font-weight: 600; padding: 1px 7px; border-radius: 5px; text-align: center; }
.tag.switched { color: var(--accent); background: var(--accent-soft); }
.tag.kept { color: var(--grey); background: var(--grey-bg); }
footer { padding: 6px 24px 22px; color: var(--faint); font-size: 12px; }
footer a { color: var(--muted); }
</style>
</head>
<body>
<header class="top">
  <div class="brand">
    <svg width="24" height="24" viewBox="0 0 24 24" aria-hidden="true"><path d="M2.5 9.5 21.5 6" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" fill="none"/><path d="M12 8.6 6.8 19.5h10.4z" fill="currentColor"/></svg>
    <span>Fulcrum</span><span class="sub">live dashboard</span><span class="host" id="host"></span>
  </div>
  <div class="live" id="live" aria-live="polite"><span class="dot"></span><span id="live-text">connecting…</span></div>
  <form class="token" id="token-form" autocomplete="off">
    <label for="token">Admin token</label>
    <input id="token" type="password" spellcheck="false" placeholder="paste it once" title="Kept in this browser (localStorage) and sent as Authorization: Bearer on every call">
    <button class="btn" type="submit">Save</button>
    <button class="btn" type="button" id="forget">Forget</button>
    <span class="chip unset" id="token-chip">no token</span>
  </form>
</header>
<div id="status" class="status" role="status" aria-live="polite"></div>
<main id="backends"><div class="placeholder" id="placeholder">Loading the live state…</div></main>
<footer>Refreshes every second from <span class="mono">api/stats</span>. Rates, errors and percentiles cover the last 15–20 s; charts keep the last 5 minutes in this tab. Reference: <a href="api/openapi.yaml">api/openapi.yaml</a>.</footer>

<template id="card-template">
  <section class="card">
    <div class="card-head">
      <div class="title">
        <h2 data-ref="name"></h2>
        <span class="algo" data-ref="configured" title="As configured"></span>
        <span class="arrow" data-ref="arrow">→</span>
        <span class="algo active" data-ref="active" title="Picking now"></span>
        <span class="pinned" data-ref="pinned" title="An operator pinned this algorithm: the engine leaves it alone">pinned</span>
      </div>
      <div class="summary">
        <span><b data-ref="up"></b> up</span>
        <span><b data-ref="rps"></b> req/s</span>
        <span><b data-ref="errors"></b> errors</span>
        <span>p99 max <b data-ref="p99"></b></span>
      </div>
      <div class="control">
        <div class="control-row">
          <select data-ref="select" aria-label="Algorithm"></select>
          <label data-ref="pin-label" title="Keep this algorithm: the decision engine stops switching until unpinned"><input type="checkbox" data-ref="pin" checked> pin</label>
          <button class="btn primary" type="button" data-ref="switch">Switch</button>
          <button class="btn" type="button" data-ref="unpin" title="Let the decision engine choose again">Unpin</button>
        </div>
        <span class="note" data-ref="note"></span>
      </div>
    </div>
    <table>
      <thead><tr>
        <th>Server</th><th style="width: 116px">State</th><th class="num" style="width: 62px">Weight</th>
        <th class="num" style="width: 78px">In flight</th><th class="num" style="width: 72px">Req/s</th>
        <th class="num" style="width: 70px">Errors</th><th class="num" style="width: 78px">p50</th>
        <th class="num" style="width: 78px">p99</th>
        <th class="chart" style="width: 174px">Last 5 min<span class="legend"><i class="rps"></i>req/s<i class="p99"></i>p99</span></th>
        <th class="num" style="width: 92px">Requests</th><th style="width: 226px">Set state</th>
      </tr></thead>
      <tbody data-ref="rows"></tbody>
    </table>
    <div class="decisions" data-ref="decisions">
      <h3>Decision engine: latest evaluations</h3>
      <p class="why-now" data-ref="why-now"></p>
      <ol data-ref="decision-list"></ol>
      <div class="last-switch" data-ref="last-switch"></div>
    </div>
  </section>
</template>

<template id="row-template">
  <tr>
    <td class="server"><span class="server-name" data-ref="name"></span><span class="second address" data-ref="address"></span></td>
    <td><span class="badge" data-ref="state"></span></td>
    <td class="num" data-ref="weight"></td>
    <td class="num" data-ref="inflight"></td>
    <td class="num" data-ref="rps"></td>
    <td class="num" data-ref="errors"></td>
    <td class="num" data-ref="p50"></td>
    <td class="num" data-ref="p99"></td>
    <td>
      <svg class="spark" width="152" height="38" viewBox="0 0 152 38" data-ref="chart">
        <title data-ref="chart-title"></title>
        <line class="base" x1="0" y1="17.5" x2="152" y2="17.5"/>
        <line class="base" x1="0" y1="37.5" x2="152" y2="37.5"/>
        <path class="rps-area" data-ref="rps-area"/>
        <path class="rps-line" data-ref="rps-line"/>
        <path class="p99-line" data-ref="p99-line"/>
        <text class="empty" x="0" y="12" data-ref="chart-empty">collecting…</text>
      </svg>
    </td>
    <td class="num" data-ref="requests"></td>
    <td>
      <div class="actions" role="group" aria-label="Set state">
        <button class="btn" type="button" data-state="drain" title="No new requests; those in flight finish">Drain</button>
        <button class="btn" type="button" data-state="maintenance" title="Out of rotation; health checks pause">Maintenance</button>
        <button class="btn" type="button" data-state="ready" title="Back in rotation (when healthy)">Ready</button>
      </div>
    </td>
  </tr>
</template>

<script>
"""#

    private static let pageEnd = #"""
</script>
</body>
</html>

"""#
}
