/* ironbridge console: every figure comes from the public /api/v1 (session cookie);
   live figures from Server-Sent Events, never from polling loops. */
(function () {
  "use strict";
  const IB = window.IB || {};
  const M = IB.t || {};
  const t = (k) => (k in M ? M[k] : k);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const nf = new Intl.NumberFormat(IB.lang === "zh" ? "zh-CN" : "en-US", {maximumFractionDigits: 2});
  const fmt = (v) => (v == null || Number.isNaN(v) ? "–" : typeof v === "number" ? nf.format(v) : String(v));
  const dtf = new Intl.DateTimeFormat(IB.lang === "zh" ? "zh-CN" : "en-GB", {dateStyle: "short", timeStyle: "medium"});
  const when = (ms) => (ms == null ? t("common.never") : dtf.format(new Date(ms)));
  const ago = (ms) => {
    if (ms == null) return t("common.never");
    const s = Math.max(0, (Date.now() - ms) / 1000);
    const txt = s < 90 ? Math.round(s) + "s" : s < 5400 ? Math.round(s / 60) + "m" : s < 172800 ? Math.round(s / 3600) + "h" : Math.round(s / 86400) + "d";
    return IB.lang === "zh" ? txt + t("common.ago") : txt + " " + t("common.ago");
  };
  /* data-ready marks the first paint with real data (tests and bench/console.py wait on it). */
  const ready = (el) => requestAnimationFrame(() => {
    const target = el || document.body;
    if (target.dataset.ready) return;
    target.dataset.readyMs = String(Math.round(performance.now()));
    target.dataset.ready = "1";
  });
  const chartTheme = {
    backgroundColor: "transparent",
    animation: false,
    textStyle: {color: "#c9d1d9", fontFamily: "system-ui, sans-serif"},
    color: ["#4ea1ff", "#3fb950", "#d29922", "#f85149", "#a371f7", "#39c5cf", "#ff7b72", "#e3b341"],
  };

  class ApiError extends Error {
    constructor(status, body) { super((body && body.detail) || ("HTTP " + status)); this.status = status; this.body = body; }
  }
  async function api(path, opts) {
    const o = Object.assign({credentials: "same-origin", headers: {}}, opts || {});
    if (o.json !== undefined) { o.body = JSON.stringify(o.json); o.headers["Content-Type"] = "application/json"; o.method = o.method || "POST"; }
    const r = await fetch(path, o);
    if (r.status === 401 && IB.page !== "login") { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new ApiError(401); }
    const text = await r.text();
    const body = text ? JSON.parse(text) : null;
    if (!r.ok) throw new ApiError(r.status, body);
    return body;
  }

  /* One EventSource per feed; the header dot shows its state. Feeds opened early (before
     the charting library is parsed) keep their newest event until a handler attaches. */
  const feeds = {};
  function feed(url, event) {
    const key = event + " " + url;
    if (feeds[key]) return feeds[key];
    const f = {last: null, handlers: [], dots: [], es: new EventSource(url, {withCredentials: true})};
    const show = (state) => f.dots.concat([$("#live-state")]).forEach((d) => { if (d) d.dataset.state = state; });
    f.es.addEventListener(event, (e) => { show("open"); f.last = JSON.parse(e.data); f.handlers.forEach((h) => h(f.last)); });
    f.es.onopen = () => show("open");
    f.es.onerror = () => show("error");
    window.addEventListener("beforeunload", () => f.es.close());
    feeds[key] = f;
    return f;
  }
  function live(url, event, onData, dot) {
    const f = feed(url, event);
    if (dot) f.dots.push(dot);
    f.handlers.push(onData);
    if (f.last !== null) onData(f.last);
    return f;
  }

  /* Lists are paged by the API (10 000 rows a page). */
  async function apiAll(path) {
    const out = [];
    for (;;) {
      const page = await api(path + (path.includes("?") ? "&" : "?") + "limit=10000&offset=" + out.length);
      out.push(...page);
      if (page.length < 10000) return out;
    }
  }

  function chart(el) {
    const c = echarts.init(el, null, {renderer: "canvas"});
    /* The observer also reports the size the chart was created with: no second render. */
    let w = el.clientWidth, h = el.clientHeight;
    new ResizeObserver(() => {
      if (c.isDisposed() || (el.clientWidth === w && el.clientHeight === h)) return;
      w = el.clientWidth; h = el.clientHeight; c.resize();
    }).observe(el);
    return c;
  }
  /* shared with the area scripts (plant, service, predictions, chain), loaded after this one */
  IB.chart = chart;
  window.IB = IB;

  /* The alarm service belongs to the rules package; the console adapts to its shape. */
  const alarmsApi = {
    async list(params) {
      const q = new URLSearchParams(params || {});
      const rows = await api("/api/v1/alarms" + (q.toString() ? "?" + q : ""));
      return rows.map((a) => ({
        raw: a,
        id: a.id,
        severity: String(a.severity || "major").toLowerCase(),
        state: String(a.state || ""),
        asset: a.asset_id || "",
        message: a.message || a.rule_id || "",
        raised: a.raised_us == null ? null : a.raised_us / 1000,
        active: !!a.active,
        open: !a.closed && a.state !== "normal",
        needsAck: /^(unacknowledged|rtn_unacknowledged)$/.test(String(a.state || "")),
      }));
    },
    action(id, verb, body) { return api("/api/v1/alarms/" + encodeURIComponent(id) + "/" + verb, {method: "POST", json: body || {}}); },
  };

  async function common() {
    const logout = $("#logout");
    if (logout) logout.addEventListener("click", async () => {
      try { await api("/api/v1/auth/logout", {method: "POST"}); } finally { location.href = "/login"; }
    });
    api("/api/v1/auth/me").then((me) => { const w = $("#whoami"); if (w) w.textContent = me.username + " · " + me.role; }).catch(() => {});
    alarmsApi.list().then((rows) => {
      const n = rows.filter((a) => a.open).length;
      const b = $("#nav-alarm-count");
      if (b && n) { b.textContent = n; b.hidden = false; }
    }).catch(() => {});
  }

  /* ---------------------------------------------------------------- login */
  function loginPage() {
    $("#login-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const err = $("#login-error");
      err.hidden = true;
      try {
        await api("/api/v1/auth/login", {json: {username: $("#username").value, password: $("#password").value}});
        const next = new URLSearchParams(location.search).get("next") || "/";
        location.href = next.startsWith("/") && !next.startsWith("//") ? next : "/";
      } catch (ex) {
        err.textContent = t("login.failed") + ": " + ex.message;
        err.hidden = false;
      }
    });
  }

  /* ------------------------------------------------------------- overview */
  function overviewPage() {
    const cTypes = chart($("#c-types")), cRate = chart($("#c-rate")), cAlarms = chart($("#c-alarms"));
    const rate = [];
    cRate.setOption(Object.assign({}, chartTheme, {
      grid: {left: 50, right: 12, top: 14, bottom: 24},
      xAxis: {type: "time", min: (v) => Math.min(v.min, Date.now() - 300e3), axisLine: {lineStyle: {color: "#2a3441"}}},
      yAxis: {type: "value", splitLine: {lineStyle: {color: "#2a3441"}}},
      tooltip: {trigger: "axis"},
      series: [{type: "line", showSymbol: false, areaStyle: {opacity: 0.15}, data: rate, name: t("overview.points_s")}],
    }));
    let first = true;
    live("/api/v1/live/fleet/stream", "fleet", (d) => {
      const c = d.counts;
      $("#k-total").textContent = fmt(c.total);
      $("#k-types").textContent = Object.keys(c.by_type).length + " · " + t("nav.asset_types");
      $("#k-online").textContent = fmt(c.online);
      $("#k-online-pct").textContent = c.total ? Math.round((100 * c.online) / c.total) + "%" : "";
      $("#k-offline").textContent = fmt(c.offline);
      $("#k-never").textContent = c.never ? c.never + " " + t("status.never") : "";
      const ing = d.ingest || {};
      $("#k-rate").textContent = fmt(ing.points_per_s);
      $("#k-backlog").textContent = fmt(ing.backlog);
      $("#k-rejected").textContent = fmt(ing.rejected);
      if (ing.history) { rate.splice(0, rate.length, ...ing.history); cRate.setOption({series: [{data: rate}]}); }
      const types = Object.keys(c.by_type).sort();
      cTypes.setOption(Object.assign({}, chartTheme, {
        grid: {left: 100, right: 20, top: 24, bottom: 20},
        legend: {top: 0, textStyle: {color: "#c9d1d9"}},
        tooltip: {trigger: "axis", axisPointer: {type: "shadow"}},
        xAxis: {type: "value", splitLine: {lineStyle: {color: "#2a3441"}}},
        yAxis: {type: "category", data: types},
        series: [
          {name: t("status.online"), type: "bar", stack: "s", data: types.map((k) => c.by_type[k].online), itemStyle: {color: "#3fb950"}},
          {name: t("status.offline"), type: "bar", stack: "s", data: types.map((k) => c.by_type[k].total - c.by_type[k].online), itemStyle: {color: "#484f58"}},
        ],
      }));
      const silent = d.assets.filter((a) => !a.online).sort((a, b) => (a.last_seen || 0) - (b.last_seen || 0)).slice(0, 8);
      $("#silent").innerHTML = silent.length ? silent.map((a) => `<tr><td><a href="/assets/${encodeURIComponent(a.id)}">${esc(a.id)}</a></td><td>${esc(a.type)}</td><td>${esc(ago(a.last_seen))}</td></tr>`).join("") : `<tr><td colspan="3" class="muted">${esc(t("common.none"))}</td></tr>`;
      if (first) { first = false; ready(); }
    });
    alarmsApi.list().then((rows) => {
      const active = rows.filter((a) => a.open);
      $("#k-alarms").textContent = fmt(active.length);
      const by = {};
      active.forEach((a) => { by[a.severity] = (by[a.severity] || 0) + 1; });
      const colours = {critical: "#f85149", major: "#ff7b72", minor: "#d29922", warning: "#58a6ff"};
      cAlarms.setOption(Object.assign({}, chartTheme, {
        tooltip: {trigger: "item"},
        series: [{type: "pie", radius: ["45%", "72%"], label: {color: "#c9d1d9"},
          data: Object.keys(by).map((k) => ({name: t("severity." + k), value: by[k], itemStyle: {color: colours[k] || "#a371f7"}}))}],
        title: active.length ? undefined : {text: t("alarms.none"), left: "center", top: "middle", textStyle: {color: "#9aa7b4", fontSize: 14, fontWeight: 400}},
      }));
    }).catch(() => {
      $("#k-alarms").textContent = "–";
      $("#k-alarms-note").textContent = "";
      cAlarms.dispose();
      $("#c-alarms").innerHTML = `<p class="muted">${esc(t("alarms.unavailable"))}</p>`;
    });
  }

  /* ------------------------------------------------------------------ map */
  async function mapPage() {
    const map = L.map("map", {preferCanvas: true, zoomSnap: 0.5, minZoom: 3, maxZoom: 14, attributionControl: true}).setView([36.4, 118.5], 6.5);
    map.attributionControl.setPrefix("Leaflet · Apache ECharts 4.9 map data");
    const base = "/static/vendor/china-geojson-echarts-4.9.0/";
    const [provinces, cities] = await Promise.all([fetch(base + "china-provinces.geojson").then((r) => r.json()), fetch(base + "shandong-cities.geojson").then((r) => r.json())]);
    L.geoJSON(provinces, {style: {color: "#3b4c63", weight: 1, fillColor: "#17202b", fillOpacity: 1}, interactive: false}).addTo(map);
    L.geoJSON(cities, {style: {color: "#2f4a6d", weight: 0.8, dashArray: "3", fillColor: "#1a2635", fillOpacity: 1}, interactive: false,
      onEachFeature: (f, layer) => layer.bindTooltip(f.properties.name, {permanent: false, direction: "center", className: "city"})}).addTo(map);
    const cluster = L.markerClusterGroup({showCoverageOnHover: false, maxClusterRadius: 45, chunkedLoading: true});
    map.addLayer(cluster);
    const markers = new Map();
    const style = (a) => ({radius: 7, weight: 2, color: "#0d1117", fillOpacity: 0.95, fillColor: a.online ? "#3fb950" : "#8b949e"});
    let first = true;
    live("/api/v1/live/fleet/stream", "fleet", (d) => {
      let missing = 0;
      const add = [];
      d.assets.forEach((a) => {
        if (a.lat == null || a.lon == null) { missing++; return; }
        let m = markers.get(a.id);
        const html = `<b>${esc(a.name)}</b><br>${esc(a.id)} · ${esc(a.type)}<br>${esc(a.online ? t("status.online") : t("status.offline"))} · ${esc(ago(a.last_seen))}<br><a href="/assets/${encodeURIComponent(a.id)}">${esc(t("map.open"))} →</a>`;
        if (!m) {
          m = L.circleMarker([a.lat, a.lon], style(a)).bindPopup(html);
          m.on("keypress", () => { location.href = "/assets/" + encodeURIComponent(a.id); });
          markers.set(a.id, m); add.push(m);
        } else { m.setLatLng([a.lat, a.lon]); m.setStyle(style(a)); m.setPopupContent(html); }
      });
      if (add.length) cluster.addLayers(add);
      cluster.refreshClusters();
      $("#map-missing").textContent = missing ? missing + " " + t("map.no_position") : "";
      if (first) { first = false; ready(); }
    });
  }

  /* --------------------------------------------------------------- assets */
  async function assetsPage() {
    const [assets, fleet] = await Promise.all([apiAll("/api/v1/assets"), api("/api/v1/live/fleet")]);
    const state = new Map(fleet.assets.map((a) => [a.id, a]));
    const sel = $("#asset-type");
    [...new Set(assets.map((a) => a.type_name))].sort().forEach((n) => sel.insertAdjacentHTML("beforeend", `<option>${esc(n)}</option>`));
    const body = $("#assets-body");
    function draw() {
      const q = $("#asset-filter").value.trim().toLowerCase(), ty = sel.value;
      const rows = assets.filter((a) => (!ty || a.type_name === ty) && (!q || (a.id + " " + a.name + " " + JSON.stringify(a.attributes)).toLowerCase().includes(q)));
      $("#asset-count").textContent = rows.length + " " + t("assets.count");
      body.innerHTML = rows.slice(0, 1000).map((a) => {
        const s = state.get(a.id) || {};
        const st = s.last_seen == null ? "never" : s.online ? "online" : "offline";
        return `<tr tabindex="0" data-href="/assets/${encodeURIComponent(a.id)}"><td><a href="/assets/${encodeURIComponent(a.id)}">${esc(a.id)}</a></td><td>${esc(a.name)}</td><td>${esc(a.type_name)}</td><td><span class="pill ${st}">${esc(t("status." + st))}</span></td><td>${esc(ago(s.last_seen))}</td></tr>`;
      }).join("") || `<tr><td colspan="5" class="muted">${esc(t("common.none"))}</td></tr>`;
    }
    body.addEventListener("click", (e) => { const tr = e.target.closest("tr[data-href]"); if (tr && e.target.tagName !== "A") location.href = tr.dataset.href; });
    body.addEventListener("keydown", (e) => { const tr = e.target.closest("tr[data-href]"); if (tr && e.key === "Enter") location.href = tr.dataset.href; });
    $("#asset-filter").addEventListener("input", draw);
    sel.addEventListener("change", draw);
    draw();
    ready();
  }

  /* ---------------------------------------------------------------- asset */
  /* Points per series the charts can show: two per pixel column of one chart. */
  const chartPoints = () => Math.min(4000, 2 * Math.max(200, Math.round((window.innerWidth - 300) / (window.innerWidth > 1100 ? 2 : 1))));
  const RANGES = {"1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3, "365d": 365 * 86400e3};
  async function assetPage() {
    const id = IB.asset;
    const enc = encodeURIComponent(id);
    const asset = await early.asset;
    $("#asset-title").textContent = asset.name && asset.name !== asset.id ? asset.name + " (" + asset.id + ")" : asset.id;
    const type = await early.type.catch(() => ({measurements: []}));
    const units = {};
    (type.measurements || []).forEach((m) => { units[m.name] = m.unit || ""; });
    const attrs = Object.assign({[t("assets.type")]: asset.type_name}, asset.attributes);
    $("#attrs").innerHTML = Object.entries(attrs).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(typeof v === "object" ? JSON.stringify(v) : v)}</dd>`).join("");

    const tiles = {};
    live("/api/v1/live/latest/stream?asset=" + enc, "latest", (d) => {
      const box = $("#live-values");
      Object.keys(d.values).sort().forEach((name) => {
        const v = d.values[name];
        let el = tiles[name];
        if (!el) {
          el = document.createElement("div"); el.className = "lv"; el.dataset.measurement = name;
          el.innerHTML = `<span title="${esc(name)}">${esc(name)}</span><b></b><small>${esc(units[name] || "")}</small>`;
          box.appendChild(el); tiles[name] = el;
        }
        const txt = fmt(v.value);
        const b = el.querySelector("b");
        if (b.textContent !== txt) { b.textContent = txt; el.classList.remove("flash"); void el.offsetWidth; el.classList.add("flash"); }
        el.title = when(v.ts);
      });
      if (!Object.keys(d.values).length) box.innerHTML = `<span class="muted">${esc(t("common.none"))}</span>`;
    }, $("#latest-state"));

    const names = (type.measurements || []).filter((m) => (m.dtype || "float") !== "bool").map((m) => m.name).slice(0, 32);
    const holder = $("#charts");
    /* Chart instances are created with their first data: one layout pass each. */
    const charts = names.map((name) => {
      const el = document.createElement("div"); el.className = "chart"; el.setAttribute("role", "img"); el.setAttribute("aria-label", name);
      holder.appendChild(el);
      return {name, el, c: null};
    });
    const baseOption = (name, data, start, end) => Object.assign({}, chartTheme, {
      title: {text: name + (units[name] ? " (" + units[name] + ")" : ""), left: 8, top: 4, textStyle: {color: "#c9d1d9", fontSize: 12, fontWeight: 600}},
      grid: {left: 54, right: 14, top: 30, bottom: 26},
      tooltip: {trigger: "axis", valueFormatter: (v) => fmt(v)},
      xAxis: {type: "time", min: start, max: end, axisLine: {lineStyle: {color: "#2a3441"}}, axisLabel: {hideOverlap: true}},
      yAxis: {type: "value", scale: true, splitLine: {lineStyle: {color: "#2a3441"}}},
      dataZoom: [{type: "inside", filterMode: "none", zoomOnMouseWheel: true, moveOnMouseMove: true}],
      animation: false,
      series: [{type: "line", name, showSymbol: false, lineStyle: {width: 1.2}, data}],
    });

    const params = new URLSearchParams(location.search);
    let range = RANGES[params.get("range")] ? params.get("range") : "24h";
    let win = null, seq = 0, firstDraw = true, painted;
    const firstPaint = new Promise((resolve) => { painted = resolve; });
    async function load(start, end, pending) {
      const my = ++seq;
      win = [start, end];
      document.querySelectorAll("[data-range]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === range && end - start === RANGES[range])));
      if (!names.length) { ready(holder); ready(); painted(); return; }
      const q = new URLSearchParams({asset: id, start: String(Math.round(start)), end: String(Math.round(end)), max_points: String(chartPoints())});
      names.forEach((n) => q.append("measurement", n));
      const t0 = performance.now();
      const body = await (pending || api("/api/v1/telemetry/chart?" + q));
      if (my !== seq) return;
      const by = {};
      (body.series || []).forEach((s) => { by[s.measurement] = s.ts.map((x, i) => [x, s.value[i]]); });
      let total = 0;
      charts.forEach((ch) => {
        const data = by[ch.name] || [];
        total += data.length;
        if (!ch.c) {
          ch.c = chart(ch.el);
          ch.c.setOption(baseOption(ch.name, data, start, end));
          ch.c.group = "asset";
          ch.c.on("datazoom", () => zoomed(ch.c));
        } else ch.c.setOption({xAxis: {min: start, max: end}, dataZoom: [{start: 0, end: 100}], series: [{data}]});
      });
      echarts.connect("asset");
      $("#chart-info").textContent = fmt(total) + " " + t("asset.points") + " · " + Math.round(performance.now() - t0) + " ms";
      if (firstDraw) { firstDraw = false; ready(holder); ready(); painted(); }
    }
    let timer = null;
    function zoomed(c) {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const opt = c.getOption().dataZoom[0];
        const s = win[0] + ((win[1] - win[0]) * opt.start) / 100, e = win[0] + ((win[1] - win[0]) * opt.end) / 100;
        if (opt.start === 0 && opt.end === 100) return;
        if (e - s >= 1000) load(s, e);
      }, 250);
    }
    document.querySelectorAll("[data-range]").forEach((b) => b.addEventListener("click", () => {
      range = b.dataset.range; const now = Date.now(); load(now - RANGES[range], now);
    }));
    load(early.window[0], early.window[1], early.chart);

    /* Events and alarms load after the charts: they would compete with the chart query. */
    await firstPaint;
    api("/api/v1/telemetry/events?asset=" + enc + "&start=now-30d&limit=50").then((d) => {
      const rows = (d.events || []).slice().reverse();
      $("#events").innerHTML = rows.length ? rows.map((e) => `<tr><td>${esc(when(e.ts))}</td><td>${esc(e.kind)}</td><td>${esc(e.code)}</td><td class="wrap muted">${esc(typeof e.payload === "string" ? e.payload : JSON.stringify(e.payload || ""))}</td></tr>`).join("") : `<tr><td class="muted">${esc(t("common.none"))}</td></tr>`;
    }).catch((ex) => { $("#events").innerHTML = `<tr><td class="muted">${esc(t("common.error"))}: ${esc(ex.message)}</td></tr>`; });
    alarmsApi.list({asset_id: id}).then((rows) => {
      rows = rows.filter((a) => a.asset === id);
      $("#asset-alarms").innerHTML = rows.length ? `<table class="tbl">${rows.map((a) => `<tr><td><span class="pill ${esc(a.severity)}">${esc(t("severity." + a.severity))}</span></td><td>${esc(t("state." + a.state))}</td><td class="wrap">${esc(a.message)}</td><td>${esc(when(a.raised))}</td></tr>`).join("")}</table>` : esc(t("alarms.none"));
    }).catch(() => { $("#asset-alarms").textContent = t("alarms.unavailable"); });
    }

  /* ---------------------------------------------------------- asset types */
  async function assetTypesPage() {
    const types = await api("/api/v1/asset-types");
    $("#types").innerHTML = types.length ? types.map((ty) => `
      <section class="card"><h2 class="name">${esc(ty.name)} <span class="muted">${esc(t("types.version"))} ${esc(ty.version)}</span></h2>
      ${ty.description ? `<p class="muted">${esc(ty.description)}</p>` : ""}
      <table class="tbl"><thead><tr><th>${esc(t("types.measurements"))}</th><th>${esc(t("types.unit"))}</th><th>${esc(t("types.range"))}</th><th>${esc(t("types.description"))}</th></tr></thead><tbody>
      ${(ty.measurements || []).map((m) => `<tr><td>${esc(m.name)}</td><td>${esc(m.unit || "")}</td><td>${m.min != null || m.max != null ? esc(fmt(m.min)) + " … " + esc(fmt(m.max)) : ""}</td><td class="wrap muted">${esc(m.description || "")}</td></tr>`).join("")}
      </tbody></table>
      ${(ty.attributes || []).length ? `<p class="muted">${esc(t("types.attributes"))}: ${(ty.attributes || []).map((a) => esc(a.name || a)).join(", ")}</p>` : ""}
      </section>`).join("") : `<p class="muted">${esc(t("common.none"))}</p>`;
    ready();
  }

  /* -------------------------------------------------------------- devices */
  async function devicesPage() {
    let devices = await apiAll("/api/v1/devices");
    const body = $("#devices-body");
    function draw() {
      const q = $("#device-filter").value.trim().toLowerCase();
      const rows = devices.filter((d) => !q || (d.id + " " + d.name + " " + d.asset_ids.join(" ")).toLowerCase().includes(q));
      $("#device-count").textContent = String(rows.length);
      body.innerHTML = rows.slice(0, 1000).map((d) => `<tr><td>${esc(d.id)}</td><td>${esc(d.name)}</td><td>${d.asset_ids.map((a) => `<a href="/assets/${encodeURIComponent(a)}">${esc(a)}</a>`).join(", ")}</td><td><span class="pill ${d.revoked ? "offline" : "online"}">${esc(t(d.revoked ? "devices.revoked" : "devices.active"))}</span></td></tr>`).join("") || `<tr><td colspan="4" class="muted">${esc(t("common.none"))}</td></tr>`;
    }
    $("#device-filter").addEventListener("input", draw);
    draw();
    const dlg = $("#device-dialog");
    $("#new-device").addEventListener("click", async () => {
      $("#device-form").hidden = false; $("#device-created").hidden = true; $("#dev-error").hidden = true;
      const assets = await apiAll("/api/v1/assets");
      $("#dev-asset").innerHTML = assets.map((a) => `<option value="${esc(a.id)}">${esc(a.id)} · ${esc(a.type_name)}</option>`).join("");
      dlg.showModal();
      $("#dev-id").focus();
    });
    $("#dev-cancel").addEventListener("click", () => dlg.close());
    $("#dev-close").addEventListener("click", () => dlg.close());
    $("#device-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const d = await api("/api/v1/devices", {json: {id: $("#dev-id").value.trim(), name: $("#dev-name").value.trim(), asset_ids: [$("#dev-asset").value]}});
        $("#created-id").textContent = d.id;
        $("#created-cred").textContent = d.credential;
        $("#ex-mqtt").textContent = (d.examples || {}).mosquitto_pub || "";
        $("#ex-curl").textContent = (d.examples || {}).curl || "";
        $("#device-form").hidden = true; $("#device-created").hidden = false;
        $("#dev-close").focus();
        devices = await apiAll("/api/v1/devices"); draw();
      } catch (ex) {
        const err = $("#dev-error");
        err.textContent = ex.message; err.hidden = false;
      }
    });
    document.querySelectorAll("[data-copy]").forEach((b) => b.addEventListener("click", async () => {
      const text = $("#" + b.dataset.copy).textContent;
      try { await navigator.clipboard.writeText(text); } catch (_) {
        const r = document.createRange(); r.selectNodeContents($("#" + b.dataset.copy)); const s = getSelection(); s.removeAllRanges(); s.addRange(r); document.execCommand("copy");
      }
      b.textContent = t("common.copied"); setTimeout(() => { b.textContent = t("common.copy"); }, 1500);
    }));
    ready();
  }

  /* --------------------------------------------------------------- alarms */
  async function alarmsPage() {
    const body = $("#alarms-body");
    async function draw() {
      let rows;
      try { rows = await alarmsApi.list(); } catch (ex) {
        body.innerHTML = `<tr><td colspan="6" class="muted">${esc(ex.status === 404 ? t("alarms.unavailable") : t("common.error") + ": " + ex.message)}</td></tr>`;
        ready(); return;
      }
      body.innerHTML = rows.length ? rows.map((a) => `<tr data-alarm="${esc(a.id)}"><td><span class="pill ${esc(a.severity)}">${esc(t("severity." + a.severity))}</span></td><td>${esc(t("state." + a.state))}</td><td><a href="/assets/${encodeURIComponent(a.asset)}">${esc(a.asset)}</a></td><td class="wrap">${esc(a.message)}</td><td>${esc(when(a.raised))}</td>
        <td><button type="button" class="btn small" data-act="acknowledge" ${a.needsAck ? "" : "disabled"}>${esc(t("alarms.ack"))}</button> <button type="button" class="btn small" data-act="comment">${esc(t("alarms.comment"))}</button> <button type="button" class="btn small" data-act="shelve">${esc(t("alarms.shelve"))}</button></td></tr>`).join("")
        : `<tr><td colspan="6" class="muted">${esc(t("alarms.none"))}</td></tr>`;
      ready();
    }
    live("/api/v1/alarms/feed", "alarm", () => draw());
    body.addEventListener("click", async (e) => {
      const b = e.target.closest("button[data-act]"); if (!b) return;
      const id = b.closest("tr").dataset.alarm, act = b.dataset.act;
      try {
        if (act === "acknowledge") await alarmsApi.action(id, "acknowledge", {});
        if (act === "comment") { const text = prompt(t("alarms.comment_prompt")); if (!text) return; await alarmsApi.action(id, "comment", {comment: text}); }
        if (act === "shelve") await alarmsApi.action(id, "shelve", {duration_s: 3600});
      } catch (ex) { alert(ex.message); }
      draw();
    });
    draw();
  }

  /* --------------------------------------------------------------- ingest */
  async function ingestPage() {
    const c = chart($("#c-ingest"));
    const rate = [];
    c.setOption(Object.assign({}, chartTheme, {
      grid: {left: 56, right: 14, top: 14, bottom: 24}, tooltip: {trigger: "axis"},
      xAxis: {type: "time", min: (v) => Math.min(v.min, Date.now() - 300e3)}, yAxis: {type: "value", splitLine: {lineStyle: {color: "#2a3441"}}},
      series: [{type: "line", showSymbol: false, areaStyle: {opacity: 0.15}, data: rate}],
    }));
    /* Ready once both the first figures (SSE) and the dead letters are on the page. */
    let stats;
    const shown = new Promise((resolve) => { stats = resolve; });
    live("/api/v1/live/ingest/stream", "ingest", (s) => {
      $("#i-rate").textContent = fmt(s.points_per_s);
      $("#i-points").textContent = fmt(s.points);
      $("#i-messages").textContent = fmt(s.messages);
      $("#i-rejected").textContent = fmt(s.rejected);
      $("#i-backlog").textContent = fmt(s.backlog);
      $("#i-unacked").textContent = fmt(s.unacked);
      $("#i-commit").textContent = fmt(s.last_commit_ms);
      if (s.history) { rate.splice(0, rate.length, ...s.history); c.setOption({series: [{data: rate}]}); }
      stats();
    });
    const d = await api("/api/v1/ingest/dead-letters?limit=100");
    const rows = d.dead_letters || [];
    $("#dead-body").innerHTML = rows.length ? rows.map((x) => `<tr><td>${esc(when(Date.parse(x.received)))}</td><td>${esc(x.device_id)}</td><td>${esc(x.field)}</td><td class="wrap">${esc(x.reason)}</td><td class="wrap muted"><code>${esc(x.payload.slice(0, 160))}</code></td></tr>`).join("") : `<tr><td colspan="5" class="muted">${esc(t("ingest.no_dead"))}</td></tr>`;
    await shown;
    ready();
  }

  /* Start each page's first data request now, while the browser still parses ECharts. */
  const early = {};
  if (IB.page === "overview" || IB.page === "map") feed("/api/v1/live/fleet/stream", "fleet");
  if (IB.page === "asset") {
    const q = new URLSearchParams(location.search), r = q.get("range");
    /* ?end=<epoch ms> pins the window's end (benchmarks over a stored dataset). */
    const span = RANGES[r] || RANGES["24h"], end = Number(q.get("end")) || Date.now();
    early.window = [end - span, end];
    early.chart = api("/api/v1/telemetry/chart?" + new URLSearchParams({asset: IB.asset, start: String(end - span), end: String(end), max_points: String(chartPoints())}));
    early.chart.catch(() => {});
    early.asset = api("/api/v1/assets/" + encodeURIComponent(IB.asset));
    early.asset.catch(() => {});
    early.type = early.asset.then((a) => api("/api/v1/asset-types/" + encodeURIComponent(a.type_name)));
    early.type.catch(() => {});
  }

  const PAGES = {login: loginPage, overview: overviewPage, map: mapPage, assets: assetsPage, asset: assetPage, asset_types: assetTypesPage, devices: devicesPage, alarms: alarmsPage, ingest: ingestPage};
  document.addEventListener("DOMContentLoaded", () => {
    if (IB.page !== "login") common();
    const run = PAGES[IB.page];
    if (run) Promise.resolve(run()).catch((ex) => {
      if (ex && ex.status === 401) return;
      console.error(ex && ex.stack ? ex.stack : ex);
      const m = $("main"); if (m) m.insertAdjacentHTML("afterbegin", `<p class="error" role="alert">${esc(t("common.error"))}: ${esc(ex && ex.message)}</p>`);
      document.body.dataset.error = "1";
    });
  });
})();
