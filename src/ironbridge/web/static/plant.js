/* ironbridge console: plant pages -- line view (live over SSE), OEE dashboard and SPC
   chart. Every figure comes from /api/v1/plant and /api/v1/rules (session cookie). */
(function () {
  "use strict";
  const IB = window.IB || {};
  const M = IB.t || {};
  const t = (k) => (k in M ? M[k] : k);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  const loc = IB.lang === "zh" ? "zh-CN" : "en-GB";
  const nf = new Intl.NumberFormat(loc, {maximumFractionDigits: 1});
  const nf0 = new Intl.NumberFormat(loc, {maximumFractionDigits: 0});
  const nf4 = new Intl.NumberFormat(loc, {maximumSignificantDigits: 5});
  const num = (v) => (v == null || Number.isNaN(v) ? "–" : nf.format(v));
  const int = (v) => (v == null || Number.isNaN(v) ? "–" : nf0.format(v));
  const sig = (v) => (v == null || Number.isNaN(v) ? "–" : nf4.format(v));
  const pct = (v) => (v == null || Number.isNaN(v) ? "–" : nf.format(100 * v) + " %");
  const dtf = new Intl.DateTimeFormat(loc, {dateStyle: "short", timeStyle: "short"});
  const tf = new Intl.DateTimeFormat(loc, {timeStyle: "medium"});
  const when = (us) => (us == null ? "–" : dtf.format(new Date(us / 1000)));
  const ready = () => { document.body.dataset.ready = "1"; };
  const dot = (state) => { const d = $("#live-state"); if (d) d.dataset.state = state; };
  const STATE_COLORS = {running: "#3fb950", idle: "#d29922", down: "#f85149", setup: "#58a6ff", planned_stop: "#a371f7", unknown: "#8b949e"};
  const theme = {backgroundColor: "transparent", textStyle: {color: "#c9d1d9", fontFamily: "system-ui, sans-serif"}};
  const axis = {axisLine: {lineStyle: {color: "#2a3441"}}, splitLine: {lineStyle: {color: "#1c2430"}}, axisLabel: {color: "#9aa7b4"}};
  const SPANS = {"1h": 3600e3, "8h": 8 * 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "28d": 28 * 86400e3};

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({credentials: "same-origin"}, opts || {}));
    if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("401"); }
    const text = await r.text();
    const body = text ? JSON.parse(text) : null;
    if (!r.ok) { const e = new Error((body && (body.detail || body.error)) || "HTTP " + r.status); e.status = r.status; e.body = body; throw e; }
    return body;
  }
  const qs = (o) => new URLSearchParams(Object.entries(o).filter(([, v]) => v !== "" && v != null)).toString();
  const chart = IB.chart; /* console.js: an ECharts instance that follows its box */
  const params = () => new URLSearchParams(location.search);
  function remember(o) {
    const q = params();
    Object.entries(o).forEach(([k, v]) => (v ? q.set(k, v) : q.delete(k)));
    history.replaceState(null, "", location.pathname + (q.toString() ? "?" + q : ""));
  }
  async function sitePicker(sel) {
    const sites = await api("/api/v1/plant/sites");
    const want = params().get("site");
    sel.innerHTML = sites.map((s) => `<option value="${esc(s.id)}">${esc(s.definition.name || s.id)}</option>`).join("");
    if (want && sites.some((s) => s.id === want)) sel.value = want;
    return sites;
  }
  const stateName = (s) => t("plant.state_" + s);

  /* ------------------------------------------------------------------ line view */
  async function linePage() {
    const sel = $("#f-site");
    const sites = await sitePicker(sel);
    if (!sites.length) { $("#lines").innerHTML = `<p class="muted">${esc(t("plant.no_sites"))}</p>`; ready(); return; }
    let es = null;
    function draw(v) {
      $("#plant-shift").textContent = (v.shift ? t("plant.shift") + " " + v.shift + " · " : "") + t("plant.since") + " " + when(v.shift_start_us);
      $("#lines").innerHTML = v.lines.map((ln) => `
        <section class="card line-card" data-line="${esc(ln.id)}">
          <h2><span>${esc(ln.name)}</span>
            <span class="line-kpis">
              <span>OEE <b data-k="oee">${pct(ln.oee)}</b></span>
              <span>${esc(t("plant.availability"))} <b>${pct(ln.availability)}</b></span>
              <span>${esc(t("plant.effectiveness"))} <b>${pct(ln.effectiveness)}</b></span>
              <span>${esc(t("plant.quality"))} <b>${pct(ln.quality)}</b></span>
              <span>${esc(t("plant.good"))} <b data-k="good">${int(ln.good)}</b></span>
              <span>${esc(t("plant.bottleneck"))} <b>${esc(ln.bottleneck)}</b></span>
            </span></h2>
          <div class="stations">${ln.stations.map((s) => `
            <a class="station" href="/plant/oee?${qs({site: v.site, line: ln.id, station: s.id})}" data-station="${esc(s.id)}" data-state="${esc(s.state)}"
               aria-label="${esc(s.name + ": " + stateName(s.state) + (s.reason ? " (" + s.reason + ")" : "") + ", OEE " + pct(s.oee))}">
              <header><strong>${esc(s.name)}</strong><span class="state">${esc(stateName(s.state))}</span></header>
              <div class="muted">${s.reason ? esc(t("plant.reason")) + ": " + esc(s.reason) + " · " : ""}${s.since_us ? esc(t("plant.since")) + " " + esc(tf.format(new Date(s.since_us / 1000))) : ""}</div>
              <dl>
                <dt>OEE</dt><dd data-k="oee">${pct(s.oee)}</dd>
                <dt>${esc(t("plant.availability"))}</dt><dd>${pct(s.availability)}</dd>
                <dt>${esc(t("plant.effectiveness"))}</dt><dd>${pct(s.effectiveness)}</dd>
                <dt>${esc(t("plant.quality"))}</dt><dd>${pct(s.quality)}</dd>
                <dt>${esc(t("plant.good"))} / ${esc(t("plant.scrap"))}</dt><dd data-k="parts">${int(s.good)} / ${int(s.scrap)}</dd>
                <dt>${esc(t("plant.micro_stops"))}</dt><dd>${int(s.micro_stop_count)}</dd>
              </dl>
              <div class="oee-bar" aria-hidden="true"><i style="width:${Math.max(0, Math.min(100, 100 * (s.oee || 0)))}%"></i></div>
            </a>`).join("")}</div>
        </section>`).join("");
      ready();
    }
    function follow(site) {
      if (es) es.close();
      remember({site});
      es = new EventSource("/api/v1/plant/live/stream?" + qs({site}), {withCredentials: true});
      es.addEventListener("plant", (e) => { dot("open"); draw(JSON.parse(e.data)); });
      es.onerror = () => dot("error");
    }
    window.addEventListener("beforeunload", () => es && es.close());
    sel.addEventListener("change", () => follow(sel.value));
    follow(sel.value);
  }

  /* -------------------------------------------------------------- OEE dashboard */
  async function oeePage() {
    const sel = $("#f-site");
    const sites = await sitePicker(sel);
    const p = params();
    ["period", "range", "rollup"].forEach((k) => { if (p.get(k)) $("#f-" + k).value = p.get(k); });
    const cTrend = chart($("#c-trend")), cPareto = chart($("#c-pareto")), cTime = chart($("#c-timeline"));
    function fillLines() {
      const site = sites.find((s) => s.id === sel.value);
      const lines = site ? site.lines : [];
      $("#f-line").innerHTML = `<option value="">${esc(t("plant.all_lines"))}</option>` + lines.map((l) => `<option value="${esc(l.id)}">${esc(l.id)}</option>`).join("");
      if (p.get("line") && lines.some((l) => l.id === p.get("line"))) $("#f-line").value = p.get("line");
      const stations = lines.filter((l) => !$("#f-line").value || l.id === $("#f-line").value).flatMap((l) => l.stations);
      $("#f-station").innerHTML = stations.map((s) => `<option value="${esc(s.id)}">${esc(s.id)}</option>`).join("");
      if (p.get("station") && stations.some((s) => s.id === p.get("station"))) $("#f-station").value = p.get("station");
    }
    const periodLabel = (r, period) => (period === "shift" ? r.shift + " " + when(r.start_us) : String(r[period]));
    async function load() {
      if (!sel.value) { ready(); return; }
      const end = Date.now(), start = end - SPANS[$("#f-range").value];
      const period = $("#f-period").value, line = $("#f-line").value;
      remember({site: sel.value, line, period, range: $("#f-range").value, rollup: $("#f-rollup").value, station: $("#f-station").value});
      const base = {site: sel.value, line, start: String(start), end: String(end)};
      const [oee, pareto] = await Promise.all([
        api("/api/v1/plant/oee?" + qs(Object.assign({period, rollup: $("#f-rollup").value}, base))),
        api("/api/v1/plant/pareto?" + qs(Object.assign({state: $("#f-pareto").value}, base))),
      ]);
      const order = (a, b) => (a.start_us || 0) - (b.start_us || 0) || String(a[period]).localeCompare(String(b[period]));
      oee.lines.sort((a, b) => a.line.localeCompare(b.line) || order(a, b));
      oee.stations.sort(order);
      oee.stations.sort((a, b) => a.station.localeCompare(b.station));
      // KPIs: sum the ISO time elements over the selected lines' rows and recompute
      const rows = oee.lines.length ? oee.lines : oee.stations;
      const sum = (k) => rows.reduce((a, r) => a + (r[k] || 0), 0);
      const pbt = sum("pbt_s"), apt = sum("apt_s"), ideal = sum("ideal_s"), good = sum("good"), scrap = sum("scrap");
      $("#k-oee").textContent = pct(pbt ? rows.reduce((a, r) => a + (r.oee || 0) * (r.pbt_s || 0), 0) / pbt : null);
      $("#k-oee-scope").textContent = (line || t("plant.all_lines")) + " · " + $("#f-range").value;
      $("#k-availability").textContent = pct(pbt ? apt / pbt : null);
      $("#k-effectiveness").textContent = pct(apt ? ideal / apt : null);
      $("#k-quality").textContent = pct(good + scrap ? good / (good + scrap) : null);
      const micro = oee.stations.reduce((a, r) => a + (r.micro_stop_count || 0), 0);
      const microS = oee.stations.reduce((a, r) => a + (r.micro_stop_s || 0), 0);
      $("#k-micro").textContent = int(micro);
      $("#k-micro-s").textContent = num(microS / 60) + " min";
      $("#k-parts").textContent = int(good);
      $("#k-scrap").textContent = int(scrap) + " " + t("plant.scrap");
      const row = (r, key) => `<tr><td>${esc(r[key])}</td><td>${esc(periodLabel(r, period))}</td><td class="num">${pct(r.oee)}</td><td class="num">${pct(r.availability)}</td><td class="num">${pct(r.effectiveness)}</td><td class="num">${pct(r.quality)}</td><td class="num">${int(r.good)}</td><td class="num">${int(r.scrap)}</td>`;
      const none = (n) => `<tr><td colspan="${n}" class="muted">${esc(t("common.none"))}</td></tr>`;
      $("#lines-body").innerHTML = oee.lines.map((r) => row(r, "line") + "</tr>").join("") || none(8);
      $("#stations-body").innerHTML = oee.stations.map((r) => row(r, "station") + `<td class="num">${num(r.down_s / 60)}</td><td class="num">${num(r.setup_s / 60)}</td><td class="num">${int(r.micro_stop_count)}</td></tr>`).join("") || none(11);
      // trend: OEE per period and line (or station when no line rows)
      const key = oee.lines.length ? "line" : "station";
      const xs = [...new Set(rows.slice().sort(order).map((r) => periodLabel(r, period)))];
      const names = [...new Set(rows.map((r) => r[key]))];
      cTrend.setOption(Object.assign({}, theme, {
        tooltip: {trigger: "axis", valueFormatter: (v) => pct(v)}, legend: {textStyle: {color: "#c9d1d9"}, top: 0},
        grid: {left: 50, right: 16, top: 30, bottom: 40},
        xAxis: Object.assign({type: "category", data: xs}, axis), yAxis: Object.assign({type: "value", min: 0, max: 1, axisLabel: {color: "#9aa7b4", formatter: (v) => 100 * v + "%"}}, {splitLine: axis.splitLine}),
        series: names.map((n) => ({name: n, type: "bar", data: xs.map((x) => { const r = rows.find((q) => q[key] === n && periodLabel(q, period) === x); return r ? r.oee : null; })})),
      }), true);
      // Pareto: bars of minutes by reason, line of cumulative share
      const reasons = pareto.reasons;
      cPareto.setOption(Object.assign({}, theme, {
        tooltip: {trigger: "axis"}, grid: {left: 50, right: 50, top: 20, bottom: 60},
        xAxis: Object.assign({type: "category", data: reasons.map((r) => r.reason), axisLabel: {color: "#9aa7b4", rotate: 30}}, {axisLine: axis.axisLine}),
        yAxis: [Object.assign({type: "value", name: "min"}, axis), {type: "value", min: 0, max: 1, axisLabel: {color: "#9aa7b4", formatter: (v) => 100 * v + "%"}, splitLine: {show: false}}],
        series: [
          {name: t("plant.minutes"), type: "bar", data: reasons.map((r) => +(r.duration_s / 60).toFixed(1)), itemStyle: {color: STATE_COLORS[$("#f-pareto").value]}},
          {name: t("plant.cumulative"), type: "line", yAxisIndex: 1, data: reasons.map((r) => r.cumulative_share), itemStyle: {color: "#c9d1d9"}},
        ],
      }), true);
      $("#pareto-body").innerHTML = reasons.map((r) => `<tr><td>${esc(r.reason)}</td><td class="num">${num(r.duration_s / 60)}</td><td class="num">${int(r.count)}</td><td class="num">${pct(r.share)}</td></tr>`).join("") || none(4);
      await timeline(start, end);
      ready();
    }
    async function timeline(start, end) {
      const station = $("#f-station").value;
      if (!station) return;
      const tl = await api("/api/v1/plant/timeline?" + qs({site: sel.value, station, start: String(start), end: String(end)}));
      const data = tl.intervals.map((iv) => ({value: [0, iv.start_us / 1000, iv.end_us / 1000, iv.state, iv.reason || ""], itemStyle: {color: STATE_COLORS[iv.state] || STATE_COLORS.unknown}}));
      cTime.setOption(Object.assign({}, theme, {
        tooltip: {formatter: (p) => `${esc(stateName(p.value[3]))}${p.value[4] ? " · " + esc(p.value[4]) : ""}<br>${esc(when(p.value[1] * 1000))} – ${esc(when(p.value[2] * 1000))}<br>${num((p.value[2] - p.value[1]) / 60000)} min`},
        grid: {left: 70, right: 16, top: 10, bottom: 60},
        dataZoom: [{type: "inside", filterMode: "weakFilter"}, {type: "slider", height: 18, bottom: 8, filterMode: "weakFilter"}],
        xAxis: Object.assign({type: "time", min: start, max: end}, axis), yAxis: {type: "category", data: [station], axisLabel: {color: "#9aa7b4"}},
        series: [{type: "custom", data, encode: {x: [1, 2], y: 0}, renderItem: (params, api2) => {
          const a = api2.coord([api2.value(1), 0]), b = api2.coord([api2.value(2), 0]), h = api2.size([0, 1])[1] * 0.6;
          return {type: "rect", shape: echarts.graphic.clipRectByRect({x: a[0], y: a[1] - h / 2, width: Math.max(1, b[0] - a[0]), height: h}, {x: params.coordSys.x, y: params.coordSys.y, width: params.coordSys.width, height: params.coordSys.height}), style: api2.style()};
        }}],
      }), true);
      const by = {};
      tl.intervals.forEach((iv) => { by[iv.state] = (by[iv.state] || 0) + (iv.end_us - iv.start_us) / 60e6; });
      $("#timeline-sum").textContent = Object.entries(by).map(([s, m]) => stateName(s) + " " + num(m) + " min").join(" · ");
    }
    sel.addEventListener("change", () => { fillLines(); load(); });
    $("#f-line").addEventListener("change", () => { const keep = $("#f-station").value; fillLines(); if (keep) $("#f-station").value = keep; load(); });
    $("#f-pareto").addEventListener("change", load);
    $("#f-station").addEventListener("change", () => { remember({station: $("#f-station").value}); const end = Date.now(); timeline(end - SPANS[$("#f-range").value], end); });
    $("#oee-bar").addEventListener("submit", (e) => { e.preventDefault(); load(); });
    fillLines();
    await load();
  }

  /* ------------------------------------------------------------------ SPC chart */
  async function spcPage() {
    const p = params();
    const rules = (await api("/api/v1/rules")).filter((r) => r.kind === "spc");
    const rsel = $("#f-rule");
    rsel.innerHTML += rules.map((r) => `<option value="${esc(r.id)}">${esc(r.name)} (${esc(r.asset_id)})</option>`).join("");
    if (rules.length) rsel.value = rules.some((r) => r.id === p.get("rule")) ? p.get("rule") : p.get("asset") ? "" : rules[0].id;
    ["asset", "measurement", "chart", "subgroup", "range"].forEach((k) => { if (p.get(k)) $("#f-" + k).value = p.get(k); });
    const cLoc = chart($("#c-location")), cDisp = chart($("#c-dispersion"));
    function applyRule() {
      const r = rules.find((x) => x.id === rsel.value);
      if (!r) return null;
      $("#f-asset").value = r.asset_id; $("#f-measurement").value = r.params.measurement;
      $("#f-chart").value = r.params.chart; $("#f-subgroup").value = r.params.subgroup;
      return r;
    }
    rsel.addEventListener("change", () => { applyRule(); load(); });
    async function load() {
      const rule = applyRule();
      const end = Date.now(), span = SPANS[$("#f-range").value];
      const chartKind = $("#f-chart").value;
      const q = {asset: $("#f-asset").value.trim(), measurement: $("#f-measurement").value.trim(), chart: chartKind, subgroup: $("#f-subgroup").value};
      if (rule) {
        q.reference_start = String(rule.params.reference_start); q.reference_end = String(rule.params.reference_end);
        q.start = String(Math.max(end - span, rule.params.reference_end)); q.end = String(end);
      } else {  // ad hoc: the first quarter of the range is the reference period
        q.reference_start = String(end - span); q.reference_end = String(end - span * 0.75);
        q.start = q.reference_end; q.end = String(end);
      }
      remember({rule: rsel.value, asset: rule ? "" : q.asset, measurement: rule ? "" : q.measurement, chart: rule ? "" : chartKind, range: $("#f-range").value});
      const err = $("#spc-error");
      let c;
      try { c = await api("/api/v1/plant/spc?" + qs(q)); err.hidden = true; }
      catch (ex) { err.textContent = ex.message; err.hidden = false; ready(); return; }
      const L = c.limits, n = c.points.length;
      $("#k-center").textContent = sig(L.center);
      $("#k-ucl").textContent = sig(L.ucl); $("#k-lcl").textContent = sig(L.lcl);
      $("#k-ref").textContent = t("plant.reference") + ": " + int(L.reference_samples) + " " + t("plant.samples");
      $("#k-points").textContent = int(n);
      $("#k-sigma").textContent = "σ " + sig(L.sigma);
      $("#k-violations").textContent = int(c.alarms.length);
      $("#k-rules").textContent = Object.keys(c.violations).map((r) => "N" + r).join(" ") || t("plant.in_control");
      const alarms = await api("/api/v1/alarms?" + qs({asset_id: q.asset})).catch(() => []);
      $("#k-alarms").textContent = int(alarms.filter((a) => !a.closed && (!rule || a.rule_id === rule.id)).length);
      const title = {"i-mr": "I-MR", "xbar-r": "X̄-R", "xbar-s": "X̄-S"}[chartKind];
      $("#spc-title").textContent = title + " · " + q.asset + " · " + q.measurement;
      const xs = c.ts_us.map((u) => u / 1000);
      const fired = new Map(c.alarms.map((a) => [a.index, a.rules]));
      const band = (v, name, color, type) => ({yAxis: v, name, lineStyle: {color, type}, label: {formatter: name + " " + sig(v), color}});
      cLoc.setOption(Object.assign({}, theme, {
        tooltip: {trigger: "axis", formatter: (ps) => { const i = ps[0].dataIndex; const r = fired.get(i); return `${esc(when(xs[i] * 1000))}<br>${sig(c.points[i])}${r ? "<br>" + esc(t("plant.rules_fired")) + ": " + r.map((x) => "N" + x).join(", ") : ""}`; }},
        grid: {left: 60, right: 90, top: 16, bottom: 50},
        dataZoom: [{type: "inside"}, {type: "slider", height: 16, bottom: 6}],
        xAxis: Object.assign({type: "time"}, axis), yAxis: Object.assign({type: "value", scale: true}, axis),
        series: [{
          name: title, type: "line", showSymbol: true, symbolSize: 5, lineStyle: {color: "#4ea1ff", width: 1.2}, itemStyle: {color: "#4ea1ff"},
          data: xs.map((x, i) => (fired.has(i) ? {value: [x, c.points[i]], symbol: "diamond", symbolSize: 11, itemStyle: {color: "#f85149"}} : [x, c.points[i]])),
          markLine: {symbol: "none", silent: true, data: [
            band(L.ucl, "UCL", "#f85149", "dashed"), band(L.center, "CL", "#3fb950", "solid"), band(L.lcl, "LCL", "#f85149", "dashed"),
            band(L.center + L.sigma, "+1σ", "#4b5563", "dotted"), band(L.center - L.sigma, "−1σ", "#4b5563", "dotted"),
            band(L.center + 2 * L.sigma, "+2σ", "#6b7280", "dotted"), band(L.center - 2 * L.sigma, "−2σ", "#6b7280", "dotted"),
          ]},
        }],
      }), true);
      const dxs = chartKind === "i-mr" ? xs.slice(1) : xs;
      const dname = {"i-mr": "MR", "xbar-r": "R", "xbar-s": "S"}[chartKind];
      cDisp.setOption(Object.assign({}, theme, {
        tooltip: {trigger: "axis"}, grid: {left: 60, right: 90, top: 16, bottom: 30},
        xAxis: Object.assign({type: "time"}, axis), yAxis: Object.assign({type: "value", scale: true, name: dname}, axis),
        series: [{name: dname, type: "line", showSymbol: false, lineStyle: {color: "#a371f7", width: 1}, data: dxs.map((x, i) => [x, c.dispersion[i]]),
          markLine: {symbol: "none", silent: true, data: [band(L.dispersion_ucl, "UCL", "#f85149", "dashed"), band(L.dispersion_center, "CL", "#3fb950", "solid")]}}],
      }), true);
      $("#violations-note").textContent = c.alarms.length > 100 ? "(" + t("plant.newest") + " 100 / " + c.alarms.length + ")" : "";
      $("#violations-body").innerHTML = c.alarms.slice(-100).reverse().map((a) => `<tr><td>${esc(when(a.ts_us))}</td><td>${int(a.index)}</td><td class="num">${sig(a.value)}</td><td>${a.rules.map((r) => `<abbr title="${esc(t("plant.nelson_" + r))}">N${r}</abbr>`).join(" ")}</td></tr>`).join("")
        || `<tr><td colspan="4" class="muted">${esc(t("plant.in_control"))}</td></tr>`;
      ready();
    }
    $("#spc-bar").addEventListener("submit", (e) => { e.preventDefault(); rsel.value = rsel.value && applyRule() ? rsel.value : ""; load(); });
    ["#f-asset", "#f-measurement", "#f-chart", "#f-subgroup"].forEach((s) => $(s).addEventListener("change", () => { rsel.value = ""; }));
    await load();
  }

  const PAGES = {plant: linePage, plant_oee: oeePage, plant_spc: spcPage};
  document.addEventListener("DOMContentLoaded", () => {
    const run = PAGES[IB.page];
    if (run) Promise.resolve(run()).catch((ex) => {
      if (ex && ex.message === "401") return;
      console.error(ex && ex.stack ? ex.stack : ex);
      const m = $("main"); if (m) m.insertAdjacentHTML("afterbegin", `<p class="error" role="alert">${esc(t("common.error"))}: ${esc(ex && ex.message)}</p>`);
      document.body.dataset.error = "1";
    });
  });
})();
