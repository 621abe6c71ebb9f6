/* Labeling page: one item or a batch grid, keyboard first, prefetched tasks, and an outbox that
   keeps submissions in localStorage until the server has stored them (retried with the same
   client_key, so a retry never adds a second revision). */
"use strict";
(() => {
  const pid = document.body.dataset.project;
  const OUTBOX = `activelabel.outbox.${pid}`;
  const HOLDING_LISTED = 200;  // the most leases the progress lists (MAX_TASKS)
  let PREFETCH = 10;  // the server's suggestion follows the annotator's own pace (outlook)
  const $ = (id) => document.getElementById(id);
  const Connection = AL.connection;

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
    related: new Map(), lastRound: undefined, expanded: new Set(), filter: "",
    keys: null, byKey: new Map(), progress: null,
    fetches: 0,           // answers of tasks/next so far (their group numbers are their own)
    own: false,           // a task type's own widget (spans.js) holds the stage
  };

  // ---- outbox ---------------------------------------------------------------------------------
  const readOutbox = () => { try { return JSON.parse(localStorage.getItem(OUTBOX) || "[]"); } catch { return []; } };
  const writeOutbox = (list) => { localStorage.setItem(OUTBOX, JSON.stringify(list)); showOutbox(list); };
  function showOutbox(list = readOutbox()) {
    Connection.setWaiting(list.length);
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
  /* The server is back: send what waits now (no back-off), then fetch items again. */
  Connection.onBack(() => { state.retryDelay = 500; flush(); if (!current()) fetchMore(); });

  function waitSent(key) {
    return new Promise((resolve) => {
      const check = () => (readOutbox().some((x) => x.client_key === key) ? setTimeout(check, 200) : resolve());
      check();
    });
  }

  /* Take one submission back: dropped from the outbox while it waits unsent (nothing was
     stored: false), else, once the server has it, withdrawn there by a new revision (true). */
  async function withdraw(key, itemId) {
    const waiting = readOutbox();
    if (waiting.some((x) => x.client_key === key) && inFlight !== key) {
      writeOutbox(waiting.filter((x) => x.client_key !== key));
      return false;
    }
    await waitSent(key);
    await AL.api("POST", `/projects/${pid}/items/${itemId}/undo`);
    return true;
  }

  // ---- tasks ----------------------------------------------------------------------------------
  const want = () => (state.mode === "grid" ? state.gridSize + PREFETCH : PREFETCH);

  async function fetchMore() {
    if (state.fetching || state.own) return;
    state.fetching = true;
    state.fetchesStarted = (state.fetchesStarted || 0) + 1;
    try {
      // the server hands back the caller's own leases first, then new ones: asking for every
      // item in hand (and those labeled but not yet sent, still leased) and more brings back
      // each one still held
      const pendingIds = new Set(readOutbox().map((x) => x.item_id));
      const inHandCount = state.queue.length + state.grid.length + pendingIds.size;
      const n = Math.min(100, inHandCount + want());
      const tasks = await AL.api("GET", `/projects/${pid}/tasks/next?n=${n}`);
      // a short answer holds every lease of the caller; a full one may leave some out (a
      // second tab's, say): then the progress's list of leases decides, asked for at once
      if (tasks.length < n) dropLost(new Set(tasks.map((t) => t.item.id)));
      else refreshProgressSoon();
      const inHand = new Map([...state.queue, ...state.grid].map((t) => [t.item.id, t]));
      const held = new Set(inHand.keys());
      // after_answer: a group number holds within one answer (which renews the items in
      // hand too: they take this answer's numbers)
      const fetch = ++state.fetches;
      for (const t of tasks) {
        t.groupKey = t.group === null || t.group === undefined ? null : `${fetch}.${t.group}`;
        if (inHand.has(t.item.id)) {
          inHand.get(t.item.id).groupKey = t.groupKey;
          inHand.get(t.item.id).lease_expires_at = t.lease_expires_at;  // renewed
        }
      }
      noteSkew(tasks);
      let added = 0;
      for (const t of tasks) {
        const id = t.item.id;
        if (held.has(id) || state.done.has(id) || pendingIds.has(id)) continue;
        if (state.skipped.has(id)) { release(id); continue; }
        state.queue.push(t);
        held.add(id);
        added += 1;
      }
      // nothing new (a small or drained queue): no topping up for a while, or every render
      // would ask again at once; the page's 5 s check still looks for new items
      state.dryUntil = added ? 0 : Date.now() + 5000;
    } catch (err) {
      if (!err.network) AL.toast(err.message, "bad");
    } finally {
      state.fetching = false;
    }
    render();
  }

  /* Items waiting in the buffer (not on screen, not brought back by an undo) whose lease the
     server no longer holds for this annotator: purged by the project's owner, or expired while
     the page sat idle (and maybe taken by someone else). They are not shown: a label for them
     would teach nothing (purged) or label an item twice. Checked at each task fetch and each
     progress refresh (15 s). */
  function dropLost(held) {
    const shown = current();
    const kept = (t) => t === shown || t.undone || held.has(t.item.id);
    const before = state.queue.length + state.grid.length;
    state.queue = state.queue.filter(kept);
    // the grid: a cell already given a label stays too (the annotator's choice, not sent yet)
    state.grid = state.grid.filter((t) => kept(t) || state.picks.has(t.item.id));
    if (state.queue.length + state.grid.length === before) return;
    if (state.mode === "grid") {
      state.focus = Math.max(0, state.grid.indexOf(shown));
      render();
      focusCell();
    } else topUp();
  }

  /* The server's clock against this one, from a fetch's answer: a lease granted or renewed
     now ends lease_seconds from now. */
  function noteSkew(tasks) {
    const leaseMs = 1000 * (settings().lease_seconds || 0);
    if (tasks.length && leaseMs) state.skew = Date.parse(tasks[0].lease_expires_at) - leaseMs - Date.now();
  }

  /* Whether ``task``'s lease has ended by the server's clock (as last estimated): checked when
     a task is about to be shown, so that an item whose lease ran out while the page slept
     (timers stopped, no progress heard) is not shown; it is dropped unseen. */
  function leaseGone(task) {
    if (task.undone || !task.lease_expires_at || state.skew === undefined) return false;
    return Date.parse(task.lease_expires_at) <= Date.now() + state.skew;
  }

  function release(itemId) {
    AL.api("POST", `/projects/${pid}/tasks/${itemId}/release`).catch(() => { /* lease gone */ });
  }

  function topUp() {
    if (Date.now() < (state.dryUntil || 0)) return;
    const have = state.mode === "grid" ? state.queue.length : state.queue.length - 1;
    if (have < Math.ceil(want() / 2)) fetchMore();
  }

  // ---- rendering ------------------------------------------------------------------------------
  const PALETTE = ["#0b5cad", "#1a7f37", "#9a6700", "#8250df", "#c62828", "#0a7b83", "#bc4c00", "#57606a", "#bf3989", "#4d6b00"];
  const settings = () => (state.project && state.project.settings) || {};

  /* Each label's key: the project's own (label_keys), else the label's own digit when every
     label is a digit, else 1-9 and 0 in label order; the rest are found by typing. */
  function assignKeys() {
    const own = settings().label_keys || {};
    const keys = new Map();
    const used = new Set(Object.values(own).map((k) => k.toLowerCase()));
    for (const l of state.labels) if (own[String(l)]) keys.set(l, own[String(l)]);
    const digits = state.labels.length <= 10 && state.labels.every((l) => /^\d$/.test(String(l)));
    const free = [..."1234567890"].filter((k) => !used.has(k));
    for (const l of state.labels) {
      if (keys.has(l)) continue;
      if (digits && !used.has(String(l))) keys.set(l, String(l));
      else if (!digits && free.length) keys.set(l, free.shift());
    }
    state.keys = keys;
    state.byKey = new Map([...keys].map(([l, k]) => [k.toLowerCase(), l]));
  }
  const keyOf = (label) => (state.keys ? state.keys.get(label) || null : null);
  const colorOf = (label) => {
    const own = (settings().label_colors || {})[String(label)];
    return own || PALETTE[Math.max(0, state.labels.indexOf(label)) % PALETTE.length];
  };

  /* The suggestion the page may show for ``task``: none when the project hides it (never,
     or after_answer before an answer). The server hands out no suggestion less sure than the
     project's threshold (suggestion_min_confidence): the page has no threshold of its own.
     Under after_answer an annotator's tasks carry none: it comes with the answer (reveal). */
  const display = () => (settings().show_suggestions === false ? "never" : settings().suggestion_display || "after_answer");
  function shownSuggestion(task, answered) {
    const s = task && task.suggestion;
    if (!s || display() === "never") return null;
    if (display() === "after_answer" && !answered) return null;
    return s;
  }
  /* Whether the server holds the task's suggestion back until an answer (after_answer, for
     annotators: the task names only its group) and the answer has not brought it yet. */
  const awaitingAnswer = (task) => !!task && task.groupKey !== null && task.groupKey !== undefined && !task.revealed;

  /* after_answer: send the annotator's answers (chosen, not submitted) for the suggestions
     of ``entries`` ([task, labels] pairs), then show them. */
  const revealing = new Set();
  async function reveal(entries) {
    const wanted = entries.filter(([t, labels]) => awaitingAnswer(t) && labels.length && !revealing.has(t.item.id));
    if (!wanted.length) return;
    for (const [t] of wanted) revealing.add(t.item.id);
    try {
      const found = await AL.api("POST", `/projects/${pid}/tasks/suggestions`, {
        answers: wanted.map(([t, labels]) => ({ item_id: t.item.id, labels })) });
      const byId = new Map(found.map((a) => [a.item_id, a.suggestion]));
      for (const [t] of wanted) if (byId.has(t.item.id)) { t.suggestion = byId.get(t.item.id); t.revealed = true; }
    } catch (err) {
      if (!err.network) AL.toast(err.message, "bad");
      return;
    } finally {
      for (const [t] of wanted) revealing.delete(t.item.id);
    }
    if (state.mode === "grid") renderGrid(); else if (wanted.some(([t]) => t === state.queue[0])) renderSingle();
  }
  function revealPicked() {
    reveal(state.grid.filter((t) => state.picks.has(t.item.id)).map((t) => [t, state.picks.get(t.item.id)]));
  }

  const modelName = (s) => (s.source === "imported" ? `imported prediction${s.model ? " of " + s.model : ""}`
    : s.model_round ? `the model of round ${s.model_round}` : `model version ${s.model_version}`);

  function choiceButtons(task, chosen, onPick, mini, answered) {
    const shown = shownSuggestion(task, answered);
    const suggested = shown ? [].concat(shown.label) : [];
    const filter = mini ? "" : state.filter;
    return state.labels.filter((label) => !filter || String(label).toLowerCase().includes(filter)).map((label) => {
      const key = keyOf(label);
      const isSuggested = suggested.includes(label);
      const b = AL.el("button", {
        type: "button", class: (mini ? "mini" : "choice") + (isSuggested ? " suggested" : ""),
        "aria-pressed": chosen.has(label) ? "true" : "false",
        "aria-keyshortcuts": mini || !key ? null : key,
        style: `--label-color:${colorOf(label)}`,
        dataset: { label: String(label) },
        onclick: (ev) => { ev.stopPropagation(); onPick(label); },
      }, key && !mini ? AL.el("kbd", {}, key) : null, key && !mini ? " " : null, String(label),
      isSuggested && !mini ? AL.el("span", { class: "tag" }, " model") : null);
      return b;
    });
  }

  /* The suggestion line above the labels: the model's label, how sure it is and which model. */
  function renderSuggestion(task) {
    const line = $("suggestion");
    const answered = state.chosen.size > 0;
    const s = shownSuggestion(task, answered);
    const raw = task && task.suggestion;
    if (s) {
      const label = AL.labelText(s.label);
      const agree = answered ? ([].concat(s.label).every((l) => state.chosen.has(l)) ? " · you agree" : " · you chose otherwise: check before submitting") : "";
      line.replaceChildren(AL.el("span", { class: "tag strong" }, "Model suggests"), " ",
        AL.el("strong", { id: "suggested-label", style: `--label-color:${colorOf([].concat(s.label)[0])}`, class: "swatch" }, label),
        s.confidence === null || s.confidence === undefined ? ` (${modelName(s)})${agree}`
          : ` (${AL.pct(s.confidence)} sure, ${modelName(s)})${agree}`);
    } else if (display() === "never") line.textContent = "";
    else if (!raw && !awaitingAnswer(task)) line.textContent = hasModel(task) ? "The model has no confident guess for this item." : "No model suggestion for this item.";
    else line.textContent = "The model's suggestion shows once you have chosen.";
  }

  /* Whether a trained model stands behind the tasks (the seed round trains none): the task
     says so, else (gold mixed in: no "why" for annotators) the last round's holdout score. */
  function hasModel(task) {
    if (task && task.why) return !!task.why.model_version;
    const last = state.progress && state.progress.last_round;
    return !!(last && last.accuracy !== null && last.accuracy !== undefined);
  }

  /* Why the item was picked, in a labeler's words; the strategy and numbers on demand. */
  function whyText(task) {
    const w = task.why, s = task.suggestion;
    if (!w) return "Picked by the project's queue.";
    if (w.ranked_by === "audit") return "Drawn at random to check how good the model is.";
    if (w.ranked_by === "random" || !w.model_version) return "Part of a varied first sample, before any model.";
    const named = s && s.runner_up !== null && s.runner_up !== undefined && shownSuggestion(task, state.chosen.size > 0);
    const diversity = /k_?center|kmeans|k_means|typiclust|coreset|density|representative/.test(w.strategy || "");
    if (diversity) return "Unlike the items labeled so far: it covers new ground.";
    if (named && s.confidence - (s.runner_up_confidence ?? 0) < 0.25)
      return `The model cannot decide between ${s.label} and ${s.runner_up}.`;
    if (named) return `The model leans to ${AL.labelText(s.label)} but is not sure.`;
    return "The model is unsure about this item.";
  }

  function renderSide(task) {
    if (!task) { $("why").textContent = "–"; $("why-more").textContent = ""; $("related").replaceChildren(); return; }
    renderSuggestion(task);
    showBatch();
    $("why").textContent = whyText(task);
    const w = task.why;
    $("why-more").textContent = !w ? "–" : [w.detail, w.score !== null && w.score !== undefined ? `score ${AL.fmt(w.score)}` : null,
      w.model_version ? `scored by the model of round ${w.round ?? "–"}` : null].filter(Boolean).join("; ");
    renderRelated(task.item.id);
  }

  /* Related labeled items; unless the project asks for the nearest ones whatever their label,
     at most two of any one label (six of one label would be a second suggestion). */
  function varied(found, k) {
    if (settings().related_examples === "nearest") return found.slice(0, k);
    const per = new Map(), out = [];
    for (const r of found) {
      const key = AL.labelText(r.label);
      if ((per.get(key) || 0) >= 2) continue;
      per.set(key, (per.get(key) || 0) + 1);
      out.push(r);
      if (out.length === k) break;
    }
    return out;
  }

  async function renderRelated(itemId) {
    const box = $("related");
    let found = state.related.get(itemId);
    if (!found) {
      box.replaceChildren(AL.el("p", { class: "muted" }, "Loading…"));
      try { found = varied(await AL.api("GET", `/projects/${pid}/items/${itemId}/related?k=24`), 6); }
      catch { found = []; }
      state.related.set(itemId, found);
    }
    const current = state.mode === "single" ? state.queue[0] : state.grid[state.focus];
    if (!current || current.item.id !== itemId) return;
    box.replaceChildren(...(found.length ? found.map((r) => AL.el("figure", { class: "related-item" },
      AL.renderData(r.data, { compact: true, alt: `labeled example ${r.external_id}`, src: { project: pid, item: r.item_id } }),
      AL.el("figcaption", {}, AL.el("strong", { class: "swatch", style: `--label-color:${colorOf([].concat(r.label)[0])}` }, AL.labelText(r.label)),
        AL.el("span", { class: "muted" }, ` · ${AL.fmt(r.similarity, 2)} alike`))))
      : [AL.el("p", { class: "muted" }, "No labeled items yet.")]));
  }

  /* Why there is nothing to label: offline, no items yet (owners upload, annotators wait),
     every item labeled, or a round choosing the next ones. */
  function emptyText() {
    const p = state.progress;
    const owner = state.project && AL.atLeast(state.project.role, AL.ROLE.OWNER);
    if (Connection.offline) return ["The server cannot be reached.", "Items come back when it answers; your labels wait on this device and are sent then."];
    if (p && p.items === 0) return owner
      ? ["This project has no items yet.", "Upload data to start labeling."]
      : ["Nothing to label yet.", "The project's owner has not uploaded any items; this page checks again every few seconds."];
    if (p && p.round_pending !== null) return ["The next items are being chosen.", `Round ${p.round_pending} is training; new items arrive shortly and this page checks every few seconds.`];
    if (p && p.items > 0 && p.labeled >= p.items) return ["Every item is labeled.", "Nothing is left in this project's queue."];
    return ["No items for you right now.", "Other annotators hold the remaining items; this page checks again every few seconds."];
  }

  function renderEmpty(isEmpty) {
    $("empty").hidden = !isEmpty;
    if (!isEmpty) return;
    const [head, text] = emptyText();
    const owner = state.project && AL.atLeast(state.project.role, AL.ROLE.OWNER);
    const upload = owner && state.progress && state.progress.items === 0
      ? AL.el("a", { class: "button primary", href: `/projects/${pid}/import`, id: "upload-link" }, "Upload data") : null;
    const key = head + text + (upload ? "u" : "");
    if ($("empty").dataset.key === key) return;
    $("empty").dataset.key = key;
    $("empty").replaceChildren(AL.el("h2", { id: "empty-title" }, head), AL.el("p", { class: "muted" }, text), upload);
  }

  /* Pictures in a frame that zooms (buttons, + and - keys) and pans (drag, or scroll). */
  let zoom = 1;
  function zoomable(box) {
    const img = box.querySelector("img.item-image");
    if (!img) return box;
    const frame = AL.el("div", { class: "zoom-frame", id: "zoom-frame", tabindex: "0", role: "region", "aria-label": "Picture: drag or scroll to pan" });
    const row = AL.el("div", { class: "zoom-row" });
    img.replaceWith(row);
    frame.append(img);
    const apply = () => setZoom(zoom);
    const tools = AL.el("div", { class: "zoom-tools" },
      AL.el("button", { type: "button", id: "zoom-out", "aria-keyshortcuts": "-", onclick: () => setZoom(zoom / 1.5) }, "Zoom out ", AL.el("kbd", {}, "-")),
      AL.el("span", { id: "zoom-level", "aria-live": "polite" }, ""),
      AL.el("button", { type: "button", id: "zoom-in", "aria-keyshortcuts": "+", onclick: () => setZoom(zoom * 1.5) }, "Zoom in ", AL.el("kbd", {}, "+")));
    let drag = null;
    frame.addEventListener("pointerdown", (ev) => { drag = { x: ev.clientX, y: ev.clientY, l: frame.scrollLeft, t: frame.scrollTop }; });
    frame.addEventListener("pointermove", (ev) => { if (drag) { frame.scrollLeft = drag.l - (ev.clientX - drag.x); frame.scrollTop = drag.t - (ev.clientY - drag.y); } });
    for (const end of ["pointerup", "pointerleave"]) frame.addEventListener(end, () => { drag = null; });
    row.append(frame, tools);
    setTimeout(apply);
    return box;
  }
  function setZoom(value) {
    zoom = Math.max(0.5, Math.min(8, value));
    const img = document.querySelector("#zoom-frame img");
    if (img) img.style.setProperty("--zoom", String(zoom));
    if ($("zoom-level")) $("zoom-level").textContent = `${Math.round(100 * zoom)}%`;
  }

  function renderSingle() {
    while (state.queue.length && $("item").dataset.item !== String(state.queue[0].item.id)
           && leaseGone(state.queue[0])) state.queue.shift();
    const task = state.queue[0];
    renderEmpty(!task);
    $("single").hidden = !task;
    if (!task) { renderSide(null); return; }
    if ($("item").dataset.item !== String(task.item.id)) {
      $("item").dataset.item = String(task.item.id);
      $("item").replaceChildren(zoomable(AL.renderData(task.item.data, { alt: `item ${task.item.external_id}`, src: { project: pid, item: task.item.id } })),
        AL.el("p", { class: "muted" }, `item ${task.item.external_id}`));
      state.shownAt = Date.now();
      renderSide(task);
    }
    const pick = (label) => choose(label);
    $("choices").replaceChildren(...choiceButtons(task, state.chosen, pick, false, state.chosen.size > 0));
    renderSuggestion(task);
    $("why").textContent = whyText(task);
  }

  function fillGrid() {
    if (state.grid.length > state.gridSize) {  // smaller grid: the rest goes back in line
      const extra = state.grid.splice(state.gridSize);
      for (const t of extra) state.picks.delete(t.item.id);
      state.queue.unshift(...extra);
    }
    while (state.grid.length < state.gridSize && state.queue.length) {
      const next = state.queue.shift();
      if (!leaseGone(next)) state.grid.push(next);
    }
    // similar items side by side: grouped by the model's suggestion, most confident first.
    // Shown suggestions: groups in label order. After an answer: biggest group first, so that
    // a group's place says nothing of the label the model gives it.
    const size = new Map(), first = new Map();
    for (const t of state.grid) {
      const k = groupKey(t);
      size.set(k, (size.get(k) || 0) + 1);
      first.set(k, Math.min(first.get(k) ?? Infinity, t.item.id));
    }
    const named = display() === "always";
    state.grid.sort((a, b) => {
      const la = groupKey(a), lb = groupKey(b);
      if (la !== lb) {
        if (la === "" || lb === "") return la === "" ? 1 : -1;
        if (named) return state.labels.indexOf(la) - state.labels.indexOf(lb) || (la < lb ? -1 : 1);
        return size.get(lb) - size.get(la) || first.get(la) - first.get(lb);
      }
      // within a group: the most confident first when shown; else as handed out (a reveal
      // must not move the cells under the annotator's keys)
      if (!named) return 0;
      return (b.suggestion ? b.suggestion.confidence : 0) - (a.suggestion ? a.suggestion.confidence : 0);
    });
  }

  /* The grid's groups: by the model's (confident enough: the server sends no other)
     suggestion unless the project shows none; "" holds the items without one. Under
     after_answer an annotator's tasks carry a group number instead (no label). */
  function groupKey(task) {
    if (display() === "never" || state.multilabel) return "";
    if (task.groupKey !== null && task.groupKey !== undefined) return task.groupKey;
    const s = task.suggestion;
    return s ? s.label : "";
  }

  /* A group's header. Suggestions shown: "Model suggests 4" with a button accepting 4 for the
     group. After an answer: a neutral name ("Group 2: similar items") and a picker of every
     label to label the group at once; the model's label is named only once each of the
     group's items has the annotator's answer (to compare, as on the one-item view). */
  function groupHeader(key, tasks, index) {
    const open = tasks.filter((t) => !state.picks.has(t.item.id)).length;
    const named = display() === "always";
    const count = AL.el("span", { class: "muted" }, ` ${tasks.length} item${tasks.length === 1 ? "" : "s"}`);
    if (key === "") {
      const title = display() === "never" || state.multilabel || !tasks.some(hasModel) ? "Items" : "No confident suggestion";
      return groupRow(AL.el("h2", {}, title), count);
    }
    if (named) {
      const accept = AL.el("button", { type: "button", class: "accept-group",
        dataset: { group: String(key) }, onclick: (ev) => { ev.stopPropagation(); acceptGroup(key); } },
      `Accept ${key} for ${open} item${open === 1 ? "" : "s"}`, AL.el("kbd", {}, "A"));
      return groupRow(AL.el("h2", { style: `--label-color:${colorOf(key)}`, class: "swatch" }, `Model suggests ${key}`),
        count, " ", accept);
    }
    const name = `Group ${index + 1}`;
    const known = open === 0 ? tasks.map((t) => shownSuggestion(t, true)).find(Boolean) : null;
    const revealed = known ? AL.el("span", { class: "group-model" }, " · model suggests ",
      AL.el("strong", { class: "swatch", style: `--label-color:${colorOf([].concat(known.label)[0])}` }, AL.labelText(known.label))) : null;
    const id = `group-pick-${index + 1}`;
    const picker = open === 0 ? null : AL.el("span", { class: "group-picker" },
      AL.el("select", { id, class: "group-pick", "aria-label": `Label the ${open} open item${open === 1 ? "" : "s"} of ${name} as`,
        onclick: (ev) => ev.stopPropagation(), onkeydown: (ev) => {
          if (ev.key === "Enter") { ev.preventDefault(); ev.stopPropagation(); labelGroup(key, ev.target.value, id); }
        } },
      AL.el("option", { value: "" }, "Label this group as…"),
      ...state.labels.map((l) => AL.el("option", { value: String(l) }, String(l)))),
      AL.el("button", { type: "button", class: "accept-group", dataset: { groupIndex: String(index + 1) },
        onclick: (ev) => { ev.stopPropagation(); labelGroup(key, $(id).value, id); } },
      `Label ${open} item${open === 1 ? "" : "s"}`));
    return groupRow(AL.el("h2", {}, `${name}: similar items`), count, revealed, " ", picker);
  }
  const groupRow = (...children) => AL.el("div", { role: "row", class: "group-head" },
    AL.el("div", { role: "columnheader", class: "group-title", "aria-colspan": "1" }, ...children));

  function gridCell(task, i) {
    const picked = state.picks.get(task.item.id);
    const chosen = new Set(picked || []);
    const s = shownSuggestion(task, !!picked);
    const text = AL.renderData(task.item.data, { compact: true, alt: `item ${task.item.external_id}`, src: { project: pid, item: task.item.id } });
    const long = task.item.data && Object.values(task.item.data).some((v) => typeof v === "string" && v.length > 140 && !AL.isImage(v));
    return AL.el("div", {
      class: "cell" + (i === state.focus ? " focused" : "") + (picked ? " labeled" : ""), role: "gridcell",
      tabindex: i === state.focus ? "0" : "-1", "aria-selected": picked ? "true" : "false",
      dataset: { item: String(task.item.id), index: String(i) },
      onclick: () => { state.focus = i; renderGrid(); focusCell(); },
    }, AL.el("div", { class: "clamp" + (state.expanded.has(task.item.id) ? " open" : "") }, text),
    long ? AL.el("button", { type: "button", class: "linkish expand", "aria-expanded": state.expanded.has(task.item.id) ? "true" : "false",
      onclick: (ev) => { ev.stopPropagation(); toggleExpand(task.item.id); } }, state.expanded.has(task.item.id) ? "Show less" : "Show all") : null,
    s ? AL.el("p", { class: "cell-suggestion" }, "model: ", AL.el("strong", { class: "swatch", style: `--label-color:${colorOf([].concat(s.label)[0])}` }, AL.labelText(s.label)), ` ${AL.pct(s.confidence)}`) : null,
    AL.el("div", { class: "pick" }, picked ? picked.join(", ") : ""),
    AL.el("div", { class: "mini-choices" }, choiceButtons(task, chosen, (label) => {
      state.focus = i; pickGrid(label, false);
    }, true, !!picked)));
  }

  function toggleExpand(itemId) {
    if (state.expanded.has(itemId)) state.expanded.delete(itemId); else state.expanded.add(itemId);
    renderGrid();
  }

  function renderGrid() {
    fillGrid();
    const named = display() === "always";
    const help = named ? "accept the model's suggestion for the focused item's group" : "choose a label for the focused item's group";
    if ($("grid-help").dataset.mode !== String(named)) {
      $("grid-help").dataset.mode = String(named);
      $("grid-help").replaceChildren("A label's key: label the focused item and move on · ", AL.el("kbd", {}, "Shift"),
        "+key: label every item not labeled yet · ", AL.el("kbd", {}, "A"), `: ${help} · arrows move · `,
        AL.el("kbd", {}, "Enter"), " submits the labeled ones.");
      $("grid").setAttribute("aria-label", named ? "Batch of items, grouped by the model's suggestion" : "Batch of items, similar ones grouped");
    }
    renderEmpty(state.grid.length === 0);
    $("gridview").hidden = state.grid.length === 0;
    state.focus = Math.min(state.focus, Math.max(0, state.grid.length - 1));
    const groups = [];
    state.grid.forEach((task, i) => {
      const key = groupKey(task);
      if (!groups.length || groups[groups.length - 1].key !== key) groups.push({ key, tasks: [], cells: [] });
      groups[groups.length - 1].tasks.push(task);
      groups[groups.length - 1].cells.push(gridCell(task, i));
    });
    const scrollY = window.scrollY;
    const hadFocus = $("grid").contains(document.activeElement);  // keep a keyboard user's place
    $("grid").replaceChildren(...groups.flatMap((g, n) => [groupHeader(g.key, g.tasks, n),
      AL.el("div", { role: "row", class: "group-cells",
        dataset: { group: display() === "always" ? String(g.key) : g.key === "" ? "" : `group ${n + 1}` } }, g.cells)]));
    window.scrollTo(0, scrollY);
    if (hadFocus) focusCell();
    if (state.grid[state.focus]) renderSide(state.grid[state.focus]);
  }

  /* After an answer: every item of the group not labeled yet gets the label the annotator
     picked for the group (none picked: say so and stay on the picker). */
  function labelGroup(key, value, pickerId) {
    const label = state.labels.find((l) => String(l) === value);
    if (label === undefined) { AL.toast("Choose a label for the group first."); $(pickerId).focus(); return; }
    const targets = state.grid.filter((t) => groupKey(t) === key && !state.picks.has(t.item.id));
    for (const t of targets) state.picks.set(t.item.id, [label]);
    AL.toast(`${targets.length} item${targets.length === 1 ? "" : "s"} labeled ${label}: Enter submits them.`);
    renderGrid();
    focusCell();
    revealPicked();
  }

  /* A: accept the focused item's group (suggestions shown), or go to its label picker. */
  function groupAction(key) {
    if (key === "") return;
    if (display() === "always") { acceptGroup(key); return; }
    const row = $("grid").querySelector(`[data-index="${state.focus}"]`);
    const head = row && row.closest(".group-cells") && row.closest(".group-cells").previousElementSibling;
    const picker = head && head.querySelector("select.group-pick");
    if (picker) picker.focus();
  }

  /* Every item of a group not labeled yet gets the group's suggested label. */
  function acceptGroup(key) {
    if (key === "" || display() !== "always") return;
    const targets = state.grid.filter((t) => groupKey(t) === key && !state.picks.has(t.item.id));
    for (const t of targets) state.picks.set(t.item.id, [key]);
    AL.toast(`${targets.length} item${targets.length === 1 ? "" : "s"} labeled ${key}: Enter submits them.`);
    renderGrid();
    focusCell();
  }

  function focusCell() {
    const cell = $("grid").querySelector(`[data-index="${state.focus}"]`);
    if (!cell) return;
    cell.focus({ preventScroll: true });  // the progress line stays in view
    cell.scrollIntoView({ block: "nearest" });
  }

  function render() {
    if (state.own) return;
    $("single").hidden = state.mode !== "single";
    $("gridview").hidden = state.mode !== "grid";
    if (state.mode === "single") renderSingle(); else renderGrid();
    showBatch();
    topUp();
  }

  // ---- actions --------------------------------------------------------------------------------
  function submitTask(task, labels, durationMs) {
    const entry = { client_key: AL.uuid(), item_id: task.item.id, labels, duration_ms: Math.max(0, Math.round(durationMs)) };
    state.done.add(task.item.id);
    state.history.push({ key: entry.client_key, item_id: task.item.id, task, labels });
    enqueue(entry);
    return entry.client_key;
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
    revealPicked();
  }

  async function undo() {
    const last = state.history.pop();
    if (!last) { AL.toast("Nothing to undo."); return; }
    try { await withdraw(last.key, last.item_id); }
    catch (err) { AL.toast(`Undo failed: ${err.message}`, "bad"); state.history.push(last); return; }
    state.done.delete(last.item_id);
    last.task.undone = true;  // back in hand though its lease closed with the label
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
  /* The label a key press names: the project's keys, digits by their physical key (any
     keyboard layout), or none. */
  function labelOfKey(ev) {
    const m = /^(?:Digit|Numpad)(\d)$/.exec(ev.code || "");
    const k = (ev.key || "").length === 1 ? ev.key.toLowerCase() : null;
    if (k && state.byKey.has(k)) return state.byKey.get(k);
    if (m && state.byKey.has(m[1])) return state.byKey.get(m[1]);
    return undefined;
  }

  /* Single mode: choose (or, multilabel, toggle) a label; the suggestion may show now. */
  function choose(label) {
    if (state.multilabel) state.chosen.has(label) ? state.chosen.delete(label) : state.chosen.add(label);
    else state.chosen = new Set([label]);
    renderSingle();
    const task = state.queue[0];
    if (task && state.chosen.size) reveal([[task, state.labels.filter((l) => state.chosen.has(l))]]);
  }

  /* Many labels: the filter box narrows the buttons; Enter there picks the first match. */
  function setupFilter() {
    const many = state.labels.length > 10;
    $("label-filter-box").hidden = !many;
    if (!many) return;
    const box = $("label-filter");
    box.addEventListener("input", () => { state.filter = box.value.trim().toLowerCase(); renderSingle(); });
    box.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        const first = $("choices").querySelector("button[data-label]");
        if (first) choose(state.labels.find((l) => String(l) === first.dataset.label));
        box.value = ""; state.filter = ""; box.blur(); renderSingle();
      } else if (ev.key === "Escape") { box.value = ""; state.filter = ""; box.blur(); renderSingle(); }
    });
  }

  function onKey(ev) {
    if (document.querySelector("dialog[open]")) return;
    const t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const label = labelOfKey(ev);
    if (label !== undefined) {
      ev.preventDefault();
      if (state.mode === "grid") pickGrid(label, ev.shiftKey);
      else choose(label);
      return;
    }
    const key = ev.key;
    const filterOn = !$("label-filter-box").hidden && state.mode === "single";
    if (filterOn && (key === "/" || (key.length === 1 && /\p{L}/u.test(key) && !"sfgzaSFGZA".includes(key)))) {
      ev.preventDefault();  // type to find a label
      $("label-filter").focus();
      if (key !== "/") { $("label-filter").value += key; state.filter = $("label-filter").value.toLowerCase(); renderSingle(); }
      return;
    }
    if (key === "Enter") {
      if (t && (t.tagName === "A" || (t.tagName === "BUTTON" && !t.dataset.label && t.closest(".actions")))) return;
      ev.preventDefault(); submit();
    } else if (key === "Backspace" || key === "z" || key === "Z") { ev.preventDefault(); undo(); }
    else if (key === "s" || key === "S") { ev.preventDefault(); skip(); }
    else if (key === "f" || key === "F") { ev.preventDefault(); openFlag(); }
    else if (key === "g" || key === "G") { ev.preventDefault(); setMode(state.mode === "grid" ? "single" : "grid"); }
    else if (key === "?") { ev.preventDefault(); AL.openDialog($("keys-dialog")); }
    else if ((key === "+" || key === "=") && state.mode === "single") { ev.preventDefault(); setZoom(zoom * 1.5); }
    else if (key === "-" && state.mode === "single") { ev.preventDefault(); setZoom(zoom / 1.5); }
    else if ((key === "a" || key === "A") && state.mode === "grid" && current()) { ev.preventDefault(); groupAction(groupKey(current())); }
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

  /* The batch line: the last round's batch, and when the item in hand was picked by an
     earlier round (leased before the new round finished), that round too. */
  function showBatch() {
    const p = state.progress;
    if (!p) return;
    const b = p.batch;
    const task = current();
    const mine = task && task.why && task.why.ranked_by === "strategy" ? task.why.round : null;
    const earlier = p.round !== null && mine !== null && mine !== undefined && mine < p.round;
    const text = p.round === null ? "No round yet"
      : earlier ? `Round ${mine}'s item · round ${p.round}: ${b.labeled}/${b.selected} labeled`
        : `Round ${p.round}'s batch: ${b.labeled} of ${b.selected} labeled`;
    if ($("batch-progress").textContent !== text) $("batch-progress").textContent = text;
    $("batch-bar").style.width = b.selected ? `${Math.min(100, (100 * b.labeled) / b.selected)}%` : "0";
  }

  async function refreshProgress() {
    let p;
    const fetchesBefore = state.fetchesStarted;
    const idle = !state.fetching;
    const hook = state.holdingHook ? state.holdingHook.begin() : null;
    try { p = await AL.api("GET", `/projects/${pid}/progress`); } catch { return; }
    state.progress = p;
    // no task fetch ran while the server read the leases, and the list is whole (the server
    // lists 200 at most): it covers everything in hand
    const holding = p.me.holding;
    if (holding && holding.length < HOLDING_LISTED) {
      if (state.holdingHook) state.holdingHook.end(hook, new Set(holding));
      else if (!state.own && idle && !state.fetching && state.fetchesStarted === fetchesBefore)
        dropLost(new Set(holding));
    }
    // how many progress answers the page has read (what it holds is checked by then)
    document.body.dataset.progressRead = String((state.progressRead = (state.progressRead || 0) + 1));
    if (!current()) render();
    showBatch();
    $("next-model").textContent = p.round_pending !== null ? `Round ${p.round_pending} is training…`
      : `${p.labels_since_round} of ${p.retrain_every_labels} to the next model`;
    const speed = p.me.labels_per_hour ? ` · ${Math.round(p.me.labels_per_hour)}/hour` : "";
    $("my-count").textContent = `You: ${p.me.labels} labels${speed}`;
    const lr = p.last_round;
    // the task's score (accuracy; a multi-label project's label F1, a span project's entity
    // F1) and what it moved since the previous model, in points
    const measure = lr ? AL.MEASURES[lr.measure] || "accuracy" : "";
    const moved = lr && lr.gain && lr.gain.score !== null && lr.gain.score !== undefined
      ? `${lr.gain.score >= 0 ? "+" : ""}${(100 * lr.gain.score).toFixed(1)} points` : "";
    if (lr && lr.score !== null && lr.score !== undefined) {
      $("last-gain").textContent = `Model of round ${lr.number}: ${measure} ${AL.pct(lr.score)}${moved ? ` (${moved})` : ""}`;
    } else $("last-gain").textContent = "";
    if (state.lastRound !== undefined && p.round !== state.lastRound && lr) {
      AL.toast(`A new model is ready (round ${lr.number})${moved ? `: ${measure} ${moved}` : ""}.`);
    }
    state.lastRound = p.round;
    for (const id of ["next-model", "my-count", "last-gain"]) $(id).title = $(id).textContent;
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
    $("outlook").title = $("outlook").textContent;
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
  /* Task types with a widget of their own (spans: spans.js) take over the stage: the page
     loads /static/<task>.js, which registers ``window.ALRenderers[task] = { mount(ctx) }``;
     ``ctx`` holds the project, the stage element, ``fetchTasks(n)``, ``submit(task, labels,
     durationMs)`` (through this page's outbox, so offline labels wait and are never doubled;
     returns the submission's key), ``withdraw(key, itemId)`` (undo) and ``pending()`` (the
     item ids still waiting to be sent). */
  function widgetContext(project) {
    state.own = true;
    return { project, stage: $("stage"), api: AL,
      fetchTasks: async (n) => {
        const tasks = await AL.api("GET", `/projects/${pid}/tasks/next?n=${n}`);
        noteSkew(tasks);
        return tasks;
      },
      leaseGone,
      submit: (task, labels, durationMs) => submitTask(task, labels, durationMs),
      withdraw, pending: () => readOutbox().map((x) => x.item_id),
      /* ``hook.begin()`` before each progress request, ``hook.end(token, held)`` with the
         ids of the items the caller holds (the widget drops the others it keeps waiting) */
      onHolding: (hook) => { state.holdingHook = hook; } };
  }
  function startOwn() {
    showOutbox(); flush(); refreshProgress(); setInterval(refreshProgress, 15000);
    AL.markReady();
  }
  function loadScript(src) {
    return new Promise((resolve, reject) => document.head.append(AL.el("script", { src, onload: resolve, onerror: reject })));
  }
  async function ownRenderer(project) {
    if (project.task === "classification" || project.task === "multilabel") return false;
    try { await loadScript(`/static/${encodeURIComponent(project.task)}.js`); } catch { return false; }
    const renderer = (window.ALRenderers || {})[project.task];
    if (!renderer) return false;
    renderer.mount(widgetContext(project));
    return true;
  }

  async function start() {
    let project;
    try { project = await AL.project(); } catch (err) { AL.failed(err, start); return; }
    state.project = project;
    if (project.task === "spans" && window.ALSpans) {  // spans.js, loaded by the page
      window.ALSpans.start(project, widgetContext(project)); startOwn(); return;
    }
    if (await ownRenderer(project)) { startOwn(); return; }
    state.labels = project.labels;
    state.multilabel = project.task === "multilabel";
    assignKeys();
    setupFilter();
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
    await refreshProgress();
    refreshFlags();
    setInterval(refreshProgress, 15000);
    setInterval(refreshFlags, 30000);
    setInterval(() => { if (!current()) fetchMore(); }, 5000);
    await fetchMore();
    AL.markReady();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
