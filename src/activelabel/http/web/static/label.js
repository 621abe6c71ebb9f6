/* Labeling page: one item or a batch grid, keyboard first, prefetched tasks, and an outbox that
   keeps submissions in localStorage until the server has stored them (retried with the same
   client_key, so a retry never adds a second revision). */
"use strict";
(() => {
  const pid = document.body.dataset.project;
  const OUTBOX = `activelabel.outbox.${pid}`;
  let PREFETCH = 10;  // the server's suggestion follows the annotator's own pace (outlook)
  const $ = (id) => document.getElementById(id);

  const state = {
    project: null, labels: [], multilabel: false,
    queue: [],            // tasks in hand, in queue order
    chosen: new Set(),    // single mode: chosen labels of queue[0]
    shownAt: Date.now(),
    skipped: new Set(),   // item ids skipped in this page's life
    done: new Set(),      // item ids submitted (sent or waiting)
    history: [],          // submissions, newest last: {key, item_id, task, labels}
    mode: "single", grid: [], picks: new Map(), focus: 0, gridSize: 20,
    fetching: false, sending: false, retryDelay: 500, retryTimer: null,
    related: new Map(), lastRound: undefined,
  };

  // ---- outbox ---------------------------------------------------------------------------------
  const readOutbox = () => { try { return JSON.parse(localStorage.getItem(OUTBOX) || "[]"); } catch { return []; } };
  const writeOutbox = (list) => { localStorage.setItem(OUTBOX, JSON.stringify(list)); showOutbox(list); };
  function showOutbox(list = readOutbox()) {
    $("outbox").textContent = list.length ? `${list.length} submission${list.length > 1 ? "s" : ""} waiting to be sent…` : "";
  }

  function enqueue(entry) {
    const list = readOutbox();
    list.push(entry);
    writeOutbox(list);
    flush();
  }

  let inFlight = null;
  async function flush() {
    if (state.sending) return;
    state.sending = true;
    clearTimeout(state.retryTimer);
    try {
      for (;;) {
        const list = readOutbox();
        if (!list.length) break;
        const entry = list[0];
        inFlight = entry.client_key;
        try {
          const rev = await AL.api("POST", `/projects/${pid}/annotations`, {
            item_id: entry.item_id, labels: entry.labels, duration_ms: entry.duration_ms,
            client_key: entry.client_key });
          const h = state.history.find((x) => x.key === entry.client_key);
          if (h) h.revision = rev.id;
          state.retryDelay = 500;
        } catch (err) {
          if (err.network) {
            state.retryTimer = setTimeout(flush, state.retryDelay);
            state.retryDelay = Math.min(state.retryDelay * 2, 15000);
            return;
          }
          AL.toast(`A label for item ${entry.item_id} was refused: ${err.message}`, "bad");
        }
        writeOutbox(readOutbox().filter((x) => x.client_key !== entry.client_key));
        refreshProgressSoon();
      }
    } finally {
      inFlight = null;
      state.sending = false;
      showOutbox();
    }
  }
  window.addEventListener("online", flush);

  function waitSent(key) {
    return new Promise((resolve) => {
      const check = () => (readOutbox().some((x) => x.client_key === key) ? setTimeout(check, 200) : resolve());
      check();
    });
  }

  // ---- tasks ----------------------------------------------------------------------------------
  const want = () => (state.mode === "grid" ? state.gridSize + PREFETCH : PREFETCH);

  async function fetchMore() {
    if (state.fetching) return;
    state.fetching = true;
    try {
      const n = Math.min(100, state.queue.length + state.grid.length + want());
      const tasks = await AL.api("GET", `/projects/${pid}/tasks/next?n=${n}`);
      const held = new Set([...state.queue, ...state.grid].map((t) => t.item.id));
      const pendingIds = new Set(readOutbox().map((x) => x.item_id));
      for (const t of tasks) {
        const id = t.item.id;
        if (held.has(id) || state.done.has(id) || pendingIds.has(id)) continue;
        if (state.skipped.has(id)) { release(id); continue; }
        state.queue.push(t);
        held.add(id);
      }
    } catch (err) {
      if (!err.network) AL.toast(err.message, "bad");
    } finally {
      state.fetching = false;
    }
    render();
  }

  function release(itemId) {
    AL.api("POST", `/projects/${pid}/tasks/${itemId}/release`).catch(() => { /* lease gone */ });
  }

  function topUp() {
    const have = state.mode === "grid" ? state.queue.length : state.queue.length - 1;
    if (have < Math.ceil(want() / 2)) fetchMore();
  }

  // ---- rendering ------------------------------------------------------------------------------
  // Labels that are themselves the digits 0-9 get their own digit as key; others 1..9, 0.
  const ownDigits = () => state.labels.length <= 10 && state.labels.every((l) => /^\d$/.test(String(l)));
  const keyOf = (i) => (ownDigits() ? String(state.labels[i]) : i < 9 ? String(i + 1) : i === 9 ? "0" : null);

  function choiceButtons(task, chosen, onPick, mini) {
    const suggested = task && task.suggestion ? [].concat(task.suggestion.label) : [];
    return state.labels.map((label, i) => {
      const key = keyOf(i);
      const b = AL.el("button", {
        type: "button", class: (mini ? "" : "choice") + (suggested.includes(label) ? " suggested" : ""),
        "aria-pressed": chosen.has(label) ? "true" : "false",
        "aria-keyshortcuts": mini ? null : key,
        "aria-label": mini ? `label ${label}` : null,
        dataset: { label: String(label) },
        onclick: (ev) => { ev.stopPropagation(); onPick(label); },
      }, key && !mini ? AL.el("kbd", {}, key) : null, key && !mini ? " " : null, String(label));
      return b;
    });
  }

  function renderSide(task) {
    const sug = $("suggestion");
    if (!task) { sug.textContent = "–"; $("why").textContent = "–"; $("related").replaceChildren(); return; }
    if (state.project.settings.show_suggestions === false) sug.textContent = "Suggestions are turned off for this project.";
    else if (task.suggestion) {
      const label = [].concat(task.suggestion.label).join(", ") || "(none)";
      sug.replaceChildren(AL.el("strong", { id: "suggested-label" }, label), " · confidence ",
        AL.el("span", { id: "suggested-confidence" }, AL.pct(task.suggestion.confidence)),
        AL.el("span", { class: "muted" }, ` (model v${task.suggestion.model_version})`));
    } else sug.textContent = "No model yet: this item comes from the first, diverse batch.";
    const w = task.why;
    $("why").textContent = !w ? "–" : w.detail ? `${w.detail}${w.score !== null ? `, score ${AL.fmt(w.score)}` : ""}${w.model_version ? `, model v${w.model_version}` : ""}` : `${w.strategy}, rank ${(w.rank ?? 0) + 1} of round ${w.round ?? "–"}`;
    renderRelated(task.item.id);
  }

  async function renderRelated(itemId) {
    const box = $("related");
    let found = state.related.get(itemId);
    if (!found) {
      box.replaceChildren(AL.el("p", { class: "muted" }, "Loading…"));
      try { found = await AL.api("GET", `/projects/${pid}/items/${itemId}/related?k=6`); }
      catch { found = []; }
      state.related.set(itemId, found);
    }
    const current = state.mode === "single" ? state.queue[0] : state.grid[state.focus];
    if (!current || current.item.id !== itemId) return;
    box.replaceChildren(...(found.length ? found.map((r) => AL.el("figure", { class: "related-item" },
      AL.renderData(r.data, { compact: true, alt: `labeled example ${r.external_id}` }),
      AL.el("figcaption", {}, AL.el("strong", {}, AL.labelText(r.label)),
        AL.el("span", { class: "muted" }, ` · ${AL.fmt(r.similarity, 2)}`))))
      : [AL.el("p", { class: "muted" }, "No labeled items yet.")]));
  }

  function renderSingle() {
    const task = state.queue[0];
    $("empty").hidden = !!task;
    $("single").hidden = !task;
    if (!task) { renderSide(null); return; }
    if ($("item").dataset.item !== String(task.item.id)) {
      $("item").dataset.item = String(task.item.id);
      $("item").replaceChildren(AL.renderData(task.item.data, { alt: `item ${task.item.external_id}` }),
        AL.el("p", { class: "muted" }, `item ${task.item.external_id}`));
      state.shownAt = Date.now();
      renderSide(task);
    }
    const pick = (label) => {
      if (state.multilabel) state.chosen.has(label) ? state.chosen.delete(label) : state.chosen.add(label);
      else state.chosen = new Set([label]);
      renderSingle();
    };
    $("choices").replaceChildren(...choiceButtons(task, state.chosen, pick, false));
  }

  function fillGrid() {
    if (state.grid.length > state.gridSize) {  // smaller grid: the rest goes back in line
      const extra = state.grid.splice(state.gridSize);
      for (const t of extra) state.picks.delete(t.item.id);
      state.queue.unshift(...extra);
    }
    while (state.grid.length < state.gridSize && state.queue.length) state.grid.push(state.queue.shift());
    // similar items side by side: grouped by the model's suggestion, most confident first
    state.grid.sort((a, b) => {
      const la = a.suggestion ? String(a.suggestion.label) : "", lb = b.suggestion ? String(b.suggestion.label) : "";
      if (la !== lb) return la < lb ? -1 : 1;
      return (b.suggestion ? b.suggestion.confidence : 0) - (a.suggestion ? a.suggestion.confidence : 0);
    });
  }

  function renderGrid() {
    fillGrid();
    $("empty").hidden = state.grid.length > 0;
    $("gridview").hidden = state.grid.length === 0;
    state.focus = Math.min(state.focus, Math.max(0, state.grid.length - 1));
    const cells = state.grid.map((task, i) => {
      const picked = state.picks.get(task.item.id);
      const chosen = new Set(picked || []);
      const cell = AL.el("div", {
        class: "cell" + (i === state.focus ? " focused" : ""), role: "gridcell", tabindex: i === state.focus ? "0" : "-1",
        "aria-label": `item ${task.item.external_id}${picked ? ", labeled " + picked.join(", ") : ""}`,
        dataset: { item: String(task.item.id), index: String(i) },
        onclick: () => { state.focus = i; renderGrid(); focusCell(); },
      }, AL.renderData(task.item.data, { compact: true, alt: `item ${task.item.external_id}` }),
      AL.el("div", { class: "pick" }, picked ? picked.join(", ") : ""),
      AL.el("div", { class: "mini-choices" }, choiceButtons(task, chosen, (label) => {
        state.focus = i; pickGrid(label, false);
      }, true)));
      return cell;
    });
    $("grid").replaceChildren(...cells);
    if (state.grid[state.focus]) renderSide(state.grid[state.focus]);
  }

  function focusCell() {
    const cell = $("grid").querySelector(`[data-index="${state.focus}"]`);
    if (cell) cell.focus();
  }

  function render() {
    $("single").hidden = state.mode !== "single";
    $("gridview").hidden = state.mode !== "grid";
    if (state.mode === "single") renderSingle(); else renderGrid();
    topUp();
  }

  // ---- actions --------------------------------------------------------------------------------
  function submitTask(task, labels, durationMs) {
    const entry = { client_key: AL.uuid(), item_id: task.item.id, labels, duration_ms: Math.max(0, Math.round(durationMs)) };
    state.done.add(task.item.id);
    state.history.push({ key: entry.client_key, item_id: task.item.id, task, labels });
    enqueue(entry);
  }

  function submit() {
    if (state.mode === "grid") return submitGrid();
    const task = state.queue[0];
    if (!task) return;
    if (!state.chosen.size && !state.multilabel) { AL.toast("Choose a label first: press its number key."); return; }
    const ordered = state.labels.filter((l) => state.chosen.has(l));
    submitTask(task, ordered, Date.now() - state.shownAt);
    state.queue.shift();
    state.chosen = new Set();
    render();
  }

  function submitGrid() {
    const ready = state.grid.filter((t) => state.picks.has(t.item.id));
    if (!ready.length) { AL.toast("Label some items first: number keys label the focused one."); return; }
    const each = (Date.now() - state.shownAt) / ready.length;
    for (const t of ready) { submitTask(t, state.picks.get(t.item.id), each); state.picks.delete(t.item.id); }
    state.grid = state.grid.filter((t) => !ready.includes(t));
    state.focus = 0;
    state.shownAt = Date.now();
    AL.toast(`${ready.length} labels submitted.`);
    render();
    focusCell();
  }

  function pickGrid(label, all) {
    const targets = all ? state.grid.filter((t) => !state.picks.has(t.item.id)) : [state.grid[state.focus]];
    for (const t of targets) {
      if (!t) continue;
      if (state.multilabel && !all) {
        const cur = new Set(state.picks.get(t.item.id) || []);
        cur.has(label) ? cur.delete(label) : cur.add(label);
        if (cur.size) state.picks.set(t.item.id, state.labels.filter((l) => cur.has(l)));
        else state.picks.delete(t.item.id);
      } else state.picks.set(t.item.id, [label]);
    }
    if (!all && !state.multilabel) {
      const next = state.grid.findIndex((t, i) => i > state.focus && !state.picks.has(t.item.id));
      if (next >= 0) state.focus = next;
    }
    renderGrid();
    focusCell();
  }

  async function undo() {
    const last = state.history.pop();
    if (!last) { AL.toast("Nothing to undo."); return; }
    const waiting = readOutbox();
    if (waiting.some((x) => x.client_key === last.key) && inFlight !== last.key) {
      writeOutbox(waiting.filter((x) => x.client_key !== last.key));  // never sent: nothing stored
    } else {
      await waitSent(last.key);
      try { await AL.api("POST", `/projects/${pid}/items/${last.item_id}/undo`); }
      catch (err) { AL.toast(`Undo failed: ${err.message}`, "bad"); state.history.push(last); return; }
    }
    state.done.delete(last.item_id);
    if (state.mode === "grid") {
      state.grid.unshift(last.task);
      state.picks.set(last.item_id, last.labels);
      state.focus = 0;
    } else {
      state.queue.unshift(last.task);
      state.chosen = new Set(last.labels);
      $("item").dataset.item = "";
    }
    AL.toast(`Undone: item ${last.task.item.external_id} is back (${last.labels.join(", ")}).`);
    refreshProgressSoon();
    render();
    if (state.mode === "grid") focusCell();
  }

  function current() { return state.mode === "grid" ? state.grid[state.focus] : state.queue[0]; }

  function drop(task) {
    if (state.mode === "grid") { state.grid = state.grid.filter((t) => t !== task); state.picks.delete(task.item.id); }
    else { state.queue = state.queue.filter((t) => t !== task); state.chosen = new Set(); }
  }

  function skip() {
    const task = current();
    if (!task) return;
    state.skipped.add(task.item.id);
    release(task.item.id);
    drop(task);
    render();
    if (state.mode === "grid") focusCell();
  }

  function openFlag() {
    if (!current()) return;
    $("flag-reason").value = "";
    AL.openDialog($("flag-dialog"));
  }

  async function sendFlag(ev) {
    ev.preventDefault();
    const task = current();
    const reason = $("flag-reason").value.trim();
    if (!task || !reason) return;
    AL.closeDialog($("flag-dialog"));
    try {
      await AL.api("POST", `/projects/${pid}/flags`, { item_id: task.item.id, reason });
      AL.toast(`Flagged item ${task.item.external_id}: a reviewer will look at it.`);
      refreshFlags();
      skip();
    } catch (err) { AL.toast(`Flag failed: ${err.message}`, "bad"); }
  }

  function setMode(mode) {
    if (mode === state.mode) return;
    if (mode === "single") { state.queue = [...state.grid, ...state.queue]; state.grid = []; state.picks.clear(); }
    else { state.chosen = new Set(); }
    state.mode = mode;
    $("mode-" + mode).checked = true;
    $("item").dataset.item = "";
    state.shownAt = Date.now();
    render();
    if (mode === "grid") focusCell();
  }

  // ---- keyboard -------------------------------------------------------------------------------
  function digitIndex(ev) {
    const m = /^(?:Digit|Numpad)(\d)$/.exec(ev.code || "");
    const d = m ? m[1] : (/^\d$/.test(ev.key) ? ev.key : null);
    if (d === null) return -1;
    if (ownDigits()) return state.labels.findIndex((l) => String(l) === d);
    return d === "0" ? 9 : Number(d) - 1;
  }

  function onKey(ev) {
    if (document.querySelector("dialog[open]")) return;
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const idx = digitIndex(ev);
    if (idx >= 0) {
      if (idx < 0 || idx >= state.labels.length) return;
      ev.preventDefault();
      const label = state.labels[idx];
      if (state.mode === "grid") pickGrid(label, ev.shiftKey);
      else {
        if (state.multilabel) state.chosen.has(label) ? state.chosen.delete(label) : state.chosen.add(label);
        else state.chosen = new Set([label]);
        renderSingle();
      }
      return;
    }
    const key = ev.key;
    if (key === "Enter") {
      if (t && (t.tagName === "A" || (t.tagName === "BUTTON" && !t.dataset.label && t.closest(".actions")))) return;
      ev.preventDefault(); submit();
    } else if (key === "Backspace" || key === "z" || key === "Z") { ev.preventDefault(); undo(); }
    else if (key === "s" || key === "S") { ev.preventDefault(); skip(); }
    else if (key === "f" || key === "F") { ev.preventDefault(); openFlag(); }
    else if (key === "g" || key === "G") { ev.preventDefault(); setMode(state.mode === "grid" ? "single" : "grid"); }
    else if (key === "?") { ev.preventDefault(); AL.openDialog($("keys-dialog")); }
    else if (state.mode === "grid" && key.startsWith("Arrow")) {
      ev.preventDefault();
      const cols = Math.max(1, Math.round($("grid").clientWidth / (($("grid").firstElementChild || {}).offsetWidth || 160)));
      const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -cols, ArrowDown: cols }[key];
      state.focus = Math.max(0, Math.min(state.grid.length - 1, state.focus + step));
      renderGrid(); focusCell();
    }
  }

  // ---- progress -------------------------------------------------------------------------------
  let progressTimer = null;
  function refreshProgressSoon() { clearTimeout(progressTimer); progressTimer = setTimeout(refreshProgress, 400); }

  async function refreshProgress() {
    let p;
    try { p = await AL.api("GET", `/projects/${pid}/progress`); } catch { return; }
    const b = p.batch;
    $("batch-progress").textContent = p.round === null ? "No round yet"
      : `Round ${p.round}: ${b.labeled} of ${b.selected} done`;
    $("batch-bar").style.width = b.selected ? `${Math.min(100, (100 * b.labeled) / b.selected)}%` : "0";
    $("next-model").textContent = p.round_pending !== null ? `Round ${p.round_pending} is training…`
      : `${p.labels_since_round} of ${p.retrain_every_labels} to the next model`;
    const speed = p.me.labels_per_hour ? ` · ${Math.round(p.me.labels_per_hour)}/hour` : "";
    $("my-count").textContent = `You: ${p.me.labels} labels${speed}`;
    const lr = p.last_round;
    if (lr && lr.accuracy !== null && lr.accuracy !== undefined) {
      const gain = lr.gain && lr.gain.accuracy !== undefined ? ` (${lr.gain.accuracy >= 0 ? "+" : ""}${(100 * lr.gain.accuracy).toFixed(1)} points)` : "";
      $("last-gain").textContent = `Model of round ${lr.number}: accuracy ${AL.pct(lr.accuracy)}${gain}`;
    } else $("last-gain").textContent = "";
    if (state.lastRound !== undefined && p.round !== state.lastRound && lr) {
      AL.toast(`A new model is ready (round ${lr.number})${lr.gain ? `: accuracy ${lr.gain.accuracy >= 0 ? "+" : ""}${(100 * lr.gain.accuracy).toFixed(1)} points` : ""}.`);
    }
    state.lastRound = p.round;
    refreshOutlook();
  }

  /* The last round's stopping verdicts and the forecast to the target, and this annotator's
     prefetch, from the outlook. */
  async function refreshOutlook() {
    let o;
    try { o = await AL.api("GET", `/projects/${pid}/outlook`); } catch { return; }
    if (o.prefetch) PREFETCH = o.prefetch;
    const stops = o.verdicts.filter((v) => v.stop).map((v) => v.reason);
    $("outlook").textContent = stops.length ? `Stopping rules say stop: ${stops.join("; ")}`
      : (o.forecast.target !== null ? `Forecast: ${o.forecast.text}` : "");
  }

  // ---- the caller's flags and the reviewers' notes on them -------------------------------------
  async function refreshFlags() {
    const me = AL.user();
    let flags;
    try { flags = await AL.api("GET", `/projects/${pid}/flags?unresolved_only=false`); } catch { return; }
    flags = flags.filter((f) => !me || f.user_id === me.id).reverse();
    const resolved = flags.filter((f) => f.resolved_at);
    $("my-flags-count").textContent = `(${resolved.length} answered, ${flags.length - resolved.length} open)`;
    $("my-flags").replaceChildren(...flags.slice(0, 20).map((f) => AL.el("li", { dataset: { flag: String(f.id) } },
      AL.el("span", {}, `item ${f.item_id}: “${f.reason}” — `),
      f.resolved_at ? AL.el("strong", { class: "note" }, f.resolution_note ? `reviewer: ${f.resolution_note}` : "resolved")
        : AL.el("span", { class: "muted" }, "waiting for a reviewer"))));
    if (resolved.length > (state.seenResolved || 0)) $("my-flags-box").open = true;  // news for the annotator
    if (resolved.length && state.seenResolved !== undefined && resolved.length > state.seenResolved)
      AL.toast("A reviewer answered one of your flags (see Your flags).");
    state.seenResolved = resolved.length;
  }

  // ---- start ----------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", async () => {
    let project;
    try { project = await AL.project(); } catch (err) { AL.toast(err.message, "bad"); return; }
    state.project = project;
    if (project.task === "spans" && window.ALSpans) { window.ALSpans.start(project); return; }  // spans.js
    state.labels = project.labels;
    state.multilabel = project.task === "multilabel";
    $("guidelines").textContent = project.guidelines || "No guidelines yet.";
    $("guidelines-version").textContent = `(version ${project.guidelines_version})`;
    $("submit").addEventListener("click", submit);
    $("skip").addEventListener("click", skip);
    $("flag").addEventListener("click", openFlag);
    $("undo").addEventListener("click", undo);
    $("grid-submit").addEventListener("click", submitGrid);
    $("grid-undo").addEventListener("click", undo);
    $("flag-form").addEventListener("submit", sendFlag);
    $("flag-cancel").addEventListener("click", () => AL.closeDialog($("flag-dialog")));
    $("show-keys").addEventListener("click", () => AL.openDialog($("keys-dialog")));
    $("keys-close").addEventListener("click", () => AL.closeDialog($("keys-dialog")));
    document.querySelectorAll("input[name=mode]").forEach((r) => r.addEventListener("change", () => setMode(r.value)));
    $("grid-size").addEventListener("change", () => { state.gridSize = Number($("grid-size").value); render(); });
    document.addEventListener("keydown", onKey);
    for (const e of readOutbox()) state.done.add(e.item_id);
    showOutbox();
    flush();  // what a previous page left unsent
    refreshProgress();
    refreshFlags();
    setInterval(refreshProgress, 15000);
    setInterval(refreshFlags, 30000);
    setInterval(() => { if (!current()) fetchMore(); }, 5000);
    await fetchMore();
  });
})();
