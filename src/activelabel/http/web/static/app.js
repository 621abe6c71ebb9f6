/* activelabel web app: shared helpers (auth, API calls, rendering). No framework, no build. */
"use strict";
const AL = (() => {
  const TOKEN = "activelabel.token";
  const USER = "activelabel.user";
  const body = () => document.body;

  function token() { return localStorage.getItem(TOKEN); }
  function user() { try { return JSON.parse(localStorage.getItem(USER) || "null"); } catch { return null; } }
  function setLogin(answer) {
    localStorage.setItem(TOKEN, answer.token);
    localStorage.setItem(USER, JSON.stringify(answer.user));
  }
  function logout() { localStorage.removeItem(TOKEN); localStorage.removeItem(USER); }
  function toLogin() {
    const next = location.pathname + location.search;
    location.assign("/?next=" + encodeURIComponent(next));
  }

  class ApiError extends Error {
    constructor(status, message, network) { super(message); this.status = status; this.network = network; }
  }

  /* The connection to the server, shown in a banner: offline (a request could not reach the
     server), reconnecting (it answers again; waiting labels are being sent) and how many
     labels wait on this device. While offline the health endpoint is asked twice a second,
     so the pages learn of the server's return within a second and send what waits at once. */
  const connection = (() => {
    const POLL_MS = 500;
    const listeners = [];
    let poller = null, waiting = 0, reconnecting = false;
    const self = { offline: false };
    function banner() {
      const box = document.getElementById("connection");
      if (!box) return;
      const n = waiting ? ` ${waiting} label${waiting === 1 ? "" : "s"} waiting on this device` : "";
      let text = "";
      if (self.offline) text = `Offline: the server cannot be reached.${n ? n + "; they are sent as soon as it answers." : " Checking again every half second."}`;
      else if (reconnecting && waiting) text = `Reconnecting: sending${n}…`;
      box.dataset.kind = self.offline ? "offline" : reconnecting ? "reconnecting" : "waiting";
      box.textContent = text;
      box.hidden = !text;
    }
    async function probe() {
      try {
        const res = await fetch("/api/v1/health", { cache: "no-store" });
        if (res.ok) back();
      } catch { /* still down */ }
    }
    function lost() {
      if (self.offline) return;
      self.offline = true;
      banner();
      poller = setInterval(probe, POLL_MS);
    }
    function back() {
      if (!self.offline) return;
      self.offline = false;
      clearInterval(poller);
      reconnecting = true;
      banner();
      for (const f of listeners) f();
    }
    self.lost = lost;
    self.ok = () => { if (self.offline) back(); };
    self.onBack = (f) => listeners.push(f);
    self.setWaiting = (n) => { waiting = n; if (!n) reconnecting = false; banner(); };
    window.addEventListener("offline", lost);
    window.addEventListener("online", probe);
    return self;
  })();

  /* One API call. Network failures raise ApiError with network=true (callers may retry). */
  async function api(method, path, data, opts = {}) {
    const headers = { "Accept": "application/json" };
    const t = token();
    if (t) headers["Authorization"] = "Bearer " + t;
    let payload;
    if (data instanceof FormData) payload = data;
    else if (data !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(data); }
    let res;
    try {
      res = await fetch("/api/v1" + path, { method, headers, body: payload, signal: opts.signal });
    } catch (err) {
      if (!(opts.signal && opts.signal.aborted)) connection.lost();
      throw new ApiError(0, "the server could not be reached: " + err.message, true);
    }
    connection.ok();
    if (res.status === 401 && !opts.noRedirect) { logout(); toLogin(); throw new ApiError(401, "log in again", false); }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    if (!res.ok) {
      const msg = json && json.error ? json.error.message : (text || res.statusText);
      throw new ApiError(res.status, msg, res.status >= 500);
    }
    return json;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== false)
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  let toastTimer;
  function toast(message, kind) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.className = "toast show" + (kind ? " " + kind : "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.className = "toast"; }, 4000);
  }

  function fmt(x, digits = 3) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    if (typeof x !== "number") return String(x);
    return Number.isInteger(x) ? String(x) : x.toFixed(digits);
  }
  function pct(x) { return x === null || x === undefined ? "–" : (100 * x).toFixed(1) + "%"; }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : "–"; }

  const isImage = (v) => typeof v === "string" && (/^data:image\//.test(v) || /^https?:\/\/\S+\.(png|jpe?g|gif|webp|svg)(\?\S*)?$/i.test(v));
  const isLongText = (k, v) => typeof v === "string" && (v.length > 60 || /^(text|body|content|message|title|sentence)$/i.test(k));

  /* A stored image file (imported from a folder, zip or list): {image_file: sha256, ...}. */
  const isFileImage = (v) => !!v && typeof v === "object" && typeof v.image_file === "string" && /^[0-9a-f]{64}$/.test(v.image_file);
  /* Its <img>: an <img> cannot send the login's token, so the picture (or its thumbnail) is
     fetched with it and shown from a blob URL; opts.src names the item {project, item}. */
  function fileImage(k, v, opts) {
    const alt = opts.alt || ("item field " + k);
    const small = v.width && v.height && Math.max(v.width, v.height) <= 128;  /* pixel art stays sharp */
    const img = el("img", { alt, class: "item-image file-image" + (small ? "" : " photo"), width: v.width ? String(v.width) : null, height: v.height ? String(v.height) : null, dataset: { field: k } });
    if (!opts.src) return img;
    const thumb = opts.thumb !== undefined ? opts.thumb : !!opts.compact;
    const path = `/api/v1/projects/${opts.src.project}/items/${opts.src.item}/${thumb ? "thumbnail" : "image"}?field=${encodeURIComponent(k)}`;
    const headers = token() ? { Authorization: "Bearer " + token() } : {};
    fetch(path, { headers }).then((res) => (res.ok ? res.blob() : Promise.reject(new Error(String(res.status)))))
      .then((blob) => {
        const url = URL.createObjectURL(blob);
        img.addEventListener("load", () => { img.dataset.loaded = "true"; URL.revokeObjectURL(url); }, { once: true });
        img.src = url;
      })
      .catch(() => { img.alt = alt + " (the picture could not be loaded)"; img.dataset.loaded = "error"; });
    return img;
  }

  /* An item's data: pictures as images, long text as paragraphs, other fields as a table. */
  function renderData(data, opts = {}) {
    const box = el("div", { class: "item-data" + (opts.compact ? " compact" : "") });
    const entries = Object.entries(data || {});
    const hasImage = entries.some(([, v]) => isImage(v) || isFileImage(v));
    const rows = [];
    for (const [k, v] of entries) {
      if (isFileImage(v)) box.append(fileImage(k, v, opts));
      else if (isImage(v)) box.append(el("img", { src: v, alt: opts.alt || ("item field " + k), class: "item-image" }));
      else if (isLongText(k, v)) box.append(el("p", { class: "item-text", dir: "auto", dataset: { field: k } }, v));
      else if (Array.isArray(v) && hasImage) continue; /* raw pixels beside the picture */
      else rows.push([k, v]);
    }
    if (rows.length && !opts.compact) {
      const table = el("table", { class: "fields" },
        el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k),
          el("td", { dir: "auto" }, Array.isArray(v) ? (v.length > 12 ? `[${v.length} values]` : JSON.stringify(v))
            : (typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)))))));
      box.append(table);
    } else if (rows.length && !box.childNodes.length) {
      box.append(el("p", { class: "item-text", dir: "auto" }, rows.map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ")));
    }
    return box;
  }

  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return "k" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  /* The server's vocabulary (the page shell's JSON, from the Python enums): roles with ranks,
     review reasons with their texts, job and round statuses, measures. Nothing here keeps a
     copy. */
  const VOCABULARY = JSON.parse(document.getElementById("vocabulary").textContent);
  const byName = (members) => Object.freeze(Object.fromEntries(members.map((m) => [m.name, m.value])));
  const ROLE = byName(VOCABULARY.roles);  /* e.g. ROLE.OWNER, the owner role's value */
  const ROLES = Object.freeze(VOCABULARY.roles.map((r) => r.value));  /* lowest first */
  const RANK = Object.freeze(Object.fromEntries(VOCABULARY.roles.map((r) => [r.value, r.rank])));
  const REASON = byName(VOCABULARY.reasons);
  const REASONS = Object.freeze(Object.fromEntries(VOCABULARY.reasons.map((r) => [r.value, Object.freeze(r)])));
  const STATUS = Object.freeze({ job: byName(VOCABULARY.job_statuses), round: byName(VOCABULARY.round_statuses) });
  /* What a payoff or a round's holdout measures: MEASURE.LABEL_F1 is its value, MEASURES its words. */
  const MEASURE = byName(VOCABULARY.measures);
  const MEASURES = Object.freeze(Object.fromEntries(VOCABULARY.measures.map((m) => [m.value, m.label])));
  /* The review queue's label check: CHECK.CURRENT, STALE, NONE, OFF. */
  const CHECK = byName(VOCABULARY.check_states);
  /* Whether ``role`` may do what ``minimum`` may. */
  const atLeast = (role, minimum) => role in RANK && RANK[role] >= RANK[minimum];
  /* A consensus or suggestion as text: null is a tie, a list its labels joined. */
  const labelText = (l) => (l === null || l === undefined ? REASONS[REASON.TIE].label : [].concat(l).join(", ") || "(none)");

  /* Page states: what a page shows instead of its content when there is nothing to show
     (empty project), no way in (no access, not found) or no answer (server error, with a
     retry). ``actions`` are links {href, text} or buttons {text, onclick}. */
  function showState(kind, title, text, actions = []) {
    const box = document.getElementById("page-state");
    const pageBody = document.getElementById("page-body");
    if (!box) return;
    box.dataset.kind = kind;
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    box.replaceChildren(AL.el("h1", { id: "page-state-title" }, title), AL.el("p", {}, text),
      AL.el("div", { class: "row" }, actions.map((a) => (a.href
        ? AL.el("a", { class: "button" + (a.primary ? " primary" : ""), href: a.href }, a.text)
        : AL.el("button", { type: "button", class: a.primary ? "primary" : null, onclick: a.onclick }, a.text)))));
    box.hidden = false;
    if (pageBody) pageBody.hidden = true;
    markReady();
  }
  function hideState() {
    const box = document.getElementById("page-state");
    const pageBody = document.getElementById("page-body");
    if (box) box.hidden = true;
    if (pageBody) pageBody.hidden = false;
  }
  /* A page failed to load: not found, no access, or the server did not answer (a retry). */
  function failed(err, retry) {
    const back = { href: "/", text: "Back to the projects" };
    const id = body().dataset.project;
    if (err.status === 404) showState("missing", "Not found", id
      ? `There is no project ${id}, or you are not one of its members. Ask its owner to add you.`
      : `Not found: ${err.message}`, [back]);
    else if (err.status === 403) showState("forbidden", "No access",
      `Your role in this project does not open this page (${err.message}).`,
      [id ? { href: `/projects/${id}/label`, text: "Label instead", primary: true } : back, back]);
    else {
      let done = false;
      const again = () => { if (done) return; done = true; hideState(); projectPromise = null; retry(); };
      showState("error", "The server did not answer",
        `${err.message}. Your work on this page is kept; this page tries again when the server is back.`,
        [{ text: "Try again", primary: true, onclick: again }, back]);
      if (err.status === 0) connection.onBack(again);  // unreachable: retried on its return
    }
  }
  /* The page has its content (tests and screenshots wait for it). */
  function markReady() { body().dataset.state = "ready"; }

  let projectPromise = null;
  /* The page's project (from data-project); fills the header and hides pages above the role. */
  function project() {
    const id = body().dataset.project;
    if (!id) return Promise.resolve(null);
    if (!projectPromise) projectPromise = api("GET", "/projects/" + id).then((p) => {
      const name = document.getElementById("project-name");
      if (name) name.textContent = p.name;
      document.title = document.title.replace("·", "· " + p.name + " ·");
      document.querySelectorAll("[data-min-role]").forEach((a) => {
        if (!atLeast(p.role, a.dataset.minRole)) a.hidden = true;
      });
      return p;
    });
    projectPromise.catch(() => { projectPromise = null; });
    return projectPromise;
  }

  /* Who is logged in and "Log out", once the page knows the token works (never beside the
     login form). */
  function showWho() {
    const u = user();
    const who = document.getElementById("who");
    const out = document.getElementById("logout");
    if (!u || !token() || !out.hidden) return;
    who.textContent = u.username;
    out.hidden = false;
  }

  function initHeader() {
    document.getElementById("logout").addEventListener("click", async () => {
      /* The server revokes the token: it stops working everywhere it was copied to. */
      try { await api("POST", "/auth/logout", undefined, { noRedirect: true }); } catch { /* offline: forget it here */ }
      logout();
      location.assign("/");
    });
    if (body().dataset.page !== "home") showWho();
    if (body().dataset.project && !token()) toLogin();
  }
  document.addEventListener("DOMContentLoaded", initHeader);

  /* Modal dialogs: open with focus inside, Escape closes, focus returns where it was. */
  function openDialog(dialog) {
    dialog.returnTo = document.activeElement;
    dialog.showModal();
    const first = dialog.querySelector("[autofocus], input, textarea, select, button");
    if (first) first.focus();
  }
  function closeDialog(dialog) {
    dialog.close();
    if (dialog.returnTo && dialog.returnTo.focus) dialog.returnTo.focus();
  }

  return { api, ApiError, token, user, setLogin, logout, el, toast, fmt, pct, when, renderData,
           uuid, project, ROLE, ROLES, RANK, atLeast, REASON, REASONS, STATUS, MEASURE, MEASURES, CHECK, labelText,
           openDialog, closeDialog, isImage, isFileImage, showState, hideState, failed, markReady, showWho, connection };
})();
