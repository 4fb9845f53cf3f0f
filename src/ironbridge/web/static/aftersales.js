/* ironbridge console: after-sales pages (work-order board, technicians and map, parts,
   maintenance due list, KPIs). Every figure comes from /api/v1 (session cookie); the
   board and the map follow the work orders over SSE (/api/v1/live/work-orders/stream). */
(function () {
  "use strict";
  const IB = window.IB || {};
  const M = IB.t || {};
  const t = (k) => (k in M ? M[k] : k);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const loc = IB.lang === "zh" ? "zh-CN" : "en-US";
  const nf = new Intl.NumberFormat(loc, {maximumFractionDigits: 1});
  const num = (v) => (v == null || Number.isNaN(v) ? "–" : nf.format(v));
  const pct = (v) => (v == null || Number.isNaN(v) ? "–" : nf.format(100 * v) + " %");
  const dtf = new Intl.DateTimeFormat(IB.lang === "zh" ? "zh-CN" : "en-GB", {dateStyle: "short", timeStyle: "short"});
  const dayf = new Intl.DateTimeFormat(IB.lang === "zh" ? "zh-CN" : "en-GB", {dateStyle: "medium"});
  const when = (us) => (us == null ? "–" : dtf.format(new Date(us / 1000)));
  const day = (us) => (us == null ? "–" : dayf.format(new Date(us / 1000)));
  const ready = () => requestAnimationFrame(() => { document.body.dataset.ready = "1"; });
  const theme = {backgroundColor: "transparent", textStyle: {color: "#c9d1d9", fontFamily: "system-ui, sans-serif"}};
  const STATES = ["new", "assigned", "en_route", "on_site", "in_progress", "on_hold", "completed"];
  const NOT_ARRIVED = new Set(["new", "assigned", "en_route"]);
  const PRIO_COLOR = {P0: "#f85149", P1: "#d29922", P2: "#4ea1ff", P3: "#8b949e"};

  async function api(path, opts) {
    const o = Object.assign({credentials: "same-origin", headers: {}}, opts || {});
    if (o.json !== undefined) { o.body = JSON.stringify(o.json); o.headers["Content-Type"] = "application/json"; o.method = o.method || "POST"; }
    const r = await fetch(path, o);
    if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("401"); }
    const text = await r.text();
    const body = text ? JSON.parse(text) : null;
    if (!r.ok) { const e = new Error((body && (body.detail || body.error)) || "HTTP " + r.status); e.status = r.status; e.body = body; throw e; }
    return body;
  }
  const chart = IB.chart; /* console.js: an ECharts instance that follows its box */
  /* The work-order feed; the header dot shows its state. */
  function boardFeed(onData) {
    const es = new EventSource("/api/v1/live/work-orders/stream", {withCredentials: true});
    const dot = (s) => { const d = $("#live-state"); if (d) d.dataset.state = s; };
    es.addEventListener("board", (e) => { dot("open"); onData(JSON.parse(e.data).orders); });
    es.onopen = () => dot("open");
    es.onerror = () => dot("error");
    window.addEventListener("beforeunload", () => es.close());
    return es;
  }
  function dialogs() {
    $$("dialog [data-close]").forEach((b) => b.addEventListener("click", () => b.closest("dialog").close()));
  }
  const stateName = (s) => t("aftersales.state_" + s);
  const dur = (s) => {
    const a = Math.abs(s), h = Math.floor(a / 3600), m = Math.floor((a % 3600) / 60);
    return (s < 0 ? "−" : "") + (h ? h + "h " + String(m).padStart(2, "0") + "m" : m + "m " + String(Math.floor(a % 60)).padStart(2, "0") + "s");
  };
  /* The running SLA clock of an order: response until on site, then repair until done. */
  function slaOf(o, nowUs) {
    if (o.state === "completed") return {label: t("aftersales.sla_done"), cls: "done", left: null};
    const resp = NOT_ARRIVED.has(o.state);
    const due = resp ? o.response_due_us : o.repair_due_us;
    const left = (due - nowUs) / 1e6;
    const allowed = (due - o.created_us) / 1e6;
    const cls = left < 0 ? "breached" : allowed > 0 && left < 0.25 * allowed ? "warning" : "ok";
    return {label: (resp ? t("aftersales.response") : t("aftersales.repair")) + " " + dur(left), cls, left};
  }

  /* ----------------------------------------------------------------- board */
  async function boardPage() {
    dialogs();
    const techs = await api("/api/v1/technicians");
    const techName = Object.fromEntries(techs.map((x) => [x.id, x.name]));
    $("#wo-tech").innerHTML = `<option value="">–</option>` + techs.filter((x) => x.active).map((x) => `<option value="${esc(x.id)}">${esc(x.name)} (${esc(x.skills.join(", "))})</option>`).join("");
    let orders = [];
    let current = null;
    const f = {priority: $("#b-priority"), source: $("#b-source"), search: $("#b-search")};
    function visible() {
      const q = f.search.value.trim().toLowerCase();
      return orders.filter((o) => (!f.priority.value || o.priority === f.priority.value) && (!f.source.value || o.source === f.source.value)
        && (!q || (o.title + " " + o.asset_id + " #" + o.id + " " + (o.technician_id || "")).toLowerCase().includes(q)));
    }
    function render() {
      const rows = visible();
      const now = Date.now() * 1000;
      STATES.forEach((s) => {
        const list = rows.filter((o) => o.state === s).sort((a, b) => a.priority.localeCompare(b.priority) || a.id - b.id);
        $(`[data-n="${s}"]`).textContent = list.length;
        $(`[data-cards="${s}"]`).innerHTML = list.slice(0, 200).map((o) => {
          const sla = slaOf(o, now);
          return `<button type="button" class="wo-card p-${esc(o.priority)}" data-wo="${o.id}" data-state="${esc(o.state)}">
            <span class="wo-top"><b>#${o.id}</b><span class="prio ${esc(o.priority)}">${esc(o.priority)}</span><span class="src">${esc(t("aftersales.source_" + o.source))}</span></span>
            <span class="wo-title">${esc(o.title)}</span>
            <span class="wo-meta">${esc(o.asset_id)}${o.technician_id ? " · " + esc(techName[o.technician_id] || o.technician_id) : ""}</span>
            <span class="sla ${sla.cls}" data-sla="${o.id}">${esc(sla.label)}</span></button>`;
        }).join("") || `<p class="muted empty">${esc(t("aftersales.empty"))}</p>`;
      });
      $("#b-count").textContent = rows.length + " " + t("aftersales.orders_on_board");
    }
    /* SLA timers tick in the page; the orders themselves come over SSE. */
    setInterval(() => {
      const now = Date.now() * 1000;
      const by = new Map(orders.map((o) => [o.id, o]));
      $$("[data-sla]").forEach((el) => {
        const o = by.get(Number(el.dataset.sla));
        if (!o) return;
        const sla = slaOf(o, now);
        el.textContent = sla.label; el.className = "sla " + sla.cls;
      });
    }, 1000);
    Object.values(f).forEach((el) => el.addEventListener("input", render));
    let first = true;
    boardFeed((rows) => {
      orders = rows; render();
      if (current && $("#wo-dialog").open) {
        const o = rows.find((x) => x.id === current.id);
        if (o && o.state !== current.state) openOrder(current.id);
      }
      if (first) { first = false; ready(); }
    });
    $("#board").addEventListener("click", (e) => {
      const card = e.target.closest("[data-wo]");
      if (card) openOrder(Number(card.dataset.wo));
    });

    async function openOrder(id) {
      const o = await api("/api/v1/work-orders/" + id);
      current = o;
      const d = $("#wo-dialog");
      d.dataset.wo = String(id);
      d.dataset.state = o.state;
      $("#wo-title").innerHTML = `#${o.id} <span class="prio ${esc(o.priority)}">${esc(o.priority)}</span> ${esc(o.title)}`;
      const attrs = [
        [t("aftersales.state"), stateName(o.state)],
        [t("aftersales.asset"), `<a href="/assets/${encodeURIComponent(o.asset_id)}">${esc(o.asset_id)}</a>`, true],
        [t("aftersales.source"), t("aftersales.source_" + o.source) + (o.source_ref ? " · " + o.source_ref : "")],
        [t("aftersales.technician"), o.technician_id ? (techName[o.technician_id] || o.technician_id) : "–"],
        [t("aftersales.station"), o.station_id || "–"],
        [t("aftersales.skill"), o.skill || "–"],
        [t("aftersales.created"), when(o.created_us)],
        [t("aftersales.arrived"), when(o.arrived_us)],
        [t("aftersales.completed_at"), when(o.completed_us)],
        [t("aftersales.visits"), String(o.visits)],
      ];
      $("#wo-attrs").innerHTML = attrs.map(([k, v, raw]) => `<dt>${esc(k)}</dt><dd>${raw ? v : esc(v)}</dd>`).join("");
      $("#wo-sla").innerHTML = ["response", "repair"].map((k) => {
        const c = o.sla[k];
        return `<span class="sla-box ${esc(c.level)}"><b>${esc(t("aftersales." + k))}</b> ${esc(t("aftersales.level_" + c.level))} · ${esc(t("aftersales.due"))} ${esc(when(c.due_us))} · ${esc(dur(c.remaining_s))}</span>`;
      }).join("");
      $("#wo-tech").value = o.technician_id || "";
      $("#wo-moves").innerHTML = o.allowed.length ? o.allowed.map((s) => `<button type="button" class="btn ${s === "cancelled" ? "ghost" : ""}" data-to="${esc(s)}">→ ${esc(stateName(s))}</button>`).join("") : `<span class="muted">${esc(t("aftersales.final"))}</span>`;
      $("#wo-error").hidden = true;
      $("#wo-lines").innerHTML = o.lines.length ? o.lines.map((l) => `<tr><td>${esc(when(l.ts_us))}</td><td>${esc(t("aftersales.line_" + l.kind))}</td><td class="wrap">${esc(l.kind === "labour" ? num(l.hours) + " h" : l.kind === "part" ? l.part_no + " × " + num(l.qty) + (l.filled_from_stock ? "" : " · " + t("aftersales.not_in_stock")) : l.text || JSON.stringify(l.meta || {}))}</td></tr>`).join("") : `<tr><td colspan="3" class="muted">${esc(t("aftersales.none"))}</td></tr>`;
      $("#wo-events").innerHTML = o.events.map((e) => {
        const x = e.data || {};
        const what = e.kind === "transition" ? stateName(x.from) + " → " + stateName(x.to) + (x.technician_id ? " · " + (techName[x.technician_id] || x.technician_id) : "") + (x.note ? " · " + x.note : "")
          : e.kind.startsWith("sla_") ? t("aftersales." + x.clock) + " " + t("aftersales.level_" + x.level) : x.source ? t("aftersales.source_" + x.source) : "";
        return `<tr><td>${esc(when(e.ts_us))}</td><td>${esc(t("aftersales.event_" + e.kind))}</td><td class="wrap">${esc(what)}</td><td>${esc(e.actor || "–")}</td></tr>`;
      }).join("");
      if (!d.open) d.showModal();
    }
    $("#wo-moves").addEventListener("click", async (e) => {
      const b = e.target.closest("[data-to]");
      if (!b || !current) return;
      const body = {to: b.dataset.to, note: $("#wo-note").value};
      if ($("#wo-tech").value) body.technician_id = $("#wo-tech").value;
      try {
        await api(`/api/v1/work-orders/${current.id}/transition`, {json: body});
        $("#wo-note").value = "";
        await openOrder(current.id);
      } catch (ex) { const err = $("#wo-error"); err.textContent = ex.message; err.hidden = false; }
    });
    $("#wo-line").addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!current) return;
      const kind = $("#wo-line-kind").value, text = $("#wo-line-text").value.trim(), qty = Number($("#wo-line-qty").value || 1);
      const body = kind === "labour" ? {hours: qty} : kind === "parts" ? {part_no: text, qty} : {text};
      try {
        await api(`/api/v1/work-orders/${current.id}/${kind}`, {json: body});
        $("#wo-line-text").value = "";
        await openOrder(current.id);
      } catch (ex) { const err = $("#wo-error"); err.textContent = ex.message; err.hidden = false; }
    });

    $("#b-new").addEventListener("click", async () => {
      $("#new-dialog").showModal();
      if (!$("#n-assets").children.length) {
        const assets = await api("/api/v1/assets?limit=5000");
        $("#n-assets").innerHTML = assets.map((a) => `<option value="${esc(a.id)}">${esc(a.name)}</option>`).join("");
      }
    });
    $("#new-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = {asset_id: $("#n-asset").value.trim(), title: $("#n-title").value.trim(), priority: $("#n-priority").value, duration_min: Number($("#n-duration").value || 90)};
      if ($("#n-skill").value) body.skill = $("#n-skill").value;
      try {
        const wo = await api("/api/v1/work-orders", {json: body});
        $("#new-dialog").close();
        openOrder(wo.id);
      } catch (ex) { const err = $("#n-error"); err.textContent = ex.message; err.hidden = false; }
    });

    let plan = null;
    $("#b-dispatch").addEventListener("click", async () => {
      const b = $("#b-dispatch");
      b.disabled = true; b.textContent = t("aftersales.planning");
      try {
        plan = await api("/api/v1/dispatch/propose?time_limit_s=3", {method: "POST"});
        const rows = [];
        plan.routes.forEach((r) => r.stops.forEach((s) => rows.push(`<tr><td>#${s.job_id}</td><td>${esc(techName[r.technician_id] || r.technician_id)}</td><td>+${num(s.arrive_min)} min${s.late ? ` <span class="sla breached">${esc(t("aftersales.late"))}</span>` : ""}</td><td class="wrap">${esc(s.reason)}</td></tr>`)));
        Object.entries(plan.unassigned).forEach(([id, why]) => rows.push(`<tr><td>#${esc(id)}</td><td class="muted">–</td><td></td><td class="wrap muted">${esc(why)}</td></tr>`));
        $("#plan-body").innerHTML = rows.join("") || `<tr><td colspan="4" class="muted">${esc(t("aftersales.nothing_to_plan"))}</td></tr>`;
        $("#plan-summary").textContent = `${plan.method} · ${t("aftersales.travel")} ${num(plan.travel_min)} min · ${t("aftersales.breaches")} ${plan.breaches} · ${num(plan.solve_s)} s`;
        $("#plan-dialog").showModal();
      } finally { b.disabled = false; b.textContent = t("aftersales.propose_dispatch"); }
    });
    $("#plan-accept").addEventListener("click", async () => {
      if (!plan) return;
      const assignment = {};
      plan.routes.forEach((r) => r.stops.forEach((s) => { assignment[s.job_id] = r.technician_id; }));
      await api("/api/v1/dispatch/accept", {json: {assignment}});
      $("#plan-dialog").close();
    });
  }

  /* ------------------------------------------------------- technicians + map */
  async function techniciansPage() {
    const [stations, techs] = await Promise.all([api("/api/v1/service-stations"), api("/api/v1/technicians")]);
    const sel = $("#t-station");
    stations.forEach((s) => sel.insertAdjacentHTML("beforeend", `<option value="${esc(s.id)}">${esc(s.name)}</option>`));
    const map = L.map("t-map", {preferCanvas: true, zoomSnap: 0.5, minZoom: 3, maxZoom: 14}).setView([36.4, 118.5], 6.5);
    map.attributionControl.setPrefix("Leaflet · Apache ECharts 4.9 map data");
    const base = "/static/vendor/china-geojson-echarts-4.9.0/";
    const [provinces, cities] = await Promise.all([fetch(base + "china-provinces.geojson").then((r) => r.json()), fetch(base + "shandong-cities.geojson").then((r) => r.json())]);
    L.geoJSON(provinces, {style: {color: "#3b4c63", weight: 1, fillColor: "#17202b", fillOpacity: 1}, interactive: false}).addTo(map);
    L.geoJSON(cities, {style: {color: "#2f4a6d", weight: 0.8, dashArray: "3", fillColor: "#1a2635", fillOpacity: 1}, interactive: false}).addTo(map);
    const stationLayer = L.layerGroup().addTo(map), live = L.layerGroup().addTo(map);
    stations.forEach((s) => L.circleMarker([s.lat, s.lon], {radius: 9, weight: 2, color: "#e6edf3", fillColor: s.is_warehouse ? "#a371f7" : "#39c5cf", fillOpacity: 0.9})
      .bindTooltip(esc(s.name)).addTo(stationLayer));
    if (stations.length) map.fitBounds(L.latLngBounds(stations.map((s) => [s.lat, s.lon])).pad(0.3), {maxZoom: 9});
    const home = map.getBounds();
    let orders = [];
    const ORDER = {in_progress: 0, on_site: 1, en_route: 2, assigned: 3, on_hold: 4};
    function render() {
      const station = sel.value;
      const mine = {};
      orders.filter((o) => o.technician_id && o.state !== "completed").forEach((o) => (mine[o.technician_id] = mine[o.technician_id] || []).push(o));
      Object.values(mine).forEach((l) => l.sort((a, b) => (ORDER[a.state] ?? 9) - (ORDER[b.state] ?? 9) || a.id - b.id));
      const shown = techs.filter((x) => !station || x.station_id === station);
      $("#t-body").innerHTML = shown.map((x) => {
        const list = mine[x.id] || [];
        const sched = list.length ? list.map((o) => `<a href="/service#${o.id}" class="chip ${esc(o.state)}" title="${esc(o.title)}">#${o.id} ${esc(o.priority)} · ${esc(stateName(o.state))}</a>`).join(" ") : `<span class="muted">${esc(t("aftersales.tech_idle"))}</span>`;
        return `<tr data-tech="${esc(x.id)}"><td><b>${esc(x.name)}</b><br><small class="muted">${esc(x.station_id)}</small></td><td>${num(x.shift_start_h)}–${num(x.shift_end_h)} h</td><td class="skills">${x.skills.map((k) => `<span class="chip">${esc(k)}</span>`).join(" ")}</td><td class="sched">${sched}</td></tr>`;
      }).join("");
      const busy = shown.filter((x) => (mine[x.id] || []).length).length;
      $("#t-count").textContent = `${shown.length} ${t("aftersales.technicians")} · ${busy} ${t("aftersales.tech_busy")} · ${orders.filter((o) => o.state !== "completed").length} ${t("aftersales.open_orders")}`;
      live.clearLayers();
      orders.filter((o) => o.lat != null && o.state !== "completed").forEach((o) => {
        L.circleMarker([o.lat, o.lon], {radius: 5, weight: 1, color: "#0d1117", fillColor: PRIO_COLOR[o.priority], fillOpacity: 0.95})
          .bindPopup(`<b>#${o.id} ${esc(o.priority)}</b> ${esc(o.title)}<br>${esc(o.asset_id)} · ${esc(stateName(o.state))}`).addTo(live);
      });
      shown.forEach((x) => {
        const list = mine[x.id] || [];
        const at = list.find((o) => (o.state === "on_site" || o.state === "in_progress") && o.lat != null);
        const next = list.find((o) => (o.state === "en_route" || o.state === "assigned") && o.lat != null);
        if (next) L.polyline([[x.lat, x.lon], [next.lat, next.lon]], {color: next.state === "en_route" ? "#3fb950" : "#8b949e", weight: 2, dashArray: next.state === "en_route" ? null : "4"}).addTo(live);
        const pos = at ? [at.lat, at.lon] : [x.lat, x.lon];
        L.circleMarker(pos, {radius: 6, weight: 2, color: "#0d1117", fillColor: list.length ? "#3fb950" : "#484f58", fillOpacity: 1})
          .bindTooltip(esc(x.name) + (list.length ? " · #" + list[0].id + " " + esc(stateName(list[0].state)) : "")).addTo(live);
      });
    }
    sel.addEventListener("change", () => {
      render();
      const s = stations.find((x) => x.id === sel.value);
      if (s) map.setView([s.lat, s.lon], 9); else map.fitBounds(home);
    });
    let first = true;
    boardFeed((rows) => { orders = rows; render(); if (first) { first = false; ready(); } });
  }

  /* ------------------------------------------------------------------ parts */
  async function partsPage() {
    const [stations, stock] = await Promise.all([api("/api/v1/service-stations"), api("/api/v1/parts/stock")]);
    const name = Object.fromEntries(stations.map((s) => [s.id, s.name]));
    stations.forEach((s) => $("#p-station").insertAdjacentHTML("beforeend", `<option value="${esc(s.id)}">${esc(s.name)}</option>`));
    [...new Set(stock.map((r) => r.part_no))].sort().forEach((p) => $("#p-part").insertAdjacentHTML("beforeend", `<option>${esc(p)}</option>`));
    const low = (r) => r.reorder_point > 0 && r.available <= r.reorder_point;
    function renderStock() {
      const st = $("#p-station").value, part = $("#p-part").value, onlyLow = $("#p-low").checked;
      const rows = stock.filter((r) => (!st || r.station_id === st) && (!part || r.part_no === part) && (!onlyLow || low(r)));
      $("#p-stock").innerHTML = rows.length ? rows.map((r) => `<tr class="${low(r) ? "low" : ""}"><td>${esc(name[r.station_id] || r.station_id)}</td><td>${esc(r.part_no)}</td><td class="num">${num(r.on_hand)}</td><td class="num">${num(r.available)}</td><td class="num">${num(r.on_hand - r.available)}</td><td class="num">${num(r.reorder_point)}</td><td class="num">${num(r.reorder_qty)}</td><td>${low(r) ? `<span class="sla warning">${esc(t("aftersales.reorder"))} ${num(Math.max(r.reorder_qty, r.reorder_point - r.available))}</span>` : ""}</td></tr>`).join("") : `<tr><td colspan="8" class="muted">${esc(t("aftersales.none"))}</td></tr>`;
      $("#pk-lines").textContent = num(rows.length);
      $("#pk-stations").textContent = new Set(rows.map((r) => r.station_id)).size + " " + t("aftersales.stations");
      $("#pk-low").textContent = num(rows.filter(low).length);
      $("#pk-reserved").textContent = num(rows.reduce((s, r) => s + r.on_hand - r.available, 0));
    }
    ["#p-station", "#p-part", "#p-low"].forEach((s) => $(s).addEventListener("input", renderStock));
    renderStock();
    const c = chart($("#p-chart"));
    async function forecast() {
      const h = $("#p-horizon").value;
      $("#p-forecast").innerHTML = `<tr><td colspan="6" class="muted">${esc(t("aftersales.computing"))}</td></tr>`;
      const rows = (await api("/api/v1/parts/forecast?horizon_days=" + h)).sort((a, b) => b.total - a.total);
      $("#p-forecast").innerHTML = rows.length ? rows.map((r) => `<tr><td>${esc(r.part_no)}</td><td class="num">${num(r.planned)}</td><td class="num">${num(r.unplanned)}</td><td class="num"><b>${num(r.total)}</b></td><td>${esc(r.method)}</td><td>${esc(r.demand_class)}</td></tr>`).join("") : `<tr><td colspan="6" class="muted">${esc(t("aftersales.none"))}</td></tr>`;
      $("#pk-forecast").textContent = num(rows.reduce((s, r) => s + r.total, 0));
      $("#pk-horizon").textContent = t("aftersales.units_in") + " " + h + " d";
      const top = rows.slice(0, 12).reverse();
      c.setOption(Object.assign({}, theme, {
        grid: {left: 120, right: 16, top: 28, bottom: 24}, legend: {textStyle: {color: "#c9d1d9"}}, tooltip: {trigger: "axis"},
        xAxis: {type: "value", splitLine: {lineStyle: {color: "#2a3441"}}}, yAxis: {type: "category", data: top.map((r) => r.part_no)},
        series: [{name: t("aftersales.planned"), type: "bar", stack: "d", data: top.map((r) => +r.planned.toFixed(2)), itemStyle: {color: "#4ea1ff"}},
          {name: t("aftersales.unplanned"), type: "bar", stack: "d", data: top.map((r) => +r.unplanned.toFixed(2)), itemStyle: {color: "#d29922"}}],
      }), true);
    }
    $("#p-horizon").addEventListener("change", forecast);
    await forecast();
    ready();
  }

  /* ------------------------------------------------------------ due list */
  async function duePage() {
    const plans = await api("/api/v1/maintenance-plans");
    plans.forEach((p) => $("#d-type").insertAdjacentHTML("beforeend", `<option>${esc(p.asset_type)}</option>`));
    let rows = [];
    const RANK = {overdue: 0, due: 1, due_soon: 2, ok: 3};
    const pill = (s) => `<span class="due ${esc(s)}">${esc(t("aftersales.due_" + s))}</span>`;
    function render() {
      const s = $("#d-status").value;
      const shown = rows.filter((r) => !s || r.status === s);
      Object.keys(RANK).forEach((k) => { $("#dk-" + k).textContent = num(rows.filter((r) => r.status === k).length); });
      $("#d-count").textContent = shown.length + " " + t("aftersales.machines");
      $("#d-body").innerHTML = shown.length ? shown.slice(0, 1000).map((r) => `<tr data-asset="${esc(r.asset_id)}"><td>${esc(r.asset_id)}</td><td>${esc(r.interval)}</td><td>${pill(r.status)}</td><td>${esc(t("aftersales.driver_" + r.driver))}</td><td>${esc(day(r.forecast_ts_us))}</td></tr>`).join("") : `<tr><td colspan="5" class="muted">${esc(t("aftersales.none"))}</td></tr>`;
    }
    async function load() {
      $("#d-body").innerHTML = `<tr><td colspan="5" class="muted">${esc(t("aftersales.computing"))}</td></tr>`;
      const q = $("#d-type").value ? "&type=" + encodeURIComponent($("#d-type").value) : "";
      rows = (await api("/api/v1/maintenance-due?limit=2000" + q)).sort((a, b) => RANK[a.status] - RANK[b.status] || (a.forecast_ts_us || 9e18) - (b.forecast_ts_us || 9e18));
      render();
    }
    async function detail(id) {
      const d = await api("/api/v1/assets/" + encodeURIComponent(id) + "/maintenance-due");
      const u = d.usage;
      $("#d-asset-title").innerHTML = `<a href="/assets/${encodeURIComponent(id)}">${esc(id)}</a>`;
      $("#d-usage").innerHTML = [[t("aftersales.engine_hours"), num(u.hours) + " h"], [t("aftersales.odometer"), u.km == null ? "–" : num(u.km) + " km"], [t("aftersales.rate"), num(u.hours_per_day) + " h/d" + (u.km == null ? "" : " · " + num(u.km_per_day) + " km/d")]]
        .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
      $("#d-items").innerHTML = d.due.map((i) => `<tr><td>${esc(i.interval)}</td><td>${pill(i.status)}</td><td class="num">${num(i.remaining_hours)}</td><td class="num">${num(i.remaining_km)}</td><td class="num">${num(i.remaining_days)}</td><td>${esc(i.due_hours != null ? num(i.due_hours) + " h" : "")}${i.due_km != null ? " · " + esc(num(i.due_km)) + " km" : ""}${i.due_ts_us != null ? " · " + esc(day(i.due_ts_us)) : ""}</td><td>${esc(day(i.forecast_ts_us))}</td></tr>`).join("");
    }
    $("#d-type").addEventListener("change", load);
    $("#d-status").addEventListener("change", render);
    $("#d-body").addEventListener("click", (e) => { const tr = e.target.closest("[data-asset]"); if (tr) detail(tr.dataset.asset); });
    await load();
    if (rows.length) await detail(rows[0].asset_id);
    ready();
  }

  /* ------------------------------------------------------------------- KPIs */
  async function kpisPage() {
    const c = chart($("#k-chart"));
    const [all] = await api("/api/v1/service-kpis?by=all");
    if (all) {
      $("#k-mttr").textContent = num(all.mttr_h);
      $("#k-mtbf").textContent = num(all.mtbf_h);
      $("#k-ftf").textContent = pct(all.first_time_fix);
      $("#k-completed").textContent = num(all.completed) + " " + t("aftersales.completed_n");
      $("#k-sla").textContent = pct(all.sla_attainment);
      $("#k-sla-split").textContent = t("aftersales.response") + " " + pct(all.response_attainment) + " · " + t("aftersales.repair") + " " + pct(all.repair_attainment);
      $("#k-fill").textContent = pct(all.fill_rate);
      $("#k-orders").textContent = num(all.work_orders);
    }
    async function load() {
      const rows = (await api("/api/v1/service-kpis?by=" + $("#k-by").value)).sort((a, b) => b.work_orders - a.work_orders);
      $("#k-body").innerHTML = rows.length ? rows.map((k) => `<tr><td>${esc(k.group)}</td><td class="num">${num(k.work_orders)}</td><td class="num">${num(k.completed)}</td><td class="num">${num(k.mttr_h)}</td><td class="num">${num(k.mtbf_h)}</td><td class="num">${pct(k.first_time_fix)}</td><td class="num">${pct(k.sla_attainment)}</td><td class="num">${pct(k.response_attainment)}</td><td class="num">${pct(k.repair_attainment)}</td><td class="num">${pct(k.fill_rate)}</td></tr>`).join("") : `<tr><td colspan="10" class="muted">${esc(t("aftersales.none"))}</td></tr>`;
      const top = rows.slice(0, 20);
      const p = (v) => (v == null ? null : +(100 * v).toFixed(1));
      c.setOption(Object.assign({}, theme, {
        grid: {left: 48, right: 48, top: 36, bottom: 60}, legend: {textStyle: {color: "#c9d1d9"}}, tooltip: {trigger: "axis"},
        xAxis: {type: "category", data: top.map((k) => k.group), axisLabel: {rotate: 30}},
        yAxis: [{type: "value", max: 100, name: "%", splitLine: {lineStyle: {color: "#2a3441"}}}, {type: "value", name: "h", splitLine: {show: false}}],
        series: [{name: t("aftersales.sla_attainment"), type: "bar", data: top.map((k) => p(k.sla_attainment)), itemStyle: {color: "#3fb950"}},
          {name: t("aftersales.ftf"), type: "bar", data: top.map((k) => p(k.first_time_fix)), itemStyle: {color: "#4ea1ff"}},
          {name: t("aftersales.fill_rate"), type: "bar", data: top.map((k) => p(k.fill_rate)), itemStyle: {color: "#d29922"}},
          {name: t("aftersales.mttr"), type: "line", yAxisIndex: 1, data: top.map((k) => k.mttr_h), itemStyle: {color: "#f85149"}}],
      }), true);
    }
    $("#k-by").addEventListener("change", load);
    await load();
    ready();
  }

  const PAGES = {board: boardPage, technicians: techniciansPage, parts: partsPage, due: duePage, kpis: kpisPage};
  document.addEventListener("DOMContentLoaded", () => {
    const tab = $("#svc") && $("#svc").dataset.tab;
    const run = PAGES[tab];
    if (run) Promise.resolve(run()).catch((ex) => {
      if (ex && ex.status === 401) return;
      console.error(ex && ex.stack ? ex.stack : ex);
      const m = $("main"); if (m) m.insertAdjacentHTML("afterbegin", `<p class="error" role="alert">${esc(t("common.error"))}: ${esc(ex && ex.message)}</p>`);
      document.body.dataset.error = "1";
    });
  });
})();
