/* Reviewers: filter labeled and flagged items; accept, reject or correct a label (each a new
   revision); resolve flags with a note the annotator sees. */
"use strict";
(() => {
  const pid = document.body.dataset.project;
  const $ = (id) => document.getElementById(id);
  let project = null, entries = [], focus = 0;

  const labelText = (l) => (l === null || l === undefined ? "tie" : [].concat(l).join(", ") || "(none)");

  async function loadFilters() {
    const [members, rounds] = await Promise.all([
      AL.api("GET", `/projects/${pid}/members`), AL.api("GET", `/projects/${pid}/rounds`)]);
    $("f-annotator").append(...members.map((m) => AL.el("option", { value: m.username }, m.username)));
    $("f-label").append(...project.labels.map((l) => AL.el("option", { value: String(l) }, String(l))));
    $("f-round").append(...rounds.filter((r) => r.status === "done").map((r) => AL.el("option", { value: String(r.number) }, `round ${r.number}`)));
    const reason = new URLSearchParams(location.search).get("reason");
    if (reason) $("f-reason").value = reason;
  }

  function query() {
    const q = new URLSearchParams({ limit: "50" });
    const reason = $("f-reason").value;
    if (reason) q.set(reason, "true");
    for (const [id, key] of [["f-annotator", "annotator"], ["f-label", "label"], ["f-round", "round"]])
      if ($(id).value) q.set(key, $(id).value);
    return q.toString();
  }

  async function load() {
    entries = await AL.api("GET", `/projects/${pid}/annotations?${query()}`);
    $("review-count").textContent = `${entries.length} item${entries.length === 1 ? "" : "s"}${entries.length === 50 ? " (first 50)" : ""}`;
    focus = Math.min(focus, Math.max(0, entries.length - 1));
    render();
    document.body.dataset.loaded = "true";
  }

  async function act(request, message) {
    try { await request(); AL.toast(message); await load(); }
    catch (err) { AL.toast(err.message, "bad"); }
  }

  const review = (ann, body, message) => act(() => AL.api("POST", `/projects/${pid}/annotations/${ann.annotation_id}/review`,
    { client_key: AL.uuid(), ...body }), message);

  function annotationRow(entry, ann) {
    const correct = AL.el("select", { "aria-label": `correct the label of ${ann.annotator}` },
      AL.el("option", { value: "" }, "correct to…"), project.labels.map((l) => AL.el("option", { value: String(l) }, String(l))));
    correct.addEventListener("change", () => {
      const label = project.labels.find((l) => String(l) === correct.value);
      if (label !== undefined) review(ann, { accept: false, labels: [label] }, `Corrected to ${label}.`);
    });
    return AL.el("tr", { dataset: { annotation: String(ann.annotation_id) } },
      AL.el("th", { scope: "row" }, ann.annotator), AL.el("td", { class: "given" }, labelText(ann.labels)),
      AL.el("td", {}, ann.kind + (ann.round ? ` · round ${ann.round}` : "")),
      AL.el("td", { class: "row" },
        AL.el("button", { type: "button", class: "accept", "aria-label": `accept ${ann.annotator}'s label`,
          onclick: () => review(ann, { accept: true }, "Accepted.") }, "Accept"),
        AL.el("button", { type: "button", class: "danger reject", "aria-label": `reject ${ann.annotator}'s label`,
          onclick: () => review(ann, { accept: false }, "Rejected: the label is withdrawn.") }, "Reject"),
        correct));
  }

  function flagBox(flag) {
    const note = AL.el("input", { id: `note-${flag.id}`, placeholder: "what the annotator should know" });
    return AL.el("form", { class: "flag", dataset: { flag: String(flag.id) }, onsubmit: (ev) => {
      ev.preventDefault();
      act(() => AL.api("POST", `/projects/${pid}/flags/${flag.id}/resolve`, { note: note.value || null }), "Flag resolved.");
    } }, AL.el("p", {}, AL.el("strong", {}, "Flagged: "), flag.reason),
      AL.el("label", { for: `note-${flag.id}` }, "Note for the annotator"), note,
      AL.el("button", { type: "submit", style: "margin-top:6px" }, "Resolve flag"));
  }

  function render() {
    const list = $("review-list");
    if (!entries.length) { list.replaceChildren(AL.el("p", { class: "muted" }, "Nothing to review with these filters.")); return; }
    list.replaceChildren(...entries.map((e, i) => AL.el("article", {
      class: "card review-item" + (i === focus ? " focused" : ""), tabindex: "0", dataset: { item: String(e.item_id), index: String(i) },
      "aria-label": `item ${e.external_id}`, onfocus: () => { focus = i; } },
      AL.el("div", { class: "row between" }, AL.el("h2", {}, `item ${e.external_id}`),
        AL.el("span", {}, e.flags.length ? AL.el("span", { class: "badge bad" }, "flagged") : null, " ",
          e.model_disagrees ? AL.el("span", { class: "badge bad" }, "model disagrees") : null)),
      AL.el("div", { class: "row", style: "align-items:flex-start;gap:16px" },
        AL.renderData(e.data, { alt: `item ${e.external_id}` }),
        AL.el("div", { style: "flex:1;min-width:240px" },
          AL.el("p", {}, "Consensus: ", AL.el("strong", { class: "consensus" }, e.annotations.length ? labelText(e.consensus) : "no label yet"),
            e.suggestion ? ` · model: ${labelText(e.suggestion.label)} (${AL.pct(e.suggestion.confidence)})` : ""),
          e.annotations.length ? AL.el("div", { class: "table-wrap" }, AL.el("table", {}, AL.el("tbody", {}, e.annotations.map((a) => annotationRow(e, a))))) : null,
          e.flags.map(flagBox))))));
  }

  function onKey(ev) {
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const e = entries[focus];
    const card = () => document.querySelector(`.review-item[data-index="${focus}"]`);
    if (ev.key === "j" || ev.key === "k") {
      focus = Math.max(0, Math.min(entries.length - 1, focus + (ev.key === "j" ? 1 : -1)));
      render(); if (card()) card().focus(); ev.preventDefault(); return;
    }
    if (!e || !e.annotations.length) return;
    const ann = e.annotations[0];
    if (ev.key === "a") { ev.preventDefault(); review(ann, { accept: true }, "Accepted."); }
    else if (ev.key === "r") { ev.preventDefault(); review(ann, { accept: false }, "Rejected."); }
    else if (/^\d$/.test(ev.key)) {
      const digits = project.labels.every((l) => /^\d$/.test(String(l)));
      const label = digits ? project.labels.find((l) => String(l) === ev.key) : project.labels[ev.key === "0" ? 9 : Number(ev.key) - 1];
      if (label !== undefined) { ev.preventDefault(); review(ann, { accept: false, labels: [label] }, `Corrected to ${label}.`); }
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    try {
      project = await AL.project();
      if (AL.RANK[project.role] < AL.RANK.reviewer) {
        document.querySelector("main").replaceChildren(AL.el("p", {}, "Review is for reviewers and owners."));
        return;
      }
      await loadFilters();
      $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); focus = 0; load(); });
      document.addEventListener("keydown", onKey);
      await load();
    } catch (err) { AL.toast(err.message, "bad"); }
  });
})();
