/* The programme view: its summary (projection) and its full history (event store).
 *
 * Each refresh reads the summary (waiting for the last position seen); only when
 * the programme's summary changed does it read the history again.
 */
(function () {
  "use strict";
  const T = window.Traction;
  const clinicId = document.body.dataset.clinicId;
  const programmeId = document.body.dataset.programmeId;
  const base = "/v1/clinics/" + encodeURIComponent(clinicId) + "/programmes/" + encodeURIComponent(programmeId);
  const SESSION_TYPES = ["SessionCompleted", "SessionMissed"];
  const TYPE_LABELS = {
    ProgrammeStarted: "Programme started", SessionCompleted: "Session completed",
    SessionMissed: "Session missed", PainReported: "Pain reported", PlanAdjusted: "Plan adjusted",
    AdverseEventReported: "Adverse event", ProgrammePaused: "Paused", ProgrammeResumed: "Resumed",
    ProgrammeDischarged: "Discharged", EntryCorrected: "Entry corrected",
  };
  let current = { summaryText: null, summary: null, events: [] };

  async function refresh(lastPosition) {
    const summary = await T.api(base + "/summary", { minPosition: lastPosition });
    const text = JSON.stringify(summary.body);
    if (text === current.summaryText) return { changed: false, position: summary.position };
    const history = await T.api(base + "/events");
    current = { summaryText: text, summary: summary.body, events: history.body.events };
    render(summary.body, history.body.events);
    return { changed: true, position: summary.position };
  }

  /** min(baseline - 2, 0.7 x baseline): a report at or below it is a response (docs/metrics.md). */
  function threshold(baseline) {
    return Math.min(baseline - 2, 0.7 * baseline);
  }

  function planText(plan) {
    if (!plan) return "—";
    return T.label(plan.modality) + ", " + plan.sessions_per_week + "×/week, " + plan.minutes_per_session + " min" +
      (plan.force_percent_body_weight !== undefined && plan.force_percent_body_weight !== null
        ? ", " + plan.force_percent_body_weight + "% of body weight" : "");
  }

  /** What the history says beyond the summary: the plan now, markers, pauses, sessions by week. */
  function readHistory(summary, events) {
    const startMs = T.parseTime(summary.started_at);
    const days = (iso) => (T.parseTime(iso) - startMs) / T.DAY_MS;
    let plan = null;
    let pausedReason = null;
    const markers = [];
    const chronological = events.slice().sort((a, b) => T.parseTime(a.occurred_at) - T.parseTime(b.occurred_at) || a.version - b.version);
    let end = days(summary.discharged_at || summary.last_occurred_at);
    for (const e of events) end = Math.max(end, days(e.occurred_at));
    const bands = [];
    let pausedAt = null;
    for (const e of chronological) {
      const x = days(e.occurred_at);
      if (e.type === "ProgrammeStarted") plan = Object.assign({}, e.data.plan);
      if (e.type === "PlanAdjusted") {
        const change = Object.assign({}, e.data);
        delete change.reason;
        plan = Object.assign({}, plan, change);
        markers.push({ x, short: "plan", colour: T.COLOURS.purple, text: "Plan adjusted: " + planText(plan) + " (" + e.data.reason + ")", at: e.occurred_at });
      } else if (e.type === "ProgrammePaused") {
        pausedAt = x;
        pausedReason = e.data.reason;
        markers.push({ x, short: "paused", colour: T.COLOURS.orange, text: "Paused: " + e.data.reason, at: e.occurred_at });
      } else if (e.type === "ProgrammeResumed") {
        if (pausedAt !== null) bands.push({ from: pausedAt, to: x });
        pausedAt = null;
        pausedReason = null;
        markers.push({ x, short: "resumed", colour: T.COLOURS.green, text: "Resumed", at: e.occurred_at });
      } else if (e.type === "AdverseEventReported") {
        markers.push({ x, short: "AE " + e.data.severity, colour: T.COLOURS.red, dash: [2, 2],
          text: "Adverse event (" + e.data.severity + "): " + e.data.description, at: e.occurred_at });
      } else if (e.type === "ProgrammeDischarged") {
        if (pausedAt !== null) bands.push({ from: pausedAt, to: x });
        pausedAt = null;
        markers.push({ x, short: "discharged", colour: T.COLOURS.grey, dash: [], text: "Discharged: " + T.label(e.data.outcome).toLowerCase(), at: e.occurred_at });
      }
    }
    if (pausedAt !== null) bands.push({ from: pausedAt, to: end });
    const weeks = Math.max(1, Math.floor(end / 7) + 1);
    const completed = new Array(weeks).fill(0);
    const missed = new Array(weeks).fill(0);
    for (const e of events) {
      if (!SESSION_TYPES.includes(e.type)) continue;
      const week = Math.min(weeks - 1, Math.max(0, Math.floor(days(e.occurred_at) / 7)));
      (e.type === "SessionCompleted" ? completed : missed)[week] += 1;
    }
    return { plan, pausedReason, markers, bands, end, completed, missed, days };
  }

  function render(summary, events) {
    document.getElementById("content").hidden = false;
    document.getElementById("patient-ref").textContent = summary.patient_ref;
    document.title = "Programme " + summary.patient_ref + " · Traction Ledger";
    const h = readHistory(summary, events);
    renderFacts(summary, h, events);
    const lines = h.markers.map((m) => ({ x: m.x, short: m.short, colour: m.colour, dash: m.dash }));
    const bands = h.bands.map((b) => ({ from: b.from, to: b.to }));
    renderPain(summary, h, lines, bands);
    renderSessions(h, lines, bands);
    renderHistory(events);
  }

  /** Yes; No once discharged without a response; Not yet while it may still come. */
  function responderValue(s) {
    if (s.responded) return "Yes";
    if (s.status === "discharged") return "No";
    return s.pain_reports === 0 ? "—" : "Not yet";
  }

  function renderFacts(s, h, events) {
    const odi = (events.find((e) => e.type === "ProgrammeStarted") || { data: { baseline: {} } }).data.baseline.odi_percent;
    const t = threshold(s.baseline_pain);
    const adverse = T.SEVERITIES.map((sev) => T.n(s.adverse_events[sev]) + " " + sev).join(" · ");
    T.fillKpis(document.getElementById("facts"), [
      { key: "status", label: "Status", value: T.label(s.status) + (s.outcome ? ": " + T.label(s.outcome).toLowerCase() : ""),
        note: s.status === "paused" && h.pausedReason ? "reason: " + h.pausedReason : s.discharged_at ? "on " + T.date(s.discharged_at) : "" },
      { key: "patient", label: "Patient ref · condition", value: s.patient_ref, note: T.label(s.condition) + "; " + T.label(s.setting).toLowerCase() },
      { key: "started", label: "Started", value: T.date(s.started_at), note: T.plural(Math.round(h.end), "day") + " of records" },
      { key: "plan", label: "Plan now", value: h.plan ? T.label(h.plan.modality) : "—", note: planText(h.plan) },
      { key: "baseline", label: "Baseline pain (0–10)", value: String(s.baseline_pain),
        note: (odi !== undefined && odi !== null ? "ODI " + odi + "%; " : "") + "responder threshold ≤ " + T.fixed(t, 1) },
      { key: "latest", label: "Latest pain", value: s.latest_pain === null ? "—" : String(s.latest_pain),
        note: s.pain_reports ? "change " + T.signed(s.pain_change, 0) + " over " + T.plural(s.pain_reports, "report") : "no pain reports yet" },
      { key: "responder", label: "Responder", value: responderValue(s),
        note: s.responded ? "first qualifying report on day " + T.fixed(s.days_to_response, 1) +
          (s.responded_substantially ? "; substantial (≤ half of baseline) on day " + T.fixed(s.days_to_substantial_response, 1) : "")
          : s.pain_reports === 0 ? (s.status === "discharged" ? "discharged without a pain report: counted as no response" : "no pain reports yet")
            : "no report at or below " + T.fixed(t, 1) },
      { key: "adherence", label: "Adherence", value: T.pct(s.adherence),
        note: T.n(s.sessions_completed) + " completed of " + T.n(Math.round(s.prescribed_sessions)) + " prescribed; " + T.n(s.sessions_missed) + " missed" },
      { key: "minutes", label: "Minutes of traction", value: T.n(s.minutes_completed), note: "over " + T.plural(s.sessions_completed, "session") },
      { key: "adverse", label: "Adverse events", value: T.n(T.sum(T.SEVERITIES.map((sev) => s.adverse_events[sev]))), note: adverse },
      { key: "corrections", label: "Corrections", value: T.n(s.corrections), note: "history of " + T.plural(events.length, "event") },
    ]);
  }

  function renderPain(s, h, lines, bands) {
    const points = s.pain_trajectory.map((p) => ({ x: h.days(p.occurred_at), y: p.pain_nrs }));
    const end = Math.max(1, Math.ceil(h.end));
    const t = threshold(s.baseline_pain);
    T.chart("chart-pain", {
      type: "line",
      data: {
        datasets: [
          { label: "Reported pain", data: points, borderColor: T.COLOURS.blue, backgroundColor: T.COLOURS.blue,
            pointBackgroundColor: s.pain_trajectory.map((p) => (p.responder ? T.COLOURS.green : T.COLOURS.blue)),
            pointStyle: s.pain_trajectory.map((p) => (p.responder ? "triangle" : "circle")),
            pointRadius: s.pain_trajectory.map((p) => (p.responder ? 5 : 3)), borderWidth: 2, tension: 0 },
          { label: "Baseline (" + s.baseline_pain + ")", data: [{ x: 0, y: s.baseline_pain }, { x: end, y: s.baseline_pain }],
            borderColor: T.COLOURS.grey, borderDash: [8, 4], pointRadius: 0, borderWidth: 2 },
          { label: "Responder threshold (≤ " + T.fixed(t, 1) + ")", data: [{ x: 0, y: t }, { x: end, y: t }],
            borderColor: T.COLOURS.green, borderDash: [3, 3], pointRadius: 0, borderWidth: 2 },
        ],
      },
      options: {
        parsing: true,
        scales: {
          x: { type: "linear", min: 0, max: end, title: { display: true, text: "days since the programme started" } },
          y: { min: 0, max: 10, ticks: { stepSize: 1 }, title: { display: true, text: "pain (0–10)" } },
        },
        plugins: {
          tractionMarkers: { lines, bands },
          tooltip: { callbacks: { label(item) {
            if (item.datasetIndex !== 0) return item.dataset.label;
            const p = s.pain_trajectory[item.dataIndex];
            return "pain " + p.pain_nrs + " on " + T.dateTime(p.occurred_at) + (p.context ? " (" + T.label(p.context) + ")" : "") + (p.responder ? ": meets the responder rule" : "");
          } } },
        },
      },
    }, {
      summary: s.pain_trajectory.length
        ? T.n(s.pain_trajectory.length) + " pain reports from day " + T.fixed(points[0].x, 0) + " to day " + T.fixed(points[points.length - 1].x, 0) +
          ": first " + points[0].y + ", latest " + points[points.length - 1].y + " against a baseline of " + s.baseline_pain +
          "; " + T.n(s.pain_trajectory.filter((p) => p.responder).length) + " at or below the responder threshold of " + T.fixed(t, 1) + ". " +
          (h.markers.length ? h.markers.map((m) => "Day " + T.fixed(m.x, 0) + ": " + m.text).join(". ") + "." : "No plan changes, pauses or adverse events.")
        : "No pain reports yet (baseline " + s.baseline_pain + ").",
      table: {
        columns: [{ label: "Day" }, { label: "When" }, { label: "Pain", num: true }, { label: "ODI %", num: true },
          { label: "Sleep", num: true }, { label: "Context" }, { label: "Meets responder rule" }],
        rows: s.pain_trajectory.map((p, i) => [T.fixed(points[i].x, 1), T.dateTime(p.occurred_at), String(p.pain_nrs),
          p.odi_percent === null ? "—" : String(p.odi_percent), p.sleep_quality_nrs === null ? "—" : String(p.sleep_quality_nrs),
          p.context ? T.label(p.context) : "—", p.responder ? "yes" : "no"])
          .concat(h.markers.map((m) => [T.fixed(m.x, 1), T.dateTime(m.at), "", "", "", m.text, ""])),
      },
    });
  }

  function renderSessions(h, lines, bands) {
    const weeks = h.completed.length;
    const at = (i) => 7 * i + 3.5;
    T.chart("chart-sessions", {
      type: "bar",
      data: {
        datasets: [
          { label: "Completed", data: h.completed.map((y, i) => ({ x: at(i), y })), backgroundColor: T.COLOURS.sky,
            barPercentage: 0.9, categoryPercentage: 1 },
          { label: "Missed", data: h.missed.map((y, i) => ({ x: at(i), y })), backgroundColor: T.COLOURS.orange,
            barPercentage: 0.9, categoryPercentage: 1 },
        ],
      },
      options: {
        scales: {
          x: { type: "linear", min: 0, max: 7 * weeks, offset: false, stacked: true,
            ticks: { stepSize: 7 }, title: { display: true, text: "days since the programme started (one bar per 7-day week)" } },
          y: { beginAtZero: true, stacked: true, ticks: { precision: 0 }, title: { display: true, text: "sessions" } },
        },
        plugins: {
          tractionMarkers: { lines, bands },
          tooltip: { callbacks: { title(items) {
            const week = Math.floor(items[0].parsed.x / 7);
            return "Week " + (week + 1) + " (days " + 7 * week + "–" + (7 * week + 6) + ")";
          } } },
        },
      },
    }, {
      summary: T.n(T.sum(h.completed)) + " sessions completed and " + T.n(T.sum(h.missed)) + " missed over " + T.n(weeks) +
        " weeks; the busiest week had " + T.n(Math.max(...h.completed)) + " completed.",
      table: {
        columns: [{ label: "Week" }, { label: "Days" }, { label: "Completed", num: true }, { label: "Missed", num: true }],
        rows: h.completed.map((c, i) => [String(i + 1), 7 * i + "–" + (7 * i + 6), T.n(c), T.n(h.missed[i])]),
        totals: ["All", "", T.n(T.sum(h.completed)), T.n(T.sum(h.missed))],
      },
    });
  }

  function dataText(type, data) {
    const d = data || {};
    const parts = [];
    switch (type) {
      case "ProgrammeStarted":
        return T.label(d.condition) + ", " + T.label(d.setting).toLowerCase() + "; plan: " + planText(d.plan) +
          "; baseline pain " + d.baseline.pain_nrs + (d.baseline.odi_percent !== undefined ? ", ODI " + d.baseline.odi_percent + "%" : "") +
          "; patient " + d.patient_ref;
      case "SessionCompleted":
        parts.push(T.label(d.modality), d.duration_minutes + " min", d.supervised ? "supervised" : "unsupervised");
        if (d.force_percent_body_weight !== undefined) parts.push(d.force_percent_body_weight + "% of body weight");
        if (d.discomfort_nrs !== undefined) parts.push("discomfort " + d.discomfort_nrs);
        return parts.join(", ");
      case "SessionMissed":
        return "reason: " + T.label(d.reason);
      case "PainReported":
        parts.push("pain " + d.pain_nrs);
        if (d.odi_percent !== undefined) parts.push("ODI " + d.odi_percent + "%");
        if (d.sleep_quality_nrs !== undefined) parts.push("sleep " + d.sleep_quality_nrs);
        if (d.context) parts.push(T.label(d.context));
        return parts.join(", ");
      case "PlanAdjusted":
        for (const [key, value] of Object.entries(d)) if (key !== "reason") parts.push(key.replace(/_/g, " ") + " → " + T.label(value));
        return parts.join(", ") + "; reason: " + d.reason;
      case "AdverseEventReported":
        return d.severity + ": " + d.description;
      case "ProgrammePaused":
        return "reason: " + d.reason;
      case "ProgrammeDischarged":
        return "outcome: " + T.label(d.outcome).toLowerCase() + (d.notes ? "; " + d.notes : "");
      default:
        return "";
    }
  }

  /** The fields a correction changed, "pain 7 → 5", from the original and the corrected data. */
  function changes(original, corrected) {
    const keys = new Set(Object.keys(original.data).concat(Object.keys(corrected)));
    const out = [];
    for (const key of keys) {
      const before = original.data[key];
      const after = corrected[key];
      if (JSON.stringify(before) !== JSON.stringify(after)) {
        out.push(key.replace(/_/g, " ") + " " + (before === undefined ? "—" : before) + " → " + (after === undefined ? "—" : after));
      }
    }
    return out.length ? out.join(", ") : "no value changed";
  }

  function renderHistory(events) {
    const filter = document.getElementById("type-filter").value;
    const byId = new Map(events.map((e) => [e.event_id, e]));
    const correctionsOf = new Map();
    for (const e of events) {
      if (e.type !== "EntryCorrected") continue;
      const list = correctionsOf.get(e.data.corrects) || [];
      list.push(e);
      correctionsOf.set(e.data.corrects, list);
    }
    const shown = events.filter((e) => {
      if (filter === "clinical") return !SESSION_TYPES.includes(e.type) || correctionsOf.has(e.event_id);
      if (filter === "corrections") return e.type === "EntryCorrected" || correctionsOf.has(e.event_id);
      return true;
    });
    const anchor = (e, text) => T.el("a", { href: "#event-" + e.event_id }, text);
    const rows = shown.map((e) => {
      let note = null;
      let cls = null;
      if (correctionsOf.has(e.event_id)) {
        cls = "is-corrected";
        note = T.el("span", {}, correctionsOf.get(e.event_id).map((c) => T.el("span", { class: "correction-note" }, [
          c.event_id === e.corrected_by ? "Corrected (in force) by " : "Corrected (superseded) by ",
          anchor(c, "v" + c.version), ": " + changes(e, c.data.data) + ". Reason: " + c.data.reason,
        ])));
      } else if (e.type === "EntryCorrected") {
        cls = "is-correction";
        const original = byId.get(e.data.corrects);
        note = original
          ? T.el("span", {}, ["Corrects ", anchor(original, "v" + original.version + " (" + TYPE_LABELS[original.type].toLowerCase() + ")"),
            ": " + changes(original, e.data.data) + ". Reason: " + e.data.reason])
          : "Corrects " + e.data.corrects + ". Reason: " + e.data.reason;
      }
      const details = e.type === "EntryCorrected" && byId.get(e.data.corrects)
        ? "now: " + dataText(byId.get(e.data.corrects).type, e.data.data)
        : dataText(e.type, e.data);
      return T.el("tr", { id: "event-" + e.event_id, class: cls }, [
        T.el("th", { scope: "row", class: "num" }, String(e.version)),
        T.el("td", {}, TYPE_LABELS[e.type] || e.type),
        T.el("td", {}, T.dateTime(e.occurred_at)),
        T.el("td", {}, [T.dateTime(e.recorded_at), T.el("br"), e.recorded_by]),
        T.el("td", {}, details),
        T.el("td", {}, note || ""),
      ]);
    });
    T.fillTable(document.getElementById("history-table"), {
      caption: "Occurred: when it happened, as the clinic sent it. Recorded: when the service stored it, and by whom.",
      columns: [{ label: "Version", num: true }, { label: "Event" }, { label: "Occurred" }, { label: "Recorded" },
        { label: "Details" }, { label: "Correction" }],
      rows,
    });
    document.getElementById("history-count").textContent = "Showing " + T.n(shown.length) + " of " + T.plural(events.length, "event") + ".";
  }

  document.getElementById("type-filter").addEventListener("change", () => renderHistory(current.events));
  T.start(refresh);
})();
