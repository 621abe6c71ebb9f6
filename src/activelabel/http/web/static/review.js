/* Reviewers: the ranked review queue (GET /review: label issues, disagreement, flags, gold
   misses, model disagreements, ties), filtered by reason, annotator, label and round; accept,
   reject or correct a label (each a new revision, with an optional reason); resolve flags with a
   note the annotator sees. */
"use strict";
(() => {
  const pid = document.body.dataset.project;
  const $ = (id) => document.getElementById(id);
  let project = null, items = [], focus = 0;

  const spans = () => project.task === "spans";
  /* A label as text; a span project's spans as their words and types, read from the item. */
  const labelText = (l, data) => (spans() && window.ALSpans ? ALSpans.spansText(l, data || {})
    : AL.labelText(l));

  const multi = () => project.task === "multilabel";
  /* A multi-label answer with ``label`` added or taken out, in the project's label order. */
  const toggled = (given, label) => {
    const has = (given || []).some((x) => String(x) === String(label));
    return project.labels.filter((l) => String(l) === String(label) ? !has : (given || []).some((x) => String(x) === String(l)));
  };

  /* What a reviewer may correct a label to: a label of the project; in a multi-label project
     the model's labels, the given ones with one label added or taken out, or none; in a span
     project the spans the model gives the item or none ("no entity"); [text, labels] pairs. */
  function corrections(item, given) {
    if (multi()) {
      const key = (l) => JSON.stringify((l || []).map(String).sort());
      const out = [];
      const model = item.suggestion && Array.isArray(item.suggestion.label) ? item.suggestion.label : null;
      // (the model giving none is the "no label" below)
      if (model && model.length && (given === null || key(model) !== key(given)))
        out.push([`the model's labels: ${model.map(String).join(", ")}`, model]);
      for (const l of project.labels) {
        const has = (given || []).some((x) => String(x) === String(l));
        out.push([`${has ? "without" : "with"} ${l}`, toggled(given, l)]);
      }
      if (given === null || given.length) out.push(["no label", []]);
      return out;
    }
    if (!spans()) {  // every label but the one given (no correction to what it is)
      const same = (l) => Array.isArray(given) && given.length === 1 && String(given[0]) === String(l);
      const labels = project.labels.filter((l) => !same(l));
      const first = proposers(item);  // what the label check and the model propose, first, in that order
      const proposed = [...first.keys()].map((k) => labels.find((l) => String(l) === k)).filter((l) => l !== undefined);
      return [...proposed, ...labels.filter((l) => !first.has(String(l)))]
        .map((l) => [String(l), [l], first.get(String(l))]);
    }
    const key = (l) => JSON.stringify((l || []).map((x) => [x.start, x.end, x.label]));
    const out = [];
    const model = item.suggestion && Array.isArray(item.suggestion.label) ? item.suggestion.label : null;
    if (model && model.length && key(model) !== key(given))
      out.push([`the model's spans: ${labelText(model, item.data)}`, model.map((x) => ({ start: x.start, end: x.end, label: x.label }))]);
    if (!given || given.length) out.push(["no entity", []]);
    return out;
  }

  async function loadFilters() {
    const [members, rounds] = await Promise.all([
      AL.api("GET", `/projects/${pid}/members`), AL.api("GET", `/projects/${pid}/rounds`)]);
    $("f-annotator").append(...members.map((m) => AL.el("option", { value: m.username }, m.username)));
    $("f-label").append(...project.labels.map((l) => AL.el("option", { value: String(l) }, String(l))));
    $("f-reason").append(...Object.values(AL.REASONS).map((r) => AL.el("option", { value: r.value, title: r.description }, r.label)));
    $("f-round").append(...rounds.filter((r) => r.status === AL.STATUS.round.DONE).map((r) => AL.el("option", { value: String(r.number) }, `round ${r.number}`)));
    const reason = new URLSearchParams(location.search).get("reason");
    if (reason) $("f-reason").value = reason;
  }

  function query() {
    const q = new URLSearchParams({ limit: "100" });
    for (const [id, key] of [["f-reason", "reason"], ["f-annotator", "annotator"], ["f-label", "label"], ["f-round", "round"]])
      if ($(id).value) q.set(key, $(id).value);
    return q.toString();
  }

  /* The reasons a card words: a tie and a disagreement on one item say the same once (both
     badges stay): the tie's split of the labels ("no majority: 1 '2', 1 '6'"), or in a span
     project the disagreement's spans in words ("'Oslo' location (1 of 2)"). */
  const said = (reasons) => {
    const kinds = new Set(reasons.map((r) => r.reason));
    if (!kinds.has(AL.REASON.TIE) || !kinds.has(AL.REASON.DISAGREEMENT)) return reasons;
    const quiet = spans() ? AL.REASON.TIE : AL.REASON.DISAGREEMENT;
    return reasons.filter((r) => r.reason !== quiet);
  };

  /* One card per item: the queue has one entry per item and reason. */
  function group(entries) {
    const byItem = new Map();
    for (const e of entries) {
      const item = byItem.get(e.item_id) || { ...e, reasons: [], flags: [] };
      item.reasons.push({ reason: e.reason, detail: e.detail, score: e.score, proposed: e.proposed });
      if (e.flag && !item.flags.some((f) => f.id === e.flag.id)) item.flags.push(e.flag);
      byItem.set(e.item_id, item);
    }
    return [...byItem.values()];
  }

  /* The queue, retried a few times when the server is busy (503) or briefly unreachable. */
  async function fetchQueue() {
    for (let attempt = 0; ; attempt++) {
      try {
        return await AL.api("GET", `/projects/${pid}/review?${query()}`);
      } catch (err) {
        if (!err.network || attempt >= 3) throw err;
        await new Promise((resolve) => setTimeout(resolve, 1000 * (attempt + 1)));
      }
    }
  }

  /* The label check runs in a worker (it trains the project's model on the labels: seconds
     on a large project): what the queue shows of it, whether a newer one is on its way, and,
     once that is done, a button that reads the queue again (never by itself: a reviewer may
     be typing in a card). ``checkShown``: when the check whose findings are on the page
     finished (read before the queue: a check finishing meanwhile shows the button). */
  let checkTimer = null, checkCall = 0, checkShown = null, checkErrors = 0;
  const checking = () => project.task !== "spans" && ["", AL.REASON.LABEL_ISSUE].includes($("f-reason").value);
  const checkStatus = () => AL.api("GET", `/projects/${pid}/label-check`);

  function checkText(c) {
    const job = c.job ? c.job.status : null;
    const when = c.finished_at ? ` (${new Date(c.finished_at).toLocaleTimeString()})` : "";
    const put = `${c.flagged} label${c.flagged === 1 ? "" : "s"} put up`;
    const next = job === AL.STATUS.job.QUEUED ? "a check of the current labels waits for a worker."
      : job === AL.STATUS.job.RUNNING ? "the current labels are being checked."
      : job === AL.STATUS.job.FAILED ? `the last check failed (${c.job.error || "no message"}); it runs again when labels change.`
      : c.next_check_after ? `the next check starts after ${new Date(c.next_check_after).toLocaleTimeString()} (checks rest four times as long as the last one took).`
      : "";
    if (c.state === AL.CHECK.CURRENT) return `Label check: every label checked${when}, ${put}.`;
    if (c.state === AL.CHECK.STALE) return `Label check of earlier labels${when}: ${put}; labels changed since${next ? `: ${next}` : "."}`;
    return next ? `No label check yet: ${next}` : "No label check yet: it starts once enough labels are in.";
  }

  async function showCheck() {
    const call = ++checkCall;  // an answer to an older call is not shown
    clearTimeout(checkTimer);
    const box = $("label-check");
    if (!checking()) { box.hidden = true; return; }
    let c;
    try { c = await checkStatus(); checkErrors = 0; } catch {
      if (call === checkCall) checkTimer = setTimeout(showCheck, Math.min(30000, 3000 * 2 ** ++checkErrors));
      return;
    }
    if (call !== checkCall) return;
    if (c.state === AL.CHECK.OFF) { box.hidden = true; return; }
    $("label-check-text").textContent = checkText(c);
    box.hidden = false;
    // a check finished since the findings on the page: they are a reading away
    $("label-check-show").hidden = !(checkShown !== null && c.finished_at && c.finished_at !== checkShown);
    const job = c.job ? c.job.status : null;
    if (job === AL.STATUS.job.QUEUED || job === AL.STATUS.job.RUNNING) checkTimer = setTimeout(showCheck, 3000);
    // the checks rest: read again once they may start (the read asks for one)
    else if (c.next_check_after) checkTimer = setTimeout(showCheck, Math.max(1000, new Date(c.next_check_after) - Date.now() + 500));
  }

  async function load() {
    document.body.dataset.loaded = "false";
    if (!items.length) $("review-count").textContent = "Reading the review queue…";
    checkShown = null;
    const before = checking() ? await checkStatus().catch(() => null) : null;
    items = group(await fetchQueue());
    $("review-count").textContent = `${items.length} item${items.length === 1 ? "" : "s"} to review`;
    focus = Math.min(focus, Math.max(0, items.length - 1));
    render();
    checkShown = before && before.finished_at ? before.finished_at : "";
    await showCheck();
    document.body.dataset.loaded = "true";
  }

  async function act(request, message) {
    // Busy until the queue is read again: the cards are then rendered anew, and whatever is
    // typed into the old ones meanwhile is gone (tests wait for data-loaded=true).
    document.body.dataset.loaded = "false";
    try { await request(); AL.toast(message); await load(); }
    catch (err) { AL.toast(err.message, "bad"); document.body.dataset.loaded = "true"; }
  }

  function review(item, ann, body, message) {
    const why = document.getElementById(`why-${item.item_id}`);
    const reason = why && why.value.trim() ? why.value.trim() : null;
    return act(() => AL.api("POST", `/projects/${pid}/annotations/${ann.annotation_id}/review`,
      { client_key: AL.uuid(), reason, ...body }), message);
  }

  /* A select of the corrections; ``act(labels, text)`` runs on a choice. */
  /* Who proposes which label of a single-label item (label -> words): the label check's
     likelier label, then the model's, so that among many labels the likely correction is the
     first option rather than one of a hundred. */
  function proposers(item) {
    const by = new Map();
    for (const r of item.reasons)
      if (r.reason === AL.REASON.LABEL_ISSUE) for (const l of r.proposed || []) if (!by.has(String(l))) by.set(String(l), "the label check finds it likelier");
    if (item.suggestion && !Array.isArray(item.suggestion.label) && !by.has(String(item.suggestion.label)))
      by.set(String(item.suggestion.label), `${modelName(item.suggestion)} says so`);
    return by;
  }

  function correctionSelect(item, given, attrs, prompt, act) {
    const options = corrections(item, given);
    const pick = AL.el("select", attrs, AL.el("option", { value: "" }, prompt),
      options.map(([text, , why]) => AL.el("option", { value: text }, why ? `${text} (${why})` : text)));
    pick.disabled = !options.length;
    pick.addEventListener("change", () => {
      const chosen = options.find(([text]) => text === pick.value);
      if (pick.value !== "" && chosen) act(chosen[1], chosen[0]);
    });
    return pick;
  }

  function annotationRow(item, ann) {
    const correct = correctionSelect(item, ann.labels, { "aria-label": `correct the label of ${ann.annotator}` }, "correct to…",
      (labels, text) => review(item, ann, { accept: false, labels }, `Corrected to ${text}.`));
    return AL.el("tr", { dataset: { annotation: String(ann.annotation_id) } },
      AL.el("th", { scope: "row" }, ann.annotator), AL.el("td", { class: "given" }, labelText(ann.labels, item.data)),
      AL.el("td", {}, ann.kind),
      AL.el("td", { class: "row" },
        AL.el("button", { type: "button", class: "accept", "aria-label": `accept ${ann.annotator}'s label`,
          onclick: () => review(item, ann, { accept: true }, "Accepted.") }, "Accept"),
        AL.el("button", { type: "button", class: "danger reject", "aria-label": `reject ${ann.annotator}'s label`,
          onclick: () => review(item, ann, { accept: false }, "Rejected: the label is withdrawn.") }, "Reject"),
        correct));
  }

  function flagBox(flag) {
    const note = AL.el("input", { id: `note-${flag.id}`, placeholder: "what the annotator should know" });
    return AL.el("form", { class: "flag", dataset: { flag: String(flag.id) }, onsubmit: (ev) => {
      ev.preventDefault();
      act(() => AL.api("POST", `/projects/${pid}/flags/${flag.id}/resolve`, { note: note.value || null }), "Flag resolved.");
    } }, AL.el("p", {}, AL.el("strong", {}, `Flagged by ${flag.by}: `), flag.reason),
      AL.el("label", { for: `note-${flag.id}` }, "Note for the annotator"), note,
      AL.el("button", { type: "submit", style: "margin-top:6px" }, "Resolve flag"));
  }

  /* An item nobody labeled yet (e.g. flagged and skipped): the reviewer may label it. */
  function labelIt(item) {
    const pick = correctionSelect(item, null, { id: `label-${item.item_id}`, "aria-label": `label item ${item.external_id} yourself` }, "label it…",
      (labels, text) => act(() => AL.api("POST", `/projects/${pid}/annotations`,
        { item_id: item.item_id, labels, client_key: AL.uuid() }), `Labeled ${text}.`));
    return AL.el("p", { class: "row" }, "Nobody labeled it yet: ", pick);
  }

  /* Models are named by the round that trained them ("the model of round 3"), as on every
     page; a model no round trained keeps its version number. */
  const modelName = (s) => (s.model_round ? `the model of round ${s.model_round}`
    : s.model_version ? `model version ${s.model_version}` : "the active model");

  function card(item, i) {
    return AL.el("article", {
      class: "card review-item" + (i === focus ? " focused" : ""), tabindex: "0", dataset: { item: String(item.item_id), index: String(i) },
      "aria-label": `item ${item.external_id}`, onfocus: () => { focus = i; } },
      AL.el("div", { class: "row between" }, AL.el("h2", {}, `item ${item.external_id}`),
        AL.el("span", { class: "row" }, item.reasons.map((r) => AL.el("span", { class: "badge bad", title: r.detail, dataset: { reason: r.reason } }, AL.REASONS[r.reason] ? AL.REASONS[r.reason].label : r.reason)))),
      AL.el("ul", { class: "muted reasons" }, said(item.reasons).map((r) => AL.el("li", {}, r.detail))),
      AL.el("div", { class: "row", style: "align-items:flex-start;gap:16px" },
        AL.renderData(item.data, { alt: `item ${item.external_id}`, src: { project: pid, item: item.item_id }, thumb: true }),
        spans() && window.ALSpans && item.annotations.length ? ALSpans.review(item, item.annotations) : null,
        AL.el("div", { style: "flex:1;min-width:240px" },
          AL.el("p", {}, "Consensus: ", AL.el("strong", { class: "consensus" }, item.annotations.length ? labelText(item.consensus, item.data) : "no label yet"),
            item.suggestion ? ` · ${modelName(item.suggestion)} says ${labelText(item.suggestion.label, item.data)} (${AL.pct(item.suggestion.confidence)} sure${spans() ? " of its whole tagging" : ""})` : ""),
          item.reasons.some((r) => r.reason === AL.REASON.LABEL_ISSUE) ? AL.el("p", { class: "muted model-note" },
            `The label check above uses a model trained on the other labels, without this item; ${item.suggestion ? modelName(item.suggestion) : "the active model"} has seen it.`) : null,
          item.annotations.length ? AL.el("div", {},
            AL.el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `labels of item ${item.external_id || item.item_id}` }, AL.el("table", {}, AL.el("tbody", {}, item.annotations.map((a) => annotationRow(item, a))))),
            AL.el("label", { for: `why-${item.item_id}` }, "Reason for a rejection or correction (optional)"),
            AL.el("input", { id: `why-${item.item_id}` })) : null,
          item.annotations.length ? null : labelIt(item),
          item.flags.map(flagBox))));
  }

  function render() {
    const list = $("review-list");
    if (!items.length) { list.replaceChildren(AL.el("p", { class: "muted" }, "Nothing to review with these filters.")); return; }
    list.replaceChildren(...items.map(card));
  }

  function onKey(ev) {
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const item = items[focus];
    const focused = () => document.querySelector(`.review-item[data-index="${focus}"]`);
    if (ev.key === "j" || ev.key === "k") {
      focus = Math.max(0, Math.min(items.length - 1, focus + (ev.key === "j" ? 1 : -1)));
      render(); if (focused()) focused().focus(); ev.preventDefault(); return;
    }
    if (!item || !item.annotations.length) return;
    const ann = item.annotations[0];
    if (ev.key === "a") { ev.preventDefault(); review(item, ann, { accept: true }, "Accepted."); }
    else if (ev.key === "r") { ev.preventDefault(); review(item, ann, { accept: false }, "Rejected."); }
    else if (/^\d$/.test(ev.key) && !spans()) {
      const digits = project.labels.every((l) => /^\d$/.test(String(l)));
      const label = digits ? project.labels.find((l) => String(l) === ev.key) : project.labels[ev.key === "0" ? 9 : Number(ev.key) - 1];
      if (label === undefined) return;
      ev.preventDefault();
      // a multi-label answer: the key adds its label or takes it out
      const labels = multi() ? toggled(ann.labels, label) : [label];
      review(item, ann, { accept: false, labels }, `Corrected to ${multi() ? labelText(labels) : label}.`);
    }
  }

  async function start() {
    try {
      project = await AL.project();
      if (!AL.atLeast(project.role, AL.ROLE.REVIEWER)) {
        AL.showState("forbidden", "No access", "Review is for reviewers and owners.",
          [{ href: `/projects/${project.id}/label`, text: "Label instead", primary: true }]);
        return;
      }
      $("keys-correct").hidden = spans();  // a span label is corrected with the select
      if (multi()) $("keys-correct").textContent = "number keys add or take out a label · ";
      await loadFilters();
      $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); focus = 0; load(); });
      $("label-check-show").addEventListener("click", () => load());
      document.addEventListener("keydown", onKey);
      await load();
      AL.markReady();
    } catch (err) { AL.failed(err, start); }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
