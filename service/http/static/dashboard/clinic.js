/* The clinic view: its dashboard, and its programme summaries paged through the cursor.
 *
 * Two reads per refresh (the dashboard, then the summaries at least as fresh as it),
 * plus one more page per 500 programmes. Every rate, interval, time to response and
 * comparison comes computed from the dashboard; only the adherence histogram and the
 * programme list are drawn from the summaries.
 */
(function () {
  "use strict";
  const T = window.Traction;
  const clinicId = document.body.dataset.clinicId;
  const base = "/v1/clinics/" + encodeURIComponent(clinicId);
  const PAGE_ROWS = 50;
  /** Axis labels that fit under a bar; the summaries and tables say them in full. */
  const SHORT = { mechanical_table: "Table", decompression_mat: "Mat", stretching_exercises: "Stretching" };
  let current = { dashboardText: null, dashboard: null, summaries: [] };
  let kind = "moderate";
  let shownRows = PAGE_ROWS;

  async function refresh(lastPosition) {
    const dashboard = await T.api(base + "/dashboard", { minPosition: lastPosition });
    const text = JSON.stringify(dashboard.body);
    if (text === current.dashboardText) return { changed: false, position: dashboard.position };
    // The summaries at least as fresh as the dashboard we just read.
    const list = await T.allPages(base + "/programmes", "programmes", { minPosition: dashboard.position });
    current = { dashboardText: text, dashboard: dashboard.body, summaries: list.items };
    render(dashboard.body, list.items);
    return { changed: true, position: dashboard.position };
  }

  function render(d, summaries) {
    document.getElementById("content").hidden = false;
    renderKpis(d);
    renderTimeToResponse(d);
    renderStatus(d);
    renderOutcomes(d);
    renderAdherence(summaries);
    renderWeekly(d);
    renderAdverse(d);
    renderGroups("chart-setting", d.comparisons.setting, "setting");
    renderGroups("chart-modality", d.comparisons.starting_modality, "starting modality");
    renderComparison(d);
    renderProgrammes(summaries);
  }

  function renderKpis(d) {
    const adverse = T.sum(T.SEVERITIES.map((s) => d.adverse_events[s]));
    const rates = d.responder_rates.moderate;
    const km = d.time_to_response.moderate;
    const day28 = km.at_days.find((r) => r.day === 28);
    const change = d.pain_change;
    const perWeeks = d.adverse_event_rates.per_100_programme_weeks;
    const perSessions = d.adverse_event_rates.per_100_sessions;
    T.fillKpis(document.getElementById("kpis"), [
      { key: "programmes", label: "Programmes", value: T.n(d.programmes),
        note: T.STATUSES.map((s) => T.n(d.by_status[s] || 0) + " " + s).join(" · ") },
      { key: "responder-rate", label: "Responder rate, with a pain report",
        value: rates.among_reported.programmes ? T.pct(rates.among_reported.rate) : "—",
        note: rates.among_reported.programmes
          ? T.n(rates.among_reported.responders) + " of " + T.plural(rates.among_reported.programmes, "programme") +
            " with a pain report; 95% CI " + T.ciPct(rates.among_reported.ci95)
          : "no programme with a pain report yet" },
      { key: "responder-rate-discharged", label: "Responder rate, discharged",
        value: rates.among_discharged.programmes ? T.pct(rates.among_discharged.rate) : "—",
        note: rates.among_discharged.programmes
          ? T.n(rates.among_discharged.responders) + " of " + T.plural(rates.among_discharged.programmes, "discharged programme") +
            ", no report counting as no response; 95% CI " + T.ciPct(rates.among_discharged.ci95)
          : "no programme discharged yet" },
      { key: "time-to-response", label: "Median time to response",
        value: km.median_days === null ? "not reached" : T.fixed(km.median_days, 1) + " days",
        note: "Kaplan–Meier over all " + T.plural(km.programmes, "programme") +
          (km.median_days === null ? "" : "; " + T.medianText(km).replace(/^[^(]*\(|\)$/g, "")) +
          (day28.cumulative === null ? "" : "; " + T.pct(day28.cumulative) + " responded by day 28") },
      { key: "pain-change", label: "Mean pain change (0–10)", value: T.signed(change.mean, 1),
        note: "baseline to latest report, over " + T.plural(change.programmes, "programme") + " with a report" +
          (change.ci95 ? "; 95% CI " + T.ciFixed(change.ci95, 1) : "") },
      { key: "adherence", label: "Mean adherence", value: T.pct(d.mean_adherence),
        note: "over " + T.plural(d.programmes_with_adherence, "programme") + " with ≥ 1 prescribed session" },
      { key: "sessions", label: "Sessions completed", value: T.n(d.sessions_completed),
        note: T.n(d.minutes_completed) + " minutes" },
      { key: "adverse", label: "Adverse events", value: T.n(adverse),
        note: T.SEVERITIES.map((s) => T.n(d.adverse_events[s]) + " " + s).join(" · ") +
          "; " + T.fixed(perWeeks.rate, 2) + " per 100 programme-weeks, " + T.fixed(perSessions.rate, 2) + " per 100 sessions" },
    ]);
  }

  function renderTimeToResponse(d) {
    T.survivalChart("chart-km-setting", "km-setting-at-risk", d.comparisons.setting.groups, kind, "setting");
    T.survivalChart("chart-km-modality", "km-modality-at-risk", d.comparisons.starting_modality.groups, kind,
      "starting modality");
    for (const [id, comparison, what] of [["km-setting-baseline", d.comparisons.setting, "setting"],
      ["km-modality-baseline", d.comparisons.starting_modality, "starting modality"]]) {
      const box = document.getElementById(id);
      box.dataset.differ = String(comparison.differ_at_baseline);
      box.className = "baseline-flag " + (comparison.differ_at_baseline ? "differ" : "alike");
      box.textContent = T.baselineSentence(comparison, what);
    }
  }

  function renderStatus(d) {
    const counts = T.STATUSES.map((s) => d.by_status[s] || 0);
    const outcomes = T.OUTCOMES.filter((o) => d.discharged_by_outcome[o]);
    T.chart("chart-status", {
      type: "bar",
      data: {
        labels: T.STATUSES.map(T.label),
        datasets: [{ label: "Programmes", data: counts,
          backgroundColor: T.STATUSES.map((s) => T.STATUS_COLOURS[s]) }],
      },
      options: { plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "programmes" } } } },
    }, {
      summary: T.plural(d.programmes, "programme") + ": " +
        T.STATUSES.map((s, i) => T.n(counts[i]) + " " + s).join(", ") + ". Discharged by outcome: " +
        (outcomes.length ? outcomes.map((o) => T.n(d.discharged_by_outcome[o]) + " " + T.label(o).toLowerCase()).join(", ") : "none yet") + ".",
      table: {
        columns: [{ label: "Status or outcome" }, { label: "Programmes", num: true }, { label: "Share", num: true }],
        rows: T.STATUSES.map((s, i) => [T.label(s), T.n(counts[i]), T.pct(d.programmes ? counts[i] / d.programmes : null)])
          .concat(T.OUTCOMES.map((o) => ["Discharged: " + T.label(o).toLowerCase(), T.n(d.discharged_by_outcome[o] || 0),
            T.pct(d.by_status.discharged ? (d.discharged_by_outcome[o] || 0) / d.by_status.discharged : null)])),
        totals: ["All programmes", T.n(d.programmes), d.programmes ? "100%" : "—"],
      },
    });
  }

  function renderOutcomes(d) {
    const discharged = d.by_status.discharged || 0;
    const counts = T.OUTCOMES.map((o) => d.discharged_by_outcome[o] || 0);
    T.chart("chart-outcome", {
      type: "bar",
      data: {
        labels: T.OUTCOMES.map((o) => T.label(o).split(" ")),
        datasets: [{ label: "Discharged programmes", data: counts, backgroundColor: T.COLOURS.grey }],
      },
      options: { plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "programmes" } } } },
    }, {
      summary: discharged
        ? "Of " + T.plural(discharged, "discharged programme") + ": " +
          T.OUTCOMES.map((o, i) => T.n(counts[i]) + " " + T.label(o).toLowerCase()).join(", ") + "."
        : "No programme has been discharged yet.",
      table: {
        columns: [{ label: "Outcome" }, { label: "Programmes", num: true }, { label: "Share of discharged", num: true }],
        rows: T.OUTCOMES.map((o, i) => [T.label(o), T.n(counts[i]), T.pct(discharged ? counts[i] / discharged : null)]),
        totals: ["Discharged", T.n(discharged), discharged ? "100%" : "—"],
      },
    });
  }

  function renderAdherence(summaries) {
    const { bins, n, missing } = T.adherenceBins(summaries);
    const labels = bins.map((_, i) => i * 10 + "–" + (i + 1) * 10);
    T.chart("chart-adherence", {
      type: "bar",
      data: { labels, datasets: [{ label: "Programmes", data: bins, backgroundColor: T.COLOURS.blue,
        barPercentage: 1, categoryPercentage: 0.95 }] },
      options: { plugins: { legend: { display: false } },
        scales: {
          x: { title: { display: true, text: "adherence (%): sessions completed ÷ prescribed" } },
          y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "programmes" } },
        } },
    }, {
      summary: "n = " + T.plural(n, "programme") + " with at least one prescribed session" +
        (missing ? " (" + T.n(missing) + " without one " + (missing === 1 ? "is" : "are") + " not shown)" : "") + "; " +
        T.n(bins[9]) + " at 90–100%, " + T.n(T.sum(bins.slice(0, 5))) + " below 50%.",
      table: {
        columns: [{ label: "Adherence" }, { label: "Programmes", num: true }, { label: "Share of n", num: true }],
        rows: bins.map((count, i) => [labels[i] + "%", T.n(count), T.pct(n ? count / n : null)]),
        totals: ["n", T.n(n), n ? "100%" : "—"],
      },
    });
  }

  function renderWeekly(d) {
    const byWeek = new Map(d.weekly.map((w) => [w.week, w]));
    const weeks = T.weekRange(d.weekly.map((w) => w.week));
    const rows = weeks.map((week) => byWeek.get(week) || { week, sessions_completed: 0, pain_reports: 0, mean_pain: null });
    const reported = d.weekly.filter((w) => w.pain_reports > 0);
    T.chart("chart-weekly", {
      type: "bar",
      data: {
        labels: weeks,
        datasets: [
          { type: "bar", label: "Sessions completed", data: rows.map((w) => w.sessions_completed),
            backgroundColor: T.COLOURS.sky, yAxisID: "y", order: 2 },
          { type: "line", label: "Mean reported pain (0–10)", data: rows.map((w) => w.mean_pain),
            borderColor: T.COLOURS.orange, backgroundColor: T.COLOURS.orange, yAxisID: "pain",
            spanGaps: false, pointRadius: 2, borderWidth: 2, order: 1 },
        ],
      },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { ticks: { maxRotation: 0, autoSkipPadding: 12 } },
          y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "sessions" } },
          pain: { position: "right", min: 0, max: 10, grid: { drawOnChartArea: false },
            title: { display: true, text: "mean pain" } },
        },
        plugins: { tooltip: { callbacks: { afterLabel(item) {
          return item.datasetIndex === 1 ? "n = " + T.plural(rows[item.dataIndex].pain_reports, "report") : "";
        } } } },
      },
    }, {
      summary: weeks.length
        ? T.plural(weeks.length, "week") + " from " + weeks[0] + " to " + weeks[weeks.length - 1] + ": " +
          T.plural(d.sessions_completed, "session") + " completed; " +
          T.plural(T.sum(d.weekly.map((w) => w.pain_reports)), "pain report") + " in " + T.plural(reported.length, "week") + "."
        : "No sessions or pain reports yet.",
      table: {
        columns: [{ label: "ISO week" }, { label: "Sessions completed", num: true },
          { label: "Pain reports (n)", num: true }, { label: "Mean pain", num: true }],
        rows: rows.map((w) => [w.week, T.n(w.sessions_completed), T.n(w.pain_reports), T.fixed(w.mean_pain, 1)]),
      },
    });
  }

  function renderAdverse(d) {
    const counts = T.SEVERITIES.map((s) => d.adverse_events[s]);
    const perSessions = d.adverse_event_rates.per_100_sessions;
    const perWeeks = d.adverse_event_rates.per_100_programme_weeks;
    T.chart("chart-adverse", {
      type: "bar",
      data: { labels: T.SEVERITIES.map(T.label), datasets: [{ label: "Adverse events", data: counts,
        backgroundColor: T.SEVERITIES.map((s) => T.SEVERITY_COLOURS[s]) }] },
      options: { plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "events" } } } },
    }, {
      summary: T.SEVERITIES.map((s, i) => T.n(counts[i]) + " " + s).join(", ") + ": " +
        T.fixed(perWeeks.rate, 2) + " per 100 programme-weeks (95% CI " + T.fixed(perWeeks.ci95 && perWeeks.ci95[0], 2) + "–" +
        T.fixed(perWeeks.ci95 && perWeeks.ci95[1], 2) + ") over " + T.fixed(d.programme_weeks, 1) + " weeks of active programmes, " +
        T.fixed(perSessions.rate, 2) + " per 100 sessions over " + T.plural(d.sessions_completed, "completed session") +
        ". A severe event pauses the programme.",
      table: {
        columns: [{ label: "Severity" }, { label: "Events", num: true }],
        rows: T.SEVERITIES.map((s, i) => [T.label(s), T.n(counts[i])]).concat([
          ["Per 100 programme-weeks (95% CI)", T.per100Text(perWeeks)],
          ["Per 100 sessions (95% CI)", T.per100Text(perSessions)]]),
        totals: ["All", T.n(T.sum(counts))],
      },
    });
  }

  function renderGroups(canvasId, comparison, what) {
    const groups = comparison.groups;
    const rates = groups.map((g) => g.responder_rates.moderate);
    const labels = groups.map((g) => [SHORT[g.group] || T.label(g.group), "n = " + g.programmes]);
    const dataset = (name, key, colour) => ({
      label: name,
      data: rates.map((r) => (r[key].programmes ? 100 * r[key].rate : null)),
      intervals: rates.map((r) => (r[key].ci95 ? [100 * r[key].ci95[0], 100 * r[key].ci95[1]] : null)),
      counts: rates.map((r) => ({ k: r[key].responders, n: r[key].programmes })),
      backgroundColor: colour,
    });
    T.chart(canvasId, {
      type: "bar",
      data: { labels, datasets: [dataset("With a pain report", "among_reported", T.COLOURS.blue),
        dataset("Discharged (no report = no response)", "among_discharged", T.COLOURS.orange)] },
      options: {
        plugins: { tooltip: { callbacks: { label(item) {
          const r = rates[item.dataIndex][item.datasetIndex ? "among_discharged" : "among_reported"];
          return item.dataset.label + ": " + T.apiRateText(r);
        } } } },
        scales: { y: { min: 0, max: 100, title: { display: true, text: "responders (%)" } } },
      },
    }, {
      summary: groups.length
        ? "By " + what + ": " + groups.map((g, i) => T.label(g.group) + " " + T.apiRateText(rates[i].among_reported,
          "programme with a pain report") + " with a pain report, " +
          T.apiRateText(rates[i].among_discharged, "discharged programme") + " of discharged").join("; ") + "."
        : "No programmes yet.",
      table: {
        columns: [{ label: what.charAt(0).toUpperCase() + what.slice(1) }, { label: "With a pain report: responders of n", num: true },
          { label: "Rate (95% CI)", num: true }, { label: "Discharged: responders of n", num: true },
          { label: "Rate (95% CI)", num: true }],
        rows: groups.map((g, i) => [T.label(g.group),
          T.n(rates[i].among_reported.responders) + " of " + T.n(rates[i].among_reported.programmes),
          T.pct(rates[i].among_reported.rate) + " (" + T.ciPct(rates[i].among_reported.ci95) + ")",
          T.n(rates[i].among_discharged.responders) + " of " + T.n(rates[i].among_discharged.programmes),
          T.pct(rates[i].among_discharged.rate) + " (" + T.ciPct(rates[i].among_discharged.ci95) + ")"]),
      },
    });
  }

  function renderComparison(d) {
    const columns = [
      { label: "Group" }, { label: "Programmes", num: true },
      { label: "Responder rate, with a pain report (95% CI)", num: true },
      { label: "Responder rate, discharged (95% CI)", num: true },
      { label: "Median time to response, Kaplan–Meier (95% CI)", num: true },
      { label: "Median days to response among responders only", num: true },
      { label: "Mean pain change (95% CI), n", num: true },
      { label: "Mean adherence (n)", num: true }, { label: "Sessions", num: true },
      { label: "Adverse events mild / moderate / severe", num: true },
      { label: "Adverse per 100 programme-weeks (95% CI)", num: true },
      { label: "Adverse per 100 sessions (95% CI)", num: true },
    ];
    const row = (name, g) => {
      const rates = g.responder_rates.moderate;
      const rate = (r) => (r.programmes ? T.pct(r.rate) + " (" + T.ciPct(r.ci95) + "), " + T.n(r.responders) + " of " + T.n(r.programmes) : "—");
      return [name, T.n(g.programmes), rate(rates.among_reported), rate(rates.among_discharged),
        T.medianText(g.time_to_response.moderate), T.fixed(g.median_days_to_response_among_responders, 1),
        T.signed(g.pain_change.mean, 1) + (g.pain_change.ci95 ? " (" + T.ciFixed(g.pain_change.ci95, 1) + ")" : "") + ", " + T.n(g.pain_change.programmes),
        T.pct(g.mean_adherence) + " (" + T.n(g.programmes_with_adherence) + ")", T.n(g.sessions_completed),
        T.SEVERITIES.map((s) => T.n(g.adverse_events[s])).join(" / "),
        T.per100Text(g.adverse_event_rates.per_100_programme_weeks), T.per100Text(g.adverse_event_rates.per_100_sessions)];
    };
    const rows = [];
    const section = (title) => T.el("tr", {}, T.el("th", { scope: "colgroup", colspan: columns.length, class: "group" }, title));
    for (const [title, comparison] of [["By setting", d.comparisons.setting], ["By starting modality", d.comparisons.starting_modality]]) {
      rows.push(section(title));
      for (const g of comparison.groups) rows.push(row(T.label(g.group), g));
    }
    T.fillTable(document.getElementById("compare-table"), {
      caption: "Each rate with its denominator and 95% interval.",
      columns, rows, rowHeaders: true, totals: row("All programmes", d),
    });
    T.whoWasCompared(document.getElementById("who-setting"), d.comparisons.setting, "setting");
    T.whoWasCompared(document.getElementById("who-modality"), d.comparisons.starting_modality, "starting modality");
  }

  /** "yes, day 12"; "no" once discharged without a response (with or without reports). */
  function responderText(s) {
    if (s.responded) return "yes, day " + T.fixed(s.days_to_response, 0);
    if (s.status === "discharged") return s.pain_reports === 0 ? "no (no reports)" : "no";
    return s.pain_reports === 0 ? "no reports yet" : "not yet";
  }

  function renderProgrammes(summaries) {
    const filter = document.getElementById("status-filter").value;
    const chosen = filter ? summaries.filter((s) => s.status === filter) : summaries;
    const visible = chosen.slice(0, shownRows);
    const link = (s) => T.el("a", { href: "/dashboard/clinics/" + encodeURIComponent(clinicId) + "/programmes/" + encodeURIComponent(s.programme_id) }, s.patient_ref);
    const status = (s) => T.el("span", { class: "tag tag-" + s.status }, T.label(s.status) + (s.outcome ? ": " + T.label(s.outcome).toLowerCase() : ""));
    T.fillTable(document.getElementById("programme-table"), {
      caption: "Newest first. Pain is 0–10; a responder has a report at or below both baseline − 2 and 70% of baseline.",
      rowHeaders: true,
      columns: [{ label: "Patient ref" }, { label: "Status" }, { label: "Condition" }, { label: "Setting" },
        { label: "Starting modality" }, { label: "Started" }, { label: "Pain: baseline → latest", num: true },
        { label: "Responder" }, { label: "Adherence", num: true }, { label: "Sessions done / missed", num: true },
        { label: "Adverse events", num: true }],
      rows: visible.map((s) => [link(s), status(s), T.label(s.condition), T.label(s.setting), T.label(s.starting_modality),
        T.date(s.started_at), s.baseline_pain + " → " + (s.latest_pain === null ? "—" : s.latest_pain),
        responderText(s),
        T.pct(s.adherence), T.n(s.sessions_completed) + " / " + T.n(s.sessions_missed),
        T.n(T.sum(T.SEVERITIES.map((sev) => s.adverse_events[sev])))]),
    });
    document.getElementById("list-count").textContent = "Showing " + T.n(visible.length) + " of " +
      T.plural(chosen.length, (filter ? filter + " " : "") + "programme") + ".";
    document.getElementById("show-more").hidden = visible.length >= chosen.length;
  }

  document.getElementById("km-kind").addEventListener("change", (event) => {
    kind = event.target.value;
    if (current.dashboard) renderTimeToResponse(current.dashboard);
  });
  document.getElementById("status-filter").addEventListener("change", () => {
    shownRows = PAGE_ROWS;
    renderProgrammes(current.summaries);
  });
  document.getElementById("show-more").addEventListener("click", () => {
    shownRows += PAGE_ROWS * 4;
    renderProgrammes(current.summaries);
  });

  T.start(refresh);
})();
