/* Traction Ledger dashboard: what every page shares.
 *
 * The pages are empty shells; everything shown comes from the JSON API,
 * called with the token this tab keeps in sessionStorage. Nothing here
 * writes the token anywhere else (no URL, no cookie, no console).
 *
 * Exposed as window.Traction for the page scripts (and the browser tests).
 */
(function () {
  "use strict";

  const TOKEN_KEY = "traction.token";
  const SCOPE_KEY = "traction.scope";
  const POLL_KEY = "traction.pollMs";
  const DEFAULT_POLL_MS = 5000;
  const TOKEN_FORMAT = /^tl_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/;
  const Z95 = 1.959963984540054;

  // ---- the token ---------------------------------------------------------------

  const session = {
    token() {
      try { return window.sessionStorage.getItem(TOKEN_KEY); } catch (_) { return null; }
    },
    scope() {
      try { return JSON.parse(window.sessionStorage.getItem(SCOPE_KEY) || "null"); } catch (_) { return null; }
    },
    signIn(token, scope) {
      window.sessionStorage.setItem(TOKEN_KEY, token);
      window.sessionStorage.setItem(SCOPE_KEY, JSON.stringify(scope));
    },
    signOut() {
      window.sessionStorage.removeItem(TOKEN_KEY);
      window.sessionStorage.removeItem(SCOPE_KEY);
    },
    pollMs() {
      const wanted = Number(window.sessionStorage.getItem(POLL_KEY));
      return wanted >= 500 ? wanted : DEFAULT_POLL_MS;
    },
  };

  function signInUrl(next) {
    return "/dashboard/" + (next ? "?next=" + encodeURIComponent(next) : "");
  }

  // ---- the API -------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, problem, retryAfter) {
      super((problem && problem.detail) || "HTTP " + status);
      this.status = status;
      this.problem = problem;
      this.retryAfter = retryAfter;
    }
  }

  /**
   * The last body each read answered, with its ETag, by URL without min_position:
   * a poll sends If-None-Match, and a 304 (nothing changed) costs no body.
   */
  const held = new Map();

  function heldKey(url) {
    const key = new URL(url);
    key.searchParams.delete("min_position");
    return key.toString();
  }

  /**
   * GET a JSON API path; {body, position, notModified} where position is
   * X-Projection-Position and notModified says the service answered 304.
   */
  async function api(path, options) {
    const opts = options || {};
    const url = new URL(path, window.location.origin);
    const params = Object.assign({}, opts.params || {});
    if (opts.minPosition !== undefined && opts.minPosition !== null) {
      params.min_position = opts.minPosition;
    }
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
    }
    const token = opts.token || session.token();
    const headers = { Authorization: "Bearer " + token, Accept: "application/json" };
    const key = heldKey(url);
    const kept = held.get(key);
    if (kept && kept.token === token) headers["If-None-Match"] = kept.etag;
    let response;
    try {
      response = await fetch(url, {
        headers,
        // Revalidated by hand above: the browser's own cache keeps nothing.
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (_) {
      throw new ApiError(0, { detail: "The service could not be reached." }, null);
    }
    const header = response.headers.get("X-Projection-Position");
    const position = header === null ? null : Number(header);
    if (response.status === 304 && kept) {
      return { body: kept.body, position: position === null ? kept.position : position, notModified: true };
    }
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      held.delete(key);
      throw new ApiError(response.status, body, response.headers.get("Retry-After"));
    }
    const etag = response.headers.get("ETag");
    if (etag) held.set(key, { etag, body, position, token });
    return { body, position, notModified: false };
  }

  /** Every item of a cursor-paginated list, a few large pages at a time. */
  async function allPages(path, key, options) {
    const opts = options || {};
    const items = [];
    let cursor = null;
    let position = null;
    let requests = 0;
    do {
      const page = await api(path, {
        minPosition: opts.minPosition,
        params: Object.assign({ limit: 500 }, opts.params || {}, { cursor }),
      });
      items.push(...page.body[key]);
      cursor = page.body.next;
      position = page.position;
      requests += 1;
    } while (cursor && requests < 200);
    return { items, position };
  }

  // ---- numbers -------------------------------------------------------------------

  /** The 95 % Wilson score interval of k successes in n trials; null when n is 0. */
  function wilson(k, n, z) {
    if (!n) return null;
    const zz = (z || Z95) * (z || Z95);
    const p = k / n;
    const denominator = 1 + zz / n;
    const centre = (p + zz / (2 * n)) / denominator;
    const half = ((z || Z95) * Math.sqrt((p * (1 - p)) / n + zz / (4 * n * n))) / denominator;
    return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
  }

  function mean(values) {
    const present = values.filter((v) => v !== null && v !== undefined);
    if (!present.length) return null;
    return present.reduce((a, b) => a + b, 0) / present.length;
  }

  function sum(values) {
    return values.reduce((a, b) => a + (b || 0), 0);
  }

  /** Responders among programmes with at least one pain report, with the interval. */
  function responderStats(summaries) {
    const reported = summaries.filter((s) => s.pain_reports > 0);
    const k = reported.filter((s) => s.responded).length;
    const n = reported.length;
    return { k, n, rate: n ? k / n : null, ci: wilson(k, n) };
  }

  /** Adherence histogram: ten bins of 10 points, 100 % in the last one. */
  function adherenceBins(summaries) {
    const bins = new Array(10).fill(0);
    let missing = 0;
    for (const s of summaries) {
      if (s.adherence === null || s.adherence === undefined) { missing += 1; continue; }
      bins[Math.min(Math.floor(s.adherence * 10), 9)] += 1;
    }
    return { bins, n: sum(bins), missing };
  }

  // ---- words and formats ---------------------------------------------------------

  const LABELS = {
    active: "Active", paused: "Paused", discharged: "Discharged",
    in_office: "In office", at_home: "At home", hybrid: "Hybrid",
    mechanical_table: "Mechanical table", decompression_mat: "Decompression mat",
    inversion: "Inversion", stretching_exercises: "Stretching exercises",
    low_back_pain: "Low back pain", sciatica: "Sciatica", disc_herniation: "Disc herniation",
    spinal_stenosis: "Spinal stenosis", other: "Other",
    goals_met: "Goals met", improved: "Improved", no_change: "No change", worsened: "Worsened",
    referred: "Referred", dropped_out: "Dropped out",
    mild: "Mild", moderate: "Moderate", severe: "Severe",
    before_session: "before session", after_session: "after session", follow_up: "follow-up",
    pain: "pain", schedule: "schedule", equipment: "equipment", illness: "illness",
  };
  const STATUSES = ["active", "paused", "discharged"];
  const SETTINGS = ["in_office", "at_home", "hybrid"];
  const MODALITIES = ["mechanical_table", "decompression_mat", "inversion", "stretching_exercises"];
  const OUTCOMES = ["goals_met", "improved", "no_change", "worsened", "referred", "dropped_out"];
  const SEVERITIES = ["mild", "moderate", "severe"];

  function label(key) {
    return LABELS[key] || String(key).replace(/_/g, " ");
  }

  const integer = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
  function n(value) { return value === null || value === undefined ? "—" : integer.format(value); }
  function pct(fraction, digits) {
    if (fraction === null || fraction === undefined) return "—";
    return (fraction * 100).toFixed(digits === undefined ? 0 : digits) + "%";
  }
  function fixed(value, digits) {
    if (value === null || value === undefined) return "—";
    const text = Number(value).toFixed(digits === undefined ? 1 : digits);
    return text.startsWith("-") ? "−" + text.slice(1) : text;
  }
  function signed(value, digits) {
    if (value === null || value === undefined) return "—";
    return (value > 0 ? "+" : "") + fixed(value, digits);
  }
  function ciText(ci) {
    return ci ? pct(ci.low) + "–" + pct(ci.high) : "—";
  }
  /** "47% (7 of 15; 95% CI 25–70%)", or "no programme with a pain report yet". */
  function rateText(k, total, what) {
    if (!total) return "no " + (what || "programme with a pain report") + " yet";
    return pct(k / total) + " (" + n(k) + " of " + n(total) + "; 95% CI " + ciText(wilson(k, total)) + ")";
  }
  function per100(count, sessions) {
    return sessions ? (100 * count) / sessions : null;
  }
  /** "1 programme", "2 programmes" (the count as a whole number). */
  function plural(count, singular, pluralForm) {
    return n(count) + " " + (count === 1 ? singular : pluralForm || singular + "s");
  }
  /** An interval [low, high] of fractions as percentages: "25–70%". */
  function ciPct(ci) {
    return ci && ci[0] !== null && ci[1] !== null ? pct(ci[0]) + "–" + pct(ci[1]) : "—";
  }
  /** An interval [low, high] of plain numbers: "−3.1 to −0.9". */
  function ciFixed(ci, digits) {
    return ci ? fixed(ci[0], digits) + " to " + fixed(ci[1], digits) : "—";
  }
  /** A rate from the API ({responders, programmes, rate, ci95}): "47% (7 of 15; 95% CI 25–70%)". */
  function apiRateText(r, what) {
    if (!r.programmes) return "no " + (what || "programme") + " yet";
    return pct(r.rate) + " (" + n(r.responders) + " of " + n(r.programmes) + "; 95% CI " + ciPct(r.ci95) + ")";
  }
  /** The Kaplan–Meier median: "21.0 days (95% CI 14.0–35.0)", or "not reached". */
  function medianText(km) {
    const [low, high] = km.median_ci95;
    const ci = low === null ? "" : high === null ? " (95% CI from " + fixed(low, 1) + " days)"
      : " (95% CI " + fixed(low, 1) + "–" + fixed(high, 1) + " days)";
    return km.median_days === null ? "not reached" + ci : fixed(km.median_days, 1) + " days" + ci;
  }
  /** An adverse event rate ({events, rate, ci95}) per 100 units: "1.36 (95% CI 0.62–2.58)". */
  function per100Text(r) {
    return r.rate === null ? "—" : fixed(r.rate, 2) + " (95% CI " + fixed(r.ci95[0], 2) + "–" + fixed(r.ci95[1], 2) + ")";
  }

  /** Milliseconds since the epoch of an RFC 3339 string (microseconds trimmed). */
  function parseTime(iso) {
    return Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
  }
  /** The date as the clinic sent it (its own offset). */
  function date(iso) { return iso ? String(iso).slice(0, 10) : "—"; }
  function dateTime(iso) {
    if (!iso) return "—";
    const text = String(iso);
    const offset = text.match(/(Z|[+-]\d{2}:\d{2})$/);
    return text.slice(0, 10) + " " + text.slice(11, 16) + (offset ? " " + (offset[1] === "+00:00" ? "UTC" : offset[1]) : "");
  }
  const DAY_MS = 86400000;

  // ---- ISO weeks ---------------------------------------------------------------

  function isoWeekMonday(labelText) {
    const match = /^(\d{4})-W(\d{2})$/.exec(labelText);
    if (!match) return null;
    const jan4 = Date.UTC(Number(match[1]), 0, 4);
    const weekday = (new Date(jan4).getUTCDay() + 6) % 7;
    return jan4 - weekday * DAY_MS + (Number(match[2]) - 1) * 7 * DAY_MS;
  }
  function isoWeekLabel(ms) {
    // The ISO week's year is that of its Thursday.
    const d = new Date(ms);
    const weekday = d.getUTCDay() || 7;
    const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 4 - weekday);
    const year = new Date(thursday).getUTCFullYear();
    const week = Math.ceil(((thursday - Date.UTC(year, 0, 1)) / DAY_MS + 1) / 7);
    return year + "-W" + String(week).padStart(2, "0");
  }
  /** Every ISO week from the first to the last of `labels`, none skipped. */
  function weekRange(labels) {
    const mondays = labels.map(isoWeekMonday).filter((v) => v !== null).sort((a, b) => a - b);
    if (!mondays.length) return [];
    const weeks = [];
    for (let t = mondays[0]; t <= mondays[mondays.length - 1] && weeks.length < 2000; t += 7 * DAY_MS) {
      weeks.push(isoWeekLabel(t));
    }
    return weeks;
  }

  // ---- the DOM -------------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of [].concat(children || [])) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Fill a <table>: columns [{label, num}], rows of cells (text or nodes), optional totals. */
  function fillTable(table, spec) {
    table.replaceChildren();
    if (spec.caption) table.append(el("caption", { text: spec.caption }));
    const head = el("tr", {}, spec.columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : null }, c.label)));
    table.append(el("thead", {}, head));
    const body = el("tbody");
    const row = (cells, cls) => el("tr", { class: cls }, cells.map((cell, i) => {
      const column = spec.columns[i] || {};
      const tag = i === 0 && spec.rowHeaders ? "th" : "td";
      return el(tag, { scope: tag === "th" ? "row" : null, class: column.num ? "num" : null }, cell);
    }));
    for (const cells of spec.rows) {
      body.append(cells instanceof Node ? cells : row(cells));
    }
    if (spec.totals) body.append(row(spec.totals, "total"));
    table.append(body);
    return table;
  }

  function fillKpis(dl, items) {
    dl.replaceChildren(...items.map((item) => el("div", { "data-kpi": item.key }, [
      el("dt", { text: item.label }),
      el("dd", {}, [item.value, item.note ? el("small", { text: item.note }) : null]),
    ])));
  }

  // ---- charts --------------------------------------------------------------------

  const COLOURS = {
    blue: "#0b5fa5", orange: "#b35900", green: "#007a5a", purple: "#8a3f78",
    grey: "#5b6770", red: "#9c1c1c", amber: "#8f6400", sky: "#2f7fb8", ink: "#1b2430",
  };
  const SERIES = [COLOURS.blue, COLOURS.orange, COLOURS.green, COLOURS.purple, COLOURS.red,
    COLOURS.grey, COLOURS.amber, COLOURS.sky];
  const SEVERITY_COLOURS = { mild: COLOURS.amber, moderate: COLOURS.orange, severe: COLOURS.red };
  const STATUS_COLOURS = { active: COLOURS.green, paused: COLOURS.orange, discharged: COLOURS.grey };

  /** Whiskers for bar datasets that carry `intervals: [[low, high] | null, ...]`. */
  const intervalsPlugin = {
    id: "tractionIntervals",
    afterDatasetsDraw(chart) {
      const ctx = chart.ctx;
      const scale = chart.scales.y;
      chart.data.datasets.forEach((dataset, i) => {
        if (!dataset.intervals || !chart.isDatasetVisible(i)) return;
        chart.getDatasetMeta(i).data.forEach((bar, j) => {
          const interval = dataset.intervals[j];
          if (!interval) return;
          const top = scale.getPixelForValue(interval[1]);
          const bottom = scale.getPixelForValue(interval[0]);
          const cap = Math.min(10, (bar.width || 20) / 4);
          ctx.save();
          ctx.strokeStyle = COLOURS.ink;
          ctx.lineWidth = 1.5;
          ctx.beginPath();
          ctx.moveTo(bar.x, top); ctx.lineTo(bar.x, bottom);
          ctx.moveTo(bar.x - cap, top); ctx.lineTo(bar.x + cap, top);
          ctx.moveTo(bar.x - cap, bottom); ctx.lineTo(bar.x + cap, bottom);
          ctx.stroke();
          ctx.restore();
        });
      });
    },
  };

  /** Vertical marker lines and shaded bands on a linear x axis: options.plugins.tractionMarkers. */
  const markersPlugin = {
    id: "tractionMarkers",
    beforeDatasetsDraw(chart, _args, options) {
      const area = chart.chartArea;
      const x = chart.scales.x;
      for (const band of (options && options.bands) || []) {
        const from = Math.max(area.left, x.getPixelForValue(band.from));
        const to = Math.min(area.right, x.getPixelForValue(band.to));
        if (to <= from) continue;
        chart.ctx.save();
        chart.ctx.fillStyle = band.colour || "rgba(179, 89, 0, 0.12)";
        chart.ctx.fillRect(from, area.top, to - from, area.bottom - area.top);
        chart.ctx.restore();
      }
    },
    afterDatasetsDraw(chart, _args, options) {
      const area = chart.chartArea;
      const x = chart.scales.x;
      const ctx = chart.ctx;
      ((options && options.lines) || []).forEach((line, i) => {
        const px = x.getPixelForValue(line.x);
        if (px < area.left - 1 || px > area.right + 1) return;
        ctx.save();
        ctx.strokeStyle = line.colour || COLOURS.purple;
        ctx.lineWidth = 1.5;
        ctx.setLineDash(line.dash || [4, 3]);
        ctx.beginPath();
        ctx.moveTo(px, area.top);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
        if (line.short) {
          ctx.setLineDash([]);
          ctx.fillStyle = line.colour || COLOURS.purple;
          ctx.font = "600 11px system-ui, sans-serif";
          ctx.textAlign = px > area.right - 40 ? "right" : "left";
          ctx.fillText(line.short, px + (ctx.textAlign === "left" ? 3 : -3), area.top + 11 + (i % 3) * 12);
        }
        ctx.restore();
      });
    },
  };

  let chartsReady = false;
  function setUpCharts() {
    if (chartsReady || !window.Chart) return;
    chartsReady = true;
    const Chart = window.Chart;
    Chart.register(intervalsPlugin, markersPlugin);
    Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    Chart.defaults.font.size = 12;
    Chart.defaults.color = COLOURS.ink;
    Chart.defaults.borderColor = "#dde3e9";
    Chart.defaults.maintainAspectRatio = false;
    Chart.defaults.responsive = true;
    const still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    Chart.defaults.animation = still ? false : { duration: 250 };
  }

  /**
   * Draw (or update in place) the chart on `canvasId`, and give it its text:
   * a visible summary the canvas is described by, and the data as a table.
   */
  function chart(canvasId, config, text) {
    setUpCharts();
    const canvas = document.getElementById(canvasId);
    const figure = canvas.closest("figure");
    let summary = figure.querySelector(".chart-summary");
    if (!summary) {
      summary = el("p", { class: "chart-summary", id: canvasId + "-summary" });
      const table = el("table", { class: "data", id: canvasId + "-table" });
      const details = el("details", {}, [
        el("summary", { text: "Data table" }),
        el("div", { class: "table-scroll" }, table),
      ]);
      figure.append(summary, details);
      canvas.setAttribute("aria-describedby", summary.id);
    }
    const heading = figure.querySelector("h2, h3");
    canvas.setAttribute("aria-label", (heading ? heading.textContent : "Chart") + " (chart; its data table follows)");
    summary.textContent = text.summary;
    fillTable(figure.querySelector("#" + canvasId + "-table"), Object.assign({ rowHeaders: true }, text.table));
    const existing = window.Chart.getChart(canvas);
    if (existing && existing.config.type === config.type) {
      existing.data.labels = config.data.labels;
      existing.data.datasets = config.data.datasets;
      existing.options.plugins.tractionMarkers = (config.options.plugins || {}).tractionMarkers;
      existing.update();
      return existing;
    }
    if (existing) existing.destroy();
    return new window.Chart(canvas, config);
  }

  function destroyCharts() {
    if (!window.Chart) return;
    document.querySelectorAll("canvas").forEach((canvas) => {
      const existing = window.Chart.getChart(canvas);
      if (existing) existing.destroy();
    });
  }

  // ---- the page frame: session, problems, live updates -----------------------------

  function setState(state) {
    document.body.dataset.state = state;
  }

  function showProblem(error) {
    const box = document.getElementById("problem");
    const content = document.getElementById("content");
    if (content) content.hidden = true;
    document.querySelectorAll(".live-bar").forEach((bar) => { bar.hidden = true; });
    destroyCharts();
    let title = "Something went wrong";
    let detail = error && error.message ? error.message : "The dashboard could not be loaded.";
    let state = "error";
    if (error && error.status === 404) {
      title = "Not found";
      detail = "There is nothing here that this token may see: no such clinic or programme, " +
        "or it belongs to a clinic outside this token's scope.";
      state = "not-found";
    } else if (error && error.status === 403) {
      title = "Not allowed";
      detail = "This token's role may not read this page. " + ((error.problem && error.problem.detail) || "") +
        " Writer tokens only post events; admin tokens read the network view only.";
      state = "forbidden";
    }
    if (box) {
      document.getElementById("problem-title").textContent = title;
      document.getElementById("problem-detail").textContent = detail;
      box.hidden = false;
    }
    setState(state);
  }

  /** Poll `refresh` every few seconds while the tab is visible; it returns the position it showed. */
  class Live {
    constructor(refresh) {
      this.refresh = refresh;
      this.position = null;
      this.paused = false;
      this.timer = null;
      this.stopped = false;
      this.interval = session.pollMs();
      this.status = document.getElementById("live-status");
      this.toggle = document.getElementById("live-toggle");
      if (this.toggle) {
        this.toggle.addEventListener("click", () => {
          this.paused = !this.paused;
          this.toggle.setAttribute("aria-pressed", String(this.paused));
          this.toggle.textContent = this.paused ? "Resume live updates" : "Pause live updates";
          this.say();
          if (!this.paused) this.tick();
        });
      }
      document.addEventListener("visibilitychange", () => {
        if (document.visibilityState === "visible" && !this.paused) this.tick();
      });
    }

    say(note) {
      if (!this.status) return;
      const seconds = Math.round(this.interval / 1000);
      const at = this.updatedAt ? this.updatedAt.toLocaleTimeString("en-GB") : "—";
      let text = "Data as of log position " + n(this.position) + " (updated " + at + "). ";
      text += this.paused ? "Live updates paused." : "New events appear on their own (checked every " + seconds + " s).";
      if (note) text += " " + note;
      if (this.status.textContent !== text) this.status.textContent = text;
    }

    schedule(delay) {
      clearTimeout(this.timer);
      if (this.stopped) return;
      this.timer = setTimeout(() => this.tick(), delay === undefined ? this.interval : delay);
    }

    async tick() {
      clearTimeout(this.timer);
      if (this.stopped || this.running) return;
      if (this.paused || document.visibilityState === "hidden") { this.schedule(); return; }
      this.running = true;
      let delay;
      try {
        const result = await this.refresh(this.position);
        if (result && result.changed) this.updatedAt = new Date();
        if (result && result.position !== null && result.position !== undefined) {
          this.position = Math.max(this.position || 0, result.position);
        }
        if (document.body.dataset.state !== "ready") setState("ready");
        this.say();
      } catch (error) {
        if (error.status === 401) {
          session.signOut();
          window.location.replace(signInUrl(window.location.pathname));
          this.stopped = true;
        } else if (error.status === 503 || error.status === 0) {
          // The projection is catching up, or the service restarts: try again soon.
          const wait = Number(error.retryAfter) > 0 ? Number(error.retryAfter) * 1000 : this.interval;
          delay = Math.max(1000, wait);
          if (document.body.dataset.state === "ready") this.say("Waiting for the service…");
        } else {
          this.stopped = true;
          showProblem(error);
        }
      } finally {
        this.running = false;
      }
      this.schedule(delay);
    }
  }

  /** Set up the frame, then keep `refresh(lastPosition)` -> {changed, position} running. */
  function start(refresh) {
    const token = session.token();
    if (!token) {
      setState("signed-out");
      window.location.replace(signInUrl(window.location.pathname));
      return null;
    }
    frame();
    const live = new Live(refresh);
    live.tick();
    return live;
  }

  function frame() {
    const scope = session.scope() || {};
    const box = document.getElementById("session");
    if (box && session.token()) {
      document.getElementById("session-label").textContent =
        "Signed in: " + (scope.all ? "all clinics" : scope.clinic || "one clinic");
      box.hidden = false;
      document.getElementById("sign-out").addEventListener("click", () => {
        session.signOut();
        window.location.assign("/dashboard/");
      });
    }
    if (scope.all) document.querySelectorAll(".nav-network").forEach((item) => { item.hidden = false; });
  }

  // ---- time to response and who was compared ------------------------------------

  const KINDS = {
    moderate: "moderate response (a report ≥ 2 points and ≥ 30% below baseline)",
    substantial: "substantial response (a report ≥ 2 points and ≥ 50% below baseline)",
  };
  const AT_RISK_DAYS = [0, 7, 14, 28, 42, 56, 84];

  function alpha(colour, opacity) {
    const value = parseInt(colour.slice(1), 16);
    return "rgba(" + (value >> 16) + ", " + ((value >> 8) & 255) + ", " + (value & 255) + ", " + opacity + ")";
  }

  /** The number at risk of a group at a day: every programme at day 0, else the API's at_days. */
  function atRisk(km, day) {
    if (day === 0) return km.programmes;
    const row = km.at_days.find((r) => r.day === day);
    return row ? row.at_risk : null;
  }

  /**
   * Kaplan–Meier step curves of cumulative response, one per group, each with its 95 %
   * band, and the number-at-risk table beneath (`atRiskId`): the figure of clinical papers.
   * `groups`: [{group, time_to_response}] from the API; `kind`: moderate or substantial.
   */
  function survivalChart(canvasId, atRiskId, groups, kind, what) {
    const datasets = [];
    groups.forEach((g, i) => {
      const km = g.time_to_response[kind];
      const colour = SERIES[i % SERIES.length];
      const points = (values) => km.curve.day.map((day, j) => ({ x: day, y: 100 * values[j] }));
      const name = label(g.group);
      datasets.push(
        { label: name + " 95% CI low", band: true, data: points(km.curve.ci95_low), stepped: "after",
          borderWidth: 0, pointRadius: 0, fill: false, backgroundColor: alpha(colour, 0.14) },
        { label: name + " 95% CI high", band: true, data: points(km.curve.ci95_high), stepped: "after",
          borderWidth: 0, pointRadius: 0, fill: "-1", backgroundColor: alpha(colour, 0.14) },
        { label: name, data: points(km.curve.cumulative), stepped: "after", borderColor: colour,
          backgroundColor: colour, borderWidth: 2.5, pointRadius: 0, fill: false,
          borderDash: i >= SERIES.length ? [6, 3] : [] });
    });
    const days = AT_RISK_DAYS.slice(1);
    const reported = (g) => {
      const km = g.time_to_response[kind];
      const row = km.at_days.find((r) => r.day === 28);
      const by28 = row.cumulative === null ? "nobody followed to day 28"
        : row.cumulative === 0 ? "no response by day 28"
          : pct(row.cumulative) + " by day 28 (95% CI " + ciPct(row.ci95) + ")";
      return label(g.group) + ": " + by28 + ", median " + medianText(km);
    };
    chart(canvasId, {
      type: "line",
      data: { datasets },
      options: {
        interaction: { mode: "nearest", intersect: false, axis: "x" },
        scales: {
          x: { type: "linear", min: 0, max: 84, ticks: { stepSize: 7 },
            title: { display: true, text: "days since the programme started" } },
          y: { min: 0, max: 100, title: { display: true, text: "responded (%)" } },
        },
        plugins: {
          legend: { labels: { filter: (item, data) => !data.datasets[item.datasetIndex].band } },
          tooltip: { filter: (item) => !item.dataset.band, callbacks: {
            label: (item) => item.dataset.label + ": " + fixed(item.parsed.y, 1) + "% by day " + item.parsed.x } },
        },
      },
    }, {
      summary: groups.length
        ? "Cumulative " + KINDS[kind].split(" (")[0] + " (Kaplan–Meier, 95% log-log bands) by " + what + ". " +
          groups.map(reported).join("; ") + "."
        : "No programmes yet.",
      table: {
        columns: [{ label: what.charAt(0).toUpperCase() + what.slice(1) }, { label: "Median (95% CI)" }]
          .concat(days.map((day) => ({ label: "Day " + day + ": responded (95% CI), at risk", num: true }))),
        rows: groups.map((g) => {
          const km = g.time_to_response[kind];
          return [label(g.group), medianText(km)].concat(km.at_days.map((r) =>
            (r.cumulative === null ? "—" : r.cumulative === 0 ? "none" : pct(r.cumulative) + " (" + ciPct(r.ci95) + ")") +
            ", " + n(r.at_risk)));
        }),
      },
    });
    fillTable(document.getElementById(atRiskId), {
      caption: "Number at risk: programmes still followed (not yet responded, nor censored) at each day.",
      rowHeaders: true,
      columns: [{ label: "Day" }].concat(AT_RISK_DAYS.map((day) => ({ label: String(day), num: true }))),
      rows: groups.map((g) => [label(g.group)].concat(AT_RISK_DAYS.map((day) => n(atRisk(g.time_to_response[kind], day))))),
    });
  }

  /** The plain sentence under a comparison: were the groups alike at baseline? */
  function baselineSentence(comparison, what) {
    const big = comparison.groups.filter((g) => g.programmes >= 5);
    if (big.length < 2) {
      return "Too few programmes to check whether the " + what + " groups were alike at baseline " +
        "(it takes two groups of at least 5): read any difference between them with great care.";
    }
    if (!comparison.differ_at_baseline) {
      return "The " + what + " groups of at least 5 programmes were alike at baseline (mean pain within " +
        "1 point, each condition's share within 20 points). Patients were still not assigned at random.";
    }
    const reasons = comparison.baseline_differences.map((d) => {
      const [a, b] = d.groups.map(label);
      if (d.measure === "mean_baseline_pain") {
        return a + " started with " + fixed(Math.abs(d.difference), 1) + " points " +
          (d.difference > 0 ? "more" : "less") + " pain than " + b;
      }
      return "the share of " + label(d.condition).toLowerCase() + " was " + fixed(Math.abs(d.difference) * 100, 0) +
        " points " + (d.difference > 0 ? "higher" : "lower") + " in " + a + " than in " + b;
    });
    return "Groups differ at baseline: " + reasons.join("; ") + ". A difference in outcomes between them " +
      "may come from who was treated rather than how: do not read it as the effect of the " + what + ".";
  }

  /** Who was compared: each group's n, mean baseline pain and mix of conditions, and the flag. */
  function whoWasCompared(container, comparison, what) {
    container.replaceChildren();
    const conditions = ["low_back_pain", "sciatica", "disc_herniation", "spinal_stenosis", "other"];
    const table = el("table", { class: "data" });
    fillTable(table, {
      caption: "Who was compared, by " + what + ": condition shares of each group's programmes.",
      rowHeaders: true,
      columns: [{ label: what.charAt(0).toUpperCase() + what.slice(1) }, { label: "Programmes", num: true },
        { label: "Mean baseline pain", num: true }].concat(conditions.map((c) => ({ label: label(c), num: true }))),
      rows: comparison.groups.map((g) => [label(g.group), n(g.programmes), fixed(g.mean_baseline_pain, 1)]
        .concat(conditions.map((c) => pct(g.programmes ? (g.conditions[c] || 0) / g.programmes : null)))),
    });
    const flagged = comparison.differ_at_baseline;
    container.append(
      el("p", { class: "baseline-flag " + (flagged ? "differ" : "alike"), "data-differ": String(flagged) },
        [flagged ? el("strong", { text: "Groups differ at baseline. " }) : null,
          baselineSentence(comparison, what).replace(/^Groups differ at baseline: /, "")]),
      el("div", { class: "table-scroll" }, table));
  }

  window.Traction = {
    session, signInUrl, api, allPages, ApiError, TOKEN_FORMAT,
    wilson, mean, sum, responderStats, adherenceBins, per100,
    plural, ciPct, ciFixed, apiRateText, medianText, per100Text,
    KINDS, AT_RISK_DAYS, atRisk, survivalChart, baselineSentence, whoWasCompared,
    label, n, pct, fixed, signed, ciText, rateText, parseTime, date, dateTime, DAY_MS,
    isoWeekMonday, isoWeekLabel, weekRange,
    STATUSES, SETTINGS, MODALITIES, OUTCOMES, SEVERITIES,
    COLOURS, SERIES, SEVERITY_COLOURS, STATUS_COLOURS,
    el, fillTable, fillKpis, chart, destroyCharts, setState, showProblem, start, frame,
  };
})();
