/* Span labeling (projects with task "spans"): the labeling page hands such projects to
   ALSpans.start(project, page), ``page`` being its widget context (label.js): tasks come from
   ``page.fetchTasks``, submissions go through the page's outbox (``page.submit``: kept on this
   device while the server cannot be reached, sent with the same client_key on its return, so
   none is lost or stored twice) and undo through ``page.withdraw``. The text is shown as tokens (the item's own tokens, or the server's
   tokenizer: activelabel.spans.TOKEN_PATTERN); the annotator marks entities by keyboard or mouse.

   Keys: ←/→ move over tokens, Shift+←/→ extend the selection, a number key gives the selection
   that entity type, X (or Delete) removes the span under the cursor, Y / N accept / reject the
   model's suggested span under the cursor, A accepts every suggestion, Z (or Backspace) undoes
   the last change, Enter submits (no span: "no entity"), S skips. Mouse: click a token, shift-click
   or drag to extend.
   ALSpans.review(container, item, revisions) renders where annotators' spans differ. */
"use strict";
window.ALSpans = (() => {
  const $ = (id) => document.getElementById(id);
  // Python's \w is Unicode: letters, digits, underscore. Same alternatives as TOKEN_PATTERN.
  const W = "[\\p{L}\\p{N}_]";
  const TOKEN = new RegExp(`https?://\\S+|www\\.\\S+|[@#]${W}+|${W}+(?:['’\\-.]${W}+)*|[^\\p{L}\\p{N}_\\s]`, "gu");
  const COLORS = ["#cfe2ff", "#d1f0d9", "#ffe1c2", "#f3d1f4", "#fff3b0", "#d7f3f5", "#e8dcc8", "#f8d7da", "#e2e3e5", "#cdd7ff"];

  function tokensOf(data) {
    const text = typeof data.text === "string" ? data.text : (Array.isArray(data.tokens) ? data.tokens.join(" ") : "");
    const out = [];
    if (Array.isArray(data.tokens)) {
      let cursor = 0;
      for (const tok of data.tokens) {
        const at = text.indexOf(tok, cursor);
        if (at < 0) break;
        out.push([at, at + tok.length]);
        cursor = at + tok.length;
      }
    } else {
      for (const m of text.matchAll(TOKEN)) out.push([m.index, m.index + m[0].length]);
    }
    return { text, offsets: out };
  }

  function addStyle(types) {
    if ($("spans-style")) return;
    const rules = types.map((t, i) => `.tok[data-type="${CSS.escape(String(t))}"], .legend-type[data-type="${CSS.escape(String(t))}"] { background: ${COLORS[i % COLORS.length]}; }`);
    document.head.append(AL.el("style", { id: "spans-style" }, `
      .span-text { font-size: 1.15rem; line-height: 2.2; }
      .tok { padding: 2px 1px; border-radius: 3px; cursor: pointer; }
      .tok.selected { outline: 2px solid var(--accent); }
      .tok.cursor { box-shadow: 0 3px 0 var(--focus); }
      .tok.suggested { border-bottom: 2px dashed var(--warn); }
      .tok .type-tag, .span-list .type-tag { font-size: .7rem; color: var(--muted); margin-left: 2px; }
      .legend-type { padding: 2px 6px; border-radius: 4px; }
      .span-list { list-style: none; padding: 0; margin: 4px 0; }
      .span-list li { margin: 4px 0; }
      .span-diff .missed { text-decoration: underline wavy var(--bad); }
      ${rules.join("\n")}`));
  }

  function start(project, page) {
    const pid = project.id;
    const types = project.labels.map(String);
    const allowOverlap = !!(project.settings && project.settings.span_overlap);
    const showSuggestions = !project.settings || project.settings.show_suggestions !== false;
    const st = { queue: [], task: null, tokens: null, spans: [], suggested: [], anchor: 0, cursor: 0,
                 edits: [], history: [], shownAt: Date.now(), done: new Set(), fetching: false,
                 fetches: 0 };
    addStyle(types);
    document.querySelectorAll("input[name=mode], #grid-size").forEach((n) => { n.disabled = true; });
    $("gridview").hidden = true;
    $("keys-list").replaceChildren(...[
      ["← →", "move over tokens"], ["Shift+← →", "extend the selection (or shift-click, drag)"],
      ["1…9, 0", "give the selection that entity type"], ["X / Delete", "remove the span under the cursor"],
      ["Y / N", "accept / reject the suggested span under the cursor"], ["A", "accept every suggestion"],
      ["Z / Backspace", "undo the last change (or the last submission)"], ["Enter", "submit (no span: no entity)"],
      ["S", "skip"], ["?", "this list"]].flatMap(([k, v]) => [AL.el("dt", {}, AL.el("kbd", {}, k)), AL.el("dd", {}, v)]));

    const overlaps = (a, b) => a.start < b.end && b.start < a.end;
    const same = (a, b) => a.start === b.start && a.end === b.end && a.label === b.label;
    const sorted = (list) => [...list].sort((a, b) => a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : 1));
    const selection = () => [Math.min(st.anchor, st.cursor), Math.max(st.anchor, st.cursor)];

    function change(fn) {
      st.edits.push({ spans: st.spans.map((s) => ({ ...s })), suggested: st.suggested.map((s) => ({ ...s })) });
      fn();
      render();
    }
    function addSpan(span) {
      st.spans = sorted([...(allowOverlap ? st.spans : st.spans.filter((s) => !overlaps(s, span))).filter((s) => !same(s, span)), span]);
    }
    function setType(typeIndex) {
      if (!st.tokens || !st.tokens.offsets.length) return;
      const [a, b] = selection();
      const span = { start: st.tokens.offsets[a][0], end: st.tokens.offsets[b][1], label: types[typeIndex] };
      change(() => { addSpan(span); st.suggested = st.suggested.filter((s) => !overlaps(s, span)); });
    }
    const atCursor = (list) => {
      const [s, e] = st.tokens.offsets[st.cursor] || [-1, -1];
      return list.find((x) => x.start <= s && e <= x.end);
    };
    function removeAtCursor() {
      const found = atCursor(st.spans);
      if (found) change(() => { st.spans = st.spans.filter((s) => s !== found); });
    }
    function acceptSuggestion(sug) {
      change(() => { addSpan({ start: sug.start, end: sug.end, label: sug.label }); st.suggested = st.suggested.filter((s) => s !== sug); });
    }
    function rejectSuggestion(sug) { change(() => { st.suggested = st.suggested.filter((s) => s !== sug); }); }
    function acceptAll() {
      if (!st.suggested.length) { AL.toast("No suggestions left to accept."); return; }
      change(() => { for (const s of st.suggested) addSpan({ start: s.start, end: s.end, label: s.label }); st.suggested = []; });
    }

    function tokenNodes() {
      const { text, offsets } = st.tokens;
      const nodes = [];
      const [a, b] = selection();
      let pos = 0;
      offsets.forEach(([s, e], i) => {
        if (s > pos) nodes.push(text.slice(pos, s));
        const own = st.spans.find((x) => x.start <= s && e <= x.end);
        const sug = st.suggested.find((x) => x.start <= s && e <= x.end);
        const cls = ["tok"];
        if (i >= a && i <= b) cls.push("selected");
        if (i === st.cursor) cls.push("cursor");
        if (sug) cls.push("suggested");
        const last = own && e === own.end;
        nodes.push(AL.el("span", { class: cls.join(" "), dataset: { i: String(i), ...(own ? { type: own.label } : {}) },
          title: own ? own.label : (sug ? `suggested: ${sug.label}` : null) },
          text.slice(s, e), last ? AL.el("span", { class: "type-tag" }, own.label) : null));
        pos = e;
      });
      if (pos < text.length) nodes.push(text.slice(pos));
      return nodes;
    }

    function renderSide() {
      const box = $("suggestion");
      if (!showSuggestions) { box.textContent = "Suggestions are turned off for this project."; return; }
      if (!st.task || !st.task.suggestion) { box.textContent = "No model yet: mark the entities you see."; return; }
      const text = st.tokens.text;
      box.replaceChildren(
        AL.el("span", {}, `${st.task.suggestion.model_round ? "The model of round " + st.task.suggestion.model_round : "The model"}, whole tagging `, AL.el("strong", {}, AL.pct(st.task.suggestion.confidence))),
        AL.el("ul", { class: "span-list", id: "suggested-spans" }, st.suggested.map((s) => AL.el("li", { dataset: { start: String(s.start), end: String(s.end) } },
          AL.el("span", { class: "legend-type", dataset: { type: s.label } }, text.slice(s.start, s.end)),
          AL.el("span", { class: "type-tag" }, ` ${s.label} ${s.confidence !== undefined ? AL.pct(s.confidence) : ""} `),
          AL.el("button", { type: "button", class: "accept-one", onclick: () => acceptSuggestion(s) }, "Accept"),
          AL.el("button", { type: "button", class: "reject-one", onclick: () => rejectSuggestion(s) }, "Reject")))),
        st.suggested.length ? AL.el("button", { type: "button", id: "accept-all", class: "primary", onclick: acceptAll }, "Accept all ", AL.el("kbd", {}, "A"))
          : AL.el("p", { class: "muted" }, "No suggestion left."));
      const why = st.task.why;
      $("why").textContent = why ? `${why.strategy || ""}${why.score !== null && why.score !== undefined ? ` · score ${AL.fmt(why.score, 3)}` : ""}` : "–";
    }

    function render() {
      const task = st.task;
      $("empty").hidden = !!task;
      $("single").hidden = !task;
      if (!task) return;
      const own = AL.el("ul", { class: "span-list", id: "my-spans", "aria-label": "Your spans" }, st.spans.map((s) =>
        AL.el("li", { dataset: { start: String(s.start), end: String(s.end), label: s.label } },
          AL.el("span", { class: "legend-type", dataset: { type: s.label } }, st.tokens.text.slice(s.start, s.end)),
          AL.el("span", { class: "type-tag" }, ` ${s.label}`))));
      $("item").replaceChildren(
        AL.el("p", { class: "span-text", id: "span-text", role: "application", "aria-label": "Text: arrows move, number keys mark an entity" }, tokenNodes()),
        own, AL.el("p", { class: "muted" }, `item ${task.item.external_id}`, st.spans.length ? "" : " · no entity marked"));
      $("item").dataset.item = String(task.item.id);
      $("choices").replaceChildren(...types.map((t, i) => AL.el("button", {
        type: "button", class: "choice legend-type", dataset: { type: t, label: t }, onclick: () => setType(i) },
        AL.el("kbd", {}, String((i + 1) % 10)), ` ${t}`)));
      renderSide();
    }

    function show(task) {
      st.task = task || null;
      st.edits = [];
      st.anchor = st.cursor = 0;
      st.shownAt = Date.now();
      if (!task) { render(); return; }
      st.tokens = tokensOf(task.item.data);
      st.spans = [];
      const sug = task.suggestion && Array.isArray(task.suggestion.label) ? task.suggestion.label : [];
      st.suggested = showSuggestions ? sug.filter((s) => s && typeof s.start === "number") : [];
      render();
    }

    async function fetchMore() {
      if (st.fetching) return;
      st.fetching = true;
      try {
        st.fetches += 1;
        const tasks = await page.fetchTasks(5);
        const waiting = new Set(page.pending());  // submitted, not sent yet (e.g. before a reload)
        // the caller's own leases come back first: a short answer holds them all, so a
        // sentence waiting here and missing from it lost its lease (purged, or run out)
        if (tasks.length < 5) dropLost(new Set(tasks.map((t) => t.item.id)));
        for (const t of tasks) {  // leases in hand renewed: their new end
          const had = st.queue.find((q) => q.item.id === t.item.id);
          if (had) had.lease_expires_at = t.lease_expires_at;
        }
        for (const t of tasks) if (!st.done.has(t.item.id) && !waiting.has(t.item.id)
          && !st.queue.some((q) => q.item.id === t.item.id)
          && !(st.task && st.task.item.id === t.item.id)) st.queue.push(t);
      } catch (err) { if (!err.network) AL.toast(err.message, "bad"); }  // offline: the banner says so
      finally { st.fetching = false; }
      if (!st.task && st.queue.length) show(st.queue.shift());
      else if (!st.task) render();
    }
    function next() {
      // a sentence whose lease ended (the page slept past it) is skipped unseen
      while (st.queue.length && page.leaseGone(st.queue[0])) st.queue.shift();
      show(st.queue.shift());
      if (st.queue.length < 2) fetchMore();
    }
    /* Sentences waiting here whose lease the caller no longer holds are not shown: purged, or
       run out while the page sat idle (maybe taken by another). Checked at a task fetch and,
       through the page's progress refresh, every 15 s and after each submission. */
    function dropLost(held) { st.queue = st.queue.filter((q) => q.undone || held.has(q.item.id)); }
    page.onHolding({
      begin: () => (st.fetching ? null : st.fetches),
      end: (token, held) => { if (token !== null && !st.fetching && token === st.fetches) dropLost(held); },
    });

    function submit() {
      const task = st.task;
      if (!task) return;
      const labels = st.spans.map((s) => ({ start: s.start, end: s.end, label: s.label }));
      const key = page.submit(task, labels, Date.now() - st.shownAt);
      st.done.add(task.item.id);
      st.history.push({ task, key });
      AL.toast(labels.length ? `${labels.length} span${labels.length > 1 ? "s" : ""} submitted.` : "Submitted: no entity.");
      next();
    }
    async function undo() {
      const last = st.edits.pop();
      if (last) { st.spans = last.spans; st.suggested = last.suggested; render(); return; }
      const prev = st.history.pop();
      if (!prev) { AL.toast("Nothing to undo."); return; }
      let stored;
      try { stored = await page.withdraw(prev.key, prev.task.item.id); }
      catch (err) { AL.toast(`Undo failed: ${err.message}`, "bad"); st.history.push(prev); return; }
      st.done.delete(prev.task.item.id);
      prev.task.undone = true;  // back in hand though its lease closed with the submission
      if (st.task) st.queue.unshift(st.task);
      show(prev.task);
      AL.toast(stored ? "Your last submission was withdrawn (a new revision; nothing is deleted)."
        : "Your last submission was taken back before it was sent.");
    }
    function skip() {
      if (!st.task) return;
      const id = st.task.item.id;
      st.done.add(id);
      AL.api("POST", `/projects/${pid}/tasks/${id}/release`).catch(() => {});
      next();
    }

    function move(step, extend) {
      if (!st.tokens || !st.tokens.offsets.length) return;
      st.cursor = Math.max(0, Math.min(st.tokens.offsets.length - 1, st.cursor + step));
      if (!extend) st.anchor = st.cursor;
      render();
    }
    function onKey(ev) {
      if (document.querySelector("dialog[open]")) return;
      const t = ev.target;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) return;
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const m = /^(?:Digit|Numpad)(\d)$/.exec(ev.code || "");
      const digit = m ? m[1] : (/^\d$/.test(ev.key) ? ev.key : null);
      const key = ev.key;
      let handled = true;
      if (digit !== null) {
        const idx = digit === "0" ? 9 : Number(digit) - 1;
        if (idx < types.length) setType(idx);
      } else if (key === "ArrowRight" || key === "ArrowLeft") move(key === "ArrowRight" ? 1 : -1, ev.shiftKey);
      else if (key === "Enter") {
        if (t && t.tagName === "BUTTON" && t.id !== "submit") { handled = false; }
        else submit();
      } else if (key === "x" || key === "X" || key === "Delete") removeAtCursor();
      else if (key === "a" || key === "A") acceptAll();
      else if (key === "y" || key === "Y" || key === "n" || key === "N") {
        const sug = st.tokens && atCursor(st.suggested);
        if (!sug) AL.toast("No suggestion under the cursor.");
        else if (key.toLowerCase() === "y") acceptSuggestion(sug); else rejectSuggestion(sug);
      } else if (key === "z" || key === "Z" || key === "Backspace") undo();
      else if (key === "s" || key === "S") skip();
      else if (key === "?") AL.openDialog($("keys-dialog"));
      else handled = false;
      if (handled) ev.preventDefault();
    }

    let dragging = false;
    $("item").addEventListener("mousedown", (ev) => {
      const tok = ev.target.closest(".tok");
      if (!tok) return;
      ev.preventDefault();
      st.cursor = Number(tok.dataset.i);
      if (!ev.shiftKey) st.anchor = st.cursor;
      dragging = true;
      render();
    });
    $("item").addEventListener("mouseover", (ev) => {
      const tok = dragging && ev.target.closest(".tok");
      if (tok && Number(tok.dataset.i) !== st.cursor) { st.cursor = Number(tok.dataset.i); render(); }
    });
    document.addEventListener("mouseup", () => { dragging = false; });
    document.addEventListener("keydown", onKey);
    $("submit").addEventListener("click", submit);
    $("skip").addEventListener("click", skip);
    $("undo").addEventListener("click", undo);
    $("flag").hidden = true;  // flags: from the review page for span projects
    $("show-keys").addEventListener("click", () => AL.openDialog($("keys-dialog")));
    $("keys-close").addEventListener("click", () => AL.closeDialog($("keys-dialog")));
    $("guidelines").textContent = project.guidelines || "No guidelines yet.";
    setInterval(() => { if (!st.task) fetchMore(); }, 5000);
    AL.connection.onBack(() => { if (!st.task) fetchMore(); });  // the server answers again
    fetchMore();
  }

  /* Where annotators' spans differ on one item: each annotator's spans, the ones not everyone
     gave underlined. ``revisions`` are the current labels {annotator, labels}. */
  function review(item, revisions) {
    const { text } = tokensOf(item.data || {});
    const key = (s) => `${s.start}:${s.end}:${s.label}`;
    const counts = new Map();
    for (const r of revisions) for (const s of r.labels || []) counts.set(key(s), (counts.get(key(s)) || 0) + 1);
    addStyle([...new Set(revisions.flatMap((r) => (r.labels || []).map((s) => s.label)))]);
    return AL.el("div", { class: "span-diff", "aria-label": "Spans by annotator" }, revisions.map((r) => AL.el("p", {},
      AL.el("strong", {}, `${r.annotator}: `),
      (r.labels || []).length ? (r.labels || []).map((s) => AL.el("span", {
        class: "legend-type" + (counts.get(key(s)) < revisions.length ? " missed" : ""), dataset: { type: s.label },
        title: counts.get(key(s)) < revisions.length ? "not given by every annotator" : "agreed" },
      `${text.slice(s.start, s.end)} (${s.label})`, " ")) : AL.el("span", { class: "muted" }, "no entity"))));
  }

  /* Spans as their words and types ("Ann (person), New York (location)"); "no entity"
     for none. ``data`` is the item's data (its text), without it the character offsets. */
  const spansText = (l, data) => {
    if (!Array.isArray(l)) return AL.labelText(l);
    if (!l.length) return "no entity";
    const text = data ? tokensOf(data).text : "";
    return l.map((s) => (text ? `${text.slice(s.start, s.end)} (${s.label})` : `${s.label} ${s.start}-${s.end}`)).join(", ");
  };

  return { start, review, tokensOf, spansText };
})();
