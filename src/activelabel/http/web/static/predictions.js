/* The dashboard's card on imported predictions: how often the model a team brought agreed
   with the labels people gave, overall and per predicted label (only when predictions were
   imported). Its own file: the dashboard page loads it beside dashboard.js. */
"use strict";
(() => {
  const pid = document.body.dataset.project;

  function card(c) {
    const pct = AL.pct(c.agreement);
    const words = c.compared
      ? `On ${c.compared} items that have both, the imported predictions agree with people's labels on ${c.agree} (${pct}).`
      : "No item has both an imported prediction and people's labels yet.";
    const scores = c.compared
      ? `Mean score when agreeing: ${AL.pct(c.mean_score_when_agreeing)}; when not: ${AL.pct(c.mean_score_when_disagreeing)}.`
      : "";
    return AL.el("section", { class: "card", id: "predictions-card", "aria-labelledby": "h-predictions", style: "grid-column: 1 / -1" },
      AL.el("h2", { id: "h-predictions" }, "Imported predictions against people's labels"),
      AL.el("p", {}, `${c.predictions} predictions imported on ${c.predicted_items} items; ${c.imported_labels} existing labels imported. ${words}`),
      scores ? AL.el("p", { class: "muted" }, scores) : "",
      c.per_label.length ? AL.el("div", { class: "table-wrap" }, AL.el("table", { id: "predictions-table" },
        AL.el("caption", {}, "Agreement per predicted label"),
        AL.el("thead", {}, AL.el("tr", {}, ["predicted", "items compared", "agree", "agreement"].map((h) => AL.el("th", { scope: "col" }, h)))),
        AL.el("tbody", {}, c.per_label.map((r) => AL.el("tr", {}, AL.el("th", { scope: "row" }, r.label),
          AL.el("td", { class: "num" }, String(r.compared)), AL.el("td", { class: "num" }, String(r.agree)),
          AL.el("td", { class: "num" }, AL.pct(r.agreement))))))) : "");
  }

  document.addEventListener("DOMContentLoaded", async () => {
    if (!pid || !AL.token()) return;
    let c;
    try { c = await AL.api("GET", `/projects/${pid}/predictions/comparison`); }
    catch { return; }  // not a reviewer, or no access: the dashboard says so itself
    if (!c.predictions) return;
    const grid = document.querySelector("main .dash") || document.querySelector("main");
    grid.append(card(c));
  });
})();
