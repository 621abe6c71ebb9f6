/* Owners' dashboard: learning curve, rounds, confidence, backlog, throughput, anchoring, agreement,
   model versions (with rollback) and the audit trail. Every figure comes from the REST API. */
"use strict";
(() => {
  const pid = document.body.dataset.project;
  const $ = (id) => document.getElementById(id);
  const get = (path) => AL.api("GET", `/projects/${pid}${path}`);
  const cell = (v, num) => AL.el("td", num ? { class: "num" } : {}, v === null || v === undefined ? "–" : typeof v === "number" ? AL.fmt(v) : v);
  const fill = (id, rows) => $(id).querySelector("tbody").replaceChildren(...rows);
  // a round of the `auto` schedule: the strategy it ran ("auto: cluster_margin")
  const roundStrategy = (r) => {
    const ran = r.metrics && r.metrics.schedule ? r.metrics.schedule.strategy : null;
    return ran && ran !== r.strategy ? `${r.strategy}: ${ran}` : r.strategy;
  };
  // what the payoff measures, where it is not accuracy, in words ("label F1")
  const f1Name = (measure) => (measure && measure !== AL.MEASURE.ACCURACY ? AL.MEASURES[measure] : null);

  /* The holdout's scores per round; beside them random sampling's accuracy, simulated
     (`simulate --attach`) or, without a shell, traced from the audit labels (the payoff's
     curve) with the active model's audited accuracy at its training labels. */
  function curve(rounds, payoff) {
    const done = rounds.filter((r) => r.status === AL.STATUS.round.DONE && r.metrics && r.metrics.accuracy !== undefined && r.metrics.accuracy !== null);
    const pts = (key) => done.map((r) => ({ x: r.metrics.n_train ?? r.n_labels_used, y: r.metrics[key] ?? null }));
    const series = [
      { name: "accuracy", key: "accuracy", points: pts("accuracy") },
      { name: "macro-F1", key: "macro_f1", points: pts("macro_f1") },
      { name: "calibration error (ECE)", key: "ece", points: pts("ece") },
    ];
    // span rounds: the holdout's entity F1 (their accuracy is the share of tokens tagged right)
    // multi-label rounds: the holdout's label F1 (their accuracy gives each label set exactly)
    for (const [key, accuracy] of [[AL.MEASURE.ENTITY_F1, "token accuracy"], [AL.MEASURE.LABEL_F1, "exact-set accuracy"]]) {
      if (!done.some((r) => r.metrics[key] !== undefined && r.metrics[key] !== null)) continue;
      series[0].name = accuracy;
      series.splice(1, 0, { name: AL.MEASURES[key], key, points: pts(key) });
    }
    const random = pts("random_accuracy");
    const simulated = random.some((p) => p.y !== null);
    if (simulated) series.push({ name: "random sampling (simulated)", key: "random_accuracy", points: random, dashed: true });
    const audited = ((payoff && payoff.random_curve) || []).map(([m, a]) => ({ x: m, y: a }));
    // a span project's audit measures entity F1, a multi-label one's label F1
    const f1 = payoff && f1Name(payoff.measure) ? `, ${f1Name(payoff.measure)}` : "";
    if (audited.length) series.push({ name: `random sampling (audit labels${f1})`, key: "random_audit", points: audited, dashed: true });
    if (audited.length && payoff.accuracy !== null && payoff.n_train !== null) {
      series.push({ name: `model now (audit estimate${f1})`, key: "audit_accuracy", points: [{ x: payoff.n_train, y: payoff.accuracy }] });
    }
    Charts.line($("chart-curve"), { title: "Scores against labels", series, xLabel: "training labels", yLabel: "score", yMin: 0, yMax: 1 });
    let note = "";
    if (!simulated && audited.length) note = "Random sampling from the audit labels: the project's model trained on the first audit labels and scored on the later ones (each point an estimate from a few of them; see Payoff).";
    else if (!simulated && payoff && payoff.curve_min_labels === null) note = "This project's model is served over HTTP and trains where it runs, so no round traces random sampling's curve from the audit labels (the payoff still measures the model on them); `activelabel simulate ... --strategies random,... --attach PROJECT` adds a simulated one.";
    else if (!simulated && payoff && payoff.audit_share > 0) note = `Random sampling's curve appears here once ${payoff.curve_min_labels} audit labels are in (${payoff.audit_labels} so far); \`activelabel simulate ... --strategies random,... --attach PROJECT\` adds a simulated one.`;
    else if (!simulated) note = "No random-sampling estimate yet: set audit_share, or `activelabel simulate ... --strategies random,... --attach PROJECT` adds one.";
    $("curve-note").textContent = note;
  }

  function perRound(rounds, stats, measure) {
    const done = rounds.filter((r) => r.status === AL.STATUS.round.DONE);
    const cats = done.map((r) => String(r.number));
    Charts.bars($("chart-rounds"), { title: "Labels gathered per round", categories: cats,
      series: [{ name: "labels gathered", key: "labels_gathered", values: done.map((r) => r.labels_gathered) }], yLabel: "labels" });
    // the gain is the change of the holdout's score (the task's: accuracy, a multi-label
    // project's label F1, a span project's entity F1) between successive models
    const name = AL.MEASURES[measure] || "accuracy";
    const withGain = done.filter((r) => r.gain && r.gain.per_100_labels !== null && r.gain.per_100_labels !== undefined);
    Charts.bars($("chart-gain"), { title: `${name[0].toUpperCase()}${name.slice(1)} gain per 100 labels`, categories: withGain.map((r) => String(r.number)),
      series: [{ name: "gain per 100 labels (points)", key: "gain", values: withGain.map((r) => 100 * r.gain.per_100_labels) }], yLabel: "points" });
    $("rounds-score").textContent = name;
    $("models-score").textContent = name;
    $("gain-measure").textContent = name;
    const holdout = stats && stats.items ? stats.items.holdout : null;
    $("gain-note").textContent = withGain.length || !done.length ? ""
      : holdout === 0 ? "Measured on the holdout, and the project has none: import items with \"split\": \"holdout\" and label them (the Payoff measures the model on the audit draws)."
      : "The gain shows from the second model measured on the labeled holdout items.";
    const t = (r, k) => (r.timings && r.timings[k]) || 0;
    Charts.bars($("chart-latency"), { title: "Round latency", categories: cats, stacked: true, yLabel: "seconds", series: [
      { name: "featurize", key: "featurize_s", values: done.map((r) => t(r, "featurize_s")) },
      { name: "train", key: "train_s", values: done.map((r) => t(r, "train_s")) },
      { name: "score", key: "score_s", values: done.map((r) => t(r, "score_s")) },
      { name: "select", key: "select_s", values: done.map((r) => t(r, "select_s")) }] });
    fill("rounds", [...rounds].reverse().map((r) => AL.el("tr", { dataset: { round: String(r.number) } },
      AL.el("th", { scope: "row" }, String(r.number)), cell(r.status), cell(roundStrategy(r)), cell(r.n_labels_used, 1),
      cell(r.labels_gathered, 1), cell(r.labeling_seconds === null ? null : r.labeling_seconds / 60, 1),
      cell(r.metrics[measure], 1), cell(r.metrics.macro_f1, 1), cell(r.metrics.ece, 1),
      cell(r.gain && r.gain.per_100_labels !== null && r.gain.per_100_labels !== undefined ? 100 * r.gain.per_100_labels : null, 1),
      cell(r.timings ? r.timings.train_s : null, 1), cell(r.timings ? r.timings.score_s : null, 1), cell(r.timings ? r.timings.select_s : null, 1))));
  }

  function confidence(c, task) {
    const series = [];
    if (c.previous) series.push({ name: "previous model", key: "previous", counts: c.previous.counts, color: "#8a949e", outline: true });
    if (c.current) series.push({ name: "current model", key: "current", counts: c.current.counts, color: "#0b5cad" });
    // a span model's confidence is the probability of its whole tagging of a sentence
    const title = task === "spans" ? "Probability of the model's tagging over the unlabeled pool" : "Max class probability over the unlabeled pool";
    Charts.histogram($("chart-confidence"), { title, edges: c.edges, series, xLabel: task === "spans" ? "P(tagging)" : "confidence" });
    const note = [];
    if (c.current) note.push(`${c.current.n} unlabeled items, median confidence ${AL.fmt(c.current.median)}`);
    if (c.current && c.previous && c.previous.median !== null) note.push(`was ${AL.fmt(c.previous.median)} under the previous model`);
    $("confidence-note").textContent = note.join("; ");
  }

  /* Models are named by the round that trained them ("the model of round 3"), as on every
     page; a model no round trained keeps its version number. */
  let roundOfModel = new Map();
  function modelName(version, capital) {
    const n = roundOfModel.get(version);
    const name = n ? `model of round ${n}` : `model version ${version}`;
    return (capital ? "The " : "the ") + name;
  }
  function learnRounds(mods, rounds) {
    const number = new Map(rounds.map((r) => [r.id, r.number]));
    roundOfModel = new Map(mods.map((m) => [m.version, number.get(m.round_id)]));
  }

  function driftAndStaleness(drift, stale) {
    const psi = (v) => (v === null || v === undefined ? "–" : AL.fmt(v));
    if (stale) {
      const days = stale.seconds_since / 86400;
      $("stale-line").replaceChildren(
        AL.el("span", { class: stale.stale ? "badge bad" : "badge ok" }, stale.stale ? "stale" : "current"),
        ` ${modelName(stale.model_version, true)}: ${stale.labels_since} labels and ${stale.new_items} items since it was trained, ${days < 1 ? Math.round(days * 24) + " h" : AL.fmt(days) + " days"} ago.`);
    }
    const reasons = [...(stale && stale.stale ? stale.reasons.map((r) => "Stale: " + r) : [])];
    if (drift) {
      const where = drift.source === "round" ? `round ${drift.round_number}` : `import job ${drift.job_id}`;
      $("drift-line").replaceChildren(
        AL.el("span", { class: drift.shifted ? "badge bad" : "badge ok" }, drift.shifted ? "shift" : "no shift"),
        ` ${drift.n_new} new items against ${drift.n_reference} (${where}): PSI of confidence ${psi(drift.confidence_psi)}, of features ${psi(drift.embedding_psi)}; a classifier tells them apart with AUC ${psi(drift.domain_auc)}.`);
      reasons.push(...drift.reasons.map((r) => "Drift: " + r));
    }
    $("drift-reasons").replaceChildren(...reasons.map((r) => AL.el("li", {}, r)));
  }

  /* The fewest and most random labels the accuracy's interval and the curve's own (its points
     each scored on a few audit draws) allow: "30 to 250 within both intervals", or to "more
     than the curve tells" where an end is out of its reach (as `activelabel status` says). */
  function rangeText(range) {
    if (!range) return "";
    const [low, high] = range;
    if (low === null && high === null) return "";
    return `${low === null ? "?" : low} to ${high === null ? "more than the curve tells" : high} within both intervals`;
  }

  /* The target against the audit interval: reached only when its low end is (the same words
     as `activelabel status`). */
  function targetText(p, pct) {
    const target = pct(p.target_accuracy);
    const below = `${pct(Math.abs(p.to_target))} below the target ${target}`;
    switch (p.target_status ?? (p.to_target > 0 ? "below" : "reached")) {
      case "reached_by_estimate": return `target ${target} reached by the estimate, not yet by the interval (low end ${pct(p.low)})`;
      case "below_by_estimate": return `${below} (the interval reaches it)`;
      case "below": return below;
      default: return `target ${target} reached`;
    }
  }

  function payoffLine(p) {
    const pct = (x) => `${(100 * x).toFixed(1)}%`;
    const head = [];
    if (p.accuracy === null) head.push(p.note ? `${p.note[0].toUpperCase()}${p.note.slice(1)}.` : "No score yet.");
    else head.push(`${(([first, ...rest]) => first.toUpperCase() + rest.join(""))(f1Name(p.measure) || "accuracy")} now ${pct(p.accuracy)} (95% interval ${pct(p.low)}–${pct(p.high)}, ${p.audit_labels} audit labels)`);
    head.push(`labels spent ${p.labels_spent}`);
    const traced = p.random_curve || [];
    if (p.random_labels_needed === null && p.accuracy !== null && traced.length) {
      head.push(`random sampling's curve (up to ${traced[traced.length - 1][0]} audit labels) cannot tell yet what it would have needed`);
    }
    if (p.random_labels_needed !== null) {
      const notes = [p.random_extrapolated ? "extrapolated" : "", rangeText(p.random_labels_range)].filter(Boolean);
      head.push(`random sampling would have needed about ${p.random_labels_needed}${notes.length ? ` (${notes.join("; ")})` : ""}`);
    }
    if (p.to_target !== null) head.push(targetText(p, pct));
    $("payoff-headline").textContent = head.join(" · ");
    const how = p.measure === AL.MEASURE.ENTITY_F1 ? "Entity F1: micro over the audit sentences' entities, each found when the model gives its start, end and type as the annotators did. Interval: bootstrap over the sentences."
      : p.measure === AL.MEASURE.LABEL_F1 ? "Label F1: micro over the audit items' labels, each found when the model gives it (probability above 0.5) and the annotators did. Interval: bootstrap over the items."
      : "Interval: Wilson score.";
    $("payoff-note").textContent = `Measured on tasks drawn uniformly at random from the unlabeled pool (audit_share); the model never trains on them. ${how} The random labels' range reads this interval against the curve's own: each of its points is scored on the audit labels after its training labels.`;
  }

  /* What the model reads: the featurizer and, for text, how far the sentence vectors are
     (a round switches to them once they are in, so its featurize time jumps once). */
  function featuresNote(f) {
    if (!f) return;
    const v = f.sentence_vectors;
    $("features-note").textContent = `Features: ${f.featurizer}` + (f.built_for === null ? " (not built yet)" : ` (built for ${f.built_for.toLocaleString("en-US")} items)`) + (v ? `; ${v.text}.` : ".");
    $("features-note").dataset.vectors = v ? (v.in_model ? "in-model" : "pending") : "none";
  }

  function backlog(stats) {
    const inReview = stats.open_flags;
    Charts.bars($("chart-backlog"), { title: "Backlog", categories: ["queued", "leased", "labeled", "in review"],
      series: [{ name: "items", key: "backlog", values: [stats.queued, stats.leased, stats.labeled, inReview] }], yLabel: "items" });
  }

  function annotators(list, quality) {
    const q = new Map((quality || []).map((x) => [x.username, x]));
    fill("annotators", list.map((a) => {
      const x = q.get(a.username) || {};
      return AL.el("tr", { dataset: { annotator: a.username } }, AL.el("th", { scope: "row" }, a.username), cell(a.labels, 1), cell(a.last_hour, 1),
        cell(a.median_seconds, 1), cell(x.gold_accuracy, 1), cell(x.agreement_with_consensus, 1),
        AL.el("td", {}, x.gold_alert ? AL.el("span", { class: "badge bad" }, "gold alert") : ""));
    }));
  }

  /* Anchoring (GET /anchoring, reviewers and owners): per annotator, the answers given before
     the suggestion showed, how many the label then submitted changed, and how many that
     differed from the suggestion were switched to it. Hidden when the API does not answer. */
  function anchoring(rows) {
    const pct = (x) => AL.el("td", { class: "num" }, x === null || x === undefined ? "–" : `${Math.round(100 * x)}%`);
    $("anchoring-box").hidden = false;
    $("anchoring-empty").hidden = rows.length > 0;
    $("anchoring-wrap").hidden = rows.length === 0;
    fill("anchoring", rows.map((r) => AL.el("tr", { dataset: { annotator: r.username } },
      AL.el("th", { scope: "row" }, r.username), cell(r.blind_answers, 1), cell(r.submitted, 1),
      cell(r.changed, 1), pct(r.changed_share), cell(r.disagreed_with_suggestion, 1),
      cell(r.switched_to_suggestion, 1), pct(r.switched_share))));
  }

  async function agreement(labelCounts) {
    let ag = null;
    try { ag = await get("/agreement"); } catch { ag = null; }
    if (ag && ag.per_label && Object.keys(ag.per_label).length) {
      const labels = Object.keys(ag.per_label);
      Charts.bars($("chart-agreement"), { title: "Agreement per label", categories: labels,
        series: [{ name: "agreement", key: "agreement", values: labels.map((l) => ag.per_label[l].agreement ?? 0) }], yLabel: "agreement" });
      $("agreement-note").textContent = `Krippendorff's alpha ${AL.fmt(ag.krippendorff_alpha)}, Fleiss' kappa ${AL.fmt(ag.fleiss_kappa)} over ${ag.n_items} items labeled by several annotators` +
        (ag.target !== undefined && ag.target !== null ? ` (target ${AL.fmt(ag.target)}${ag.below_target ? ": BELOW" : ""})` : "");
    } else {
      const labels = Object.keys(labelCounts);
      Charts.bars($("chart-agreement"), { title: "Labeled items per label", categories: labels,
        series: [{ name: "labeled items", key: "label_counts", values: labels.map((l) => labelCounts[l]) }], yLabel: "items" });
      $("agreement-note").textContent = "Agreement needs items labeled by several annotators (overlap > 1); shown: labeled items per label.";
    }
  }

  function models(list, role, measure) {
    fill("models", [...list].reverse().map((m) => {
      const x = m.metrics || {};
      // a span model whose file a purge removed (it may have learned the purged words)
      const gone = x.removed_by_purge ? AL.el("span", { class: "muted", title: x.removed_by_purge }, "removed by a purge") : null;
      const state = m.is_active ? AL.el("span", {}, AL.el("span", { class: "badge ok" }, "active"), gone && " ", gone)
        : gone ? gone
        : AL.atLeast(role, AL.ROLE.OWNER) ? AL.el("button", { type: "button", class: "rollback", dataset: { version: String(m.version) },
          "aria-label": `Roll back to ${modelName(m.version)}`, onclick: () => rollback(m.version) }, "Roll back")
        : AL.el("span", { class: "muted" }, "inactive");
      const n = roundOfModel.get(m.version);
      return AL.el("tr", { dataset: { version: String(m.version) } }, AL.el("th", { scope: "row" }, n ? `round ${n}` : `version ${m.version}`),
        cell(m.n_train, 1), cell(x[measure], 1), cell(x.macro_f1, 1), cell(x.ece, 1), cell(AL.when(m.created_at)), AL.el("td", {}, state));
    }));
  }

  async function rollback(version) {
    if (!confirm(`Make ${modelName(version)} the active model and re-rank the queue with it?`)) return;
    try {
      await AL.api("POST", `/projects/${pid}/models/${version}/activate`);
      AL.toast(`${modelName(version, true)} is active; the queue is being re-ranked.`);
      load();
    } catch (err) { AL.toast(err.message, "bad"); }
  }

  function audit(events) {
    $("audit-box").hidden = false;
    // people named in a change ("requested_by": 1) by the names the trail knows them by
    const names = new Map(events.filter((e) => e.actor_id !== null && e.actor).map((e) => [e.actor_id, e.actor]));
    fill("audit", events.map((e) => AL.el("tr", { dataset: { event: String(e.id) } }, cell(AL.when(e.created_at)),
      cell(e.actor_id === null ? "system" : e.actor || `user ${e.actor_id}`),
      cell(e.action), cell(`${e.entity} ${e.entity_id ?? ""}`),
      AL.el("td", { class: "change" }, changeList(e.before, e.after, names)))));
  }

  /* An audit event's change as "field: before → after" lines; nested values as short text. */
  const short = (v) => {
    if (v === null || v === undefined) return "–";
    const text = typeof v === "object" ? (Array.isArray(v) ? v.map(short).join(", ") : Object.entries(v).map(([k, x]) => `${k} ${short(x)}`).join(", ")) : String(v);
    return text.length > 80 ? text.slice(0, 79) + "…" : text;
  };
  const PERSON = /(_by|^user_id|^annotator_id|^reviewer_id|^actor_id)$/;
  function changeList(before, after, names = new Map()) {
    const b = before || {}, a = after || {};
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
    const val = (k, v) => (PERSON.test(k) && typeof v === "number" ? names.get(v) || `user ${v}` : short(v));
    const label = (k) => (PERSON.test(k) ? k.replace(/_id$/, "") : k).replaceAll("_", " ");
    const rows = keys.filter((k) => JSON.stringify(b[k]) !== JSON.stringify(a[k]) || !before || !after).slice(0, 8).map((k) =>
      AL.el("li", {}, AL.el("span", { class: "muted" }, `${label(k)}: `),
        before && after ? `${val(k, b[k])} → ${val(k, a[k])}` : val(k, after ? a[k] : b[k])));
    return rows.length ? AL.el("ul", { class: "changes" }, rows) : "–";
  }

  /* The team's pace and the cadence it sets, the last round's stopping verdicts, the forecast. */
  function outlook(o) {
    const p = o.pace;
    const auto = (on) => (on ? " (auto)" : "");
    const unit = p.counts;  // with overlap, the trigger and the lag count labeled items
    const rows = [
      ["pace", `${AL.fmt(p.labels_per_minute, 1)} labels/min${unit === "items" ? ` (${AL.fmt(p.labels_per_item, 1)} labels an item)` : ""}, ${p.active_annotators} active annotator${p.active_annotators === 1 ? "" : "s"}`],
      ["round duration", p.round_seconds === null ? "no round yet" : `${AL.fmt(p.round_seconds, 1)} s`],
      ["batch", `${p.batch_size ?? "–"}${auto(p.batch_auto)}`],
      ["next round after", `${p.retrain_after} ${unit}${auto(p.cadence_auto)}`],
      ["model lag", `${p.labels_behind} ${unit} behind (max ${p.max_model_lag})`],
      ["strategy", o.strategy],
    ];
    $("pace").replaceChildren(...rows.flatMap(([k, v]) => [AL.el("dt", {}, k), AL.el("dd", {}, v)]));
    if (p.plan) $("pace").append(AL.el("dt", {}, "plan"), AL.el("dd", { class: "muted" }, p.plan));
    $("forecast-text").textContent = o.forecast.text;
    $("verdicts").replaceChildren(...(o.verdicts.length ? o.verdicts.map((v) => AL.el("li", { class: v.stop ? "stop" : "go", dataset: { rule: v.rule } },
      AL.el("strong", {}, v.stop ? "stop" : "go on"), ` ${v.rule.replaceAll("_", " ")}: ${v.reason}`))
      : [AL.el("li", { class: "muted" }, o.round === null ? "no round yet" : "no verdicts recorded")]));
  }

  /* A project with items and no labels yet: the way to its first task. */
  function startCard(p) {
    $("start-card").hidden = !(p.items > 0 && p.labeled === 0);
    $("start-text").textContent = `${p.items} item${p.items === 1 ? "" : "s"} imported, none labeled yet.`;
  }

  async function load() {
    const project = await AL.project();
    const [dash, stats, conf, mods] = await Promise.all([get("/dashboard"), get("/stats"), get("/confidence?bins=20"), get("/models")]);
    learnRounds(mods, dash.rounds);
    curve(dash.rounds, stats.payoff);
    perRound(dash.rounds, stats, dash.measure);
    confidence(conf, project.task);
    driftAndStaleness(dash.drift, dash.staleness);
    backlog(stats);
    featuresNote(stats.features);
    if (stats.payoff) payoffLine(stats.payoff);
    get("/annotators").catch(() => null).then((quality) => annotators(dash.annotators, quality));
    if (AL.atLeast(project.role, AL.ROLE.REVIEWER)) get("/anchoring").then(anchoring).catch(() => { $("anchoring-box").hidden = true; });
    models(mods, project.role, dash.measure);
    get("/outlook").then(outlook).catch(() => {});
    agreement(dash.label_counts);
    if (AL.atLeast(project.role, AL.ROLE.OWNER)) get("/audit?limit=50").then(audit).catch(() => {});
    startCard(await get("/progress"));
    $("dash-updated").textContent = "updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "true";
    AL.markReady();
  }

  function start() {
    load().then(() => setInterval(() => load().catch(() => {}), 30000))
      .catch((err) => AL.failed(err, start));
  }

  document.addEventListener("DOMContentLoaded", start);
})();
