/* Owners' settings (project, active learning, upload with the import's progress, members) and
   the new-project form. */
"use strict";
(() => {
  const pid = document.body.dataset.project;
  const $ = (id) => document.getElementById(id);
  const lines = (text) => text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
  /* The settings form is made on the server from the project settings' declaration: each
     .setting box names its setting and how it is edited (select, number, checkbox, JSON). */
  const settingBoxes = () => [...document.querySelectorAll("#settings-form .setting")];

  function fillSettings(s) {
    for (const box of settingBoxes()) {
      const input = $(box.dataset.setting), value = s[box.dataset.setting];
      if (box.dataset.kind === "checkbox") input.checked = value === true;
      else if (box.dataset.kind === "json") input.value = JSON.stringify(value ?? {});
      else {
        /* a value the list does not offer (a model named by import path) stays selected */
        if (box.dataset.kind === "select" && value != null && ![...input.options].some((o) => o.value === String(value))) input.append(AL.el("option", {}, String(value)));
        input.value = value ?? "";
      }
    }
  }

  function readSettings() {
    const out = {};
    for (const box of settingBoxes()) {
      const name = box.dataset.setting, input = $(name);
      if (box.dataset.kind === "checkbox") out[name] = input.checked;
      else if (box.dataset.kind === "number" && input.dataset.words && input.dataset.words.split(" ").includes(input.value.trim())) out[name] = input.value.trim();
      else if (box.dataset.kind === "number") out[name] = input.value === "" ? null : Number(input.value);
      else if (box.dataset.kind === "json") {
        try { out[name] = JSON.parse(input.value.trim() || "{}"); }
        catch { throw new Error(`${box.querySelector("label").textContent.trim()}: not valid JSON, e.g. {"field": "text"}`); }
      } else if (box.dataset.kind === "text") out[name] = input.value.trim() === "" && box.dataset.nullable ? null : input.value.trim();
      else out[name] = input.value;
    }
    return out;
  }

  function fillProject(p) {
    $("name").value = p.name;
    $("labels").value = p.labels.join("\n");
    $("guidelines").value = p.guidelines;
    $("guidelines-version").textContent = `(version ${p.guidelines_version})`;
    fillSettings(p.settings);
    // Settings of other task types (e.g. span settings on a classification project) stay hidden.
    for (const box of document.querySelectorAll(".setting[data-tasks]"))
      box.hidden = !box.dataset.tasks.split(" ").includes(p.task);
    $("private_fields").value = (p.private_fields || []).join(", ");
  }

  async function versions() {
    let list = [];
    try { list = await AL.api("GET", `/projects/${pid}/versions`); } catch { return; }
    $("versions").replaceChildren(...[...list].reverse().map((v) => AL.el("li", { dataset: { version: String(v.version) } },
      AL.el("strong", {}, `version ${v.version}`), ` · ${AL.when(v.created_at)}${v.author ? " · " + v.author : ""} · labels: ${v.labels.join(", ")}`,
      AL.el("details", {}, AL.el("summary", {}, "guidelines"), AL.el("p", { class: "guidelines" }, v.guidelines || "(none)")))));
  }

  async function save(errorId, body, message) {
    $(errorId).textContent = "";
    try {
      const p = await AL.api("PATCH", `/projects/${pid}`, body);
      fillProject(p);
      AL.toast(message);
      versions();
    } catch (err) { $(errorId).textContent = err.message; }
  }

  function saveProject(ev, project) {
    ev.preventDefault();
    const body = {};
    if ($("name").value !== project.name) body.name = $("name").value;
    if ($("guidelines").value !== project.guidelines) body.guidelines = $("guidelines").value;
    const labels = lines($("labels").value).map((l) => (project.labels.includes(Number(l)) && !project.labels.includes(l) ? Number(l) : l));
    if (JSON.stringify(labels) !== JSON.stringify(project.labels)) body.labels = labels;
    if (!Object.keys(body).length) { AL.toast("Nothing changed."); return; }
    save("project-error", body, "Project saved.").then(() => AL.api("GET", `/projects/${pid}`)).then((p) => Object.assign(project, p));
  }

  function saveSettings(ev) {
    ev.preventDefault();
    let settings;
    try { settings = readSettings(); } catch (err) { $("settings-error").textContent = err.message; return; }
    save("settings-error", { settings, private_fields: lines($("private_fields").value) }, "Settings saved.");
  }

  async function upload(ev) {
    ev.preventDefault();
    $("upload-error").textContent = "";
    const form = new FormData();
    form.append("file", $("file").files[0]);
    if ($("split").value) form.append("split", $("split").value);
    let job;
    try { job = await AL.api("POST", `/projects/${pid}/imports`, form); }
    catch (err) { $("upload-error").textContent = err.message; return; }
    const box = $("import-status");
    const status = AL.el("p", { id: "import-progress" }, "Queued…");
    box.replaceChildren(status);
    for (;;) {
      const j = await AL.api("GET", `/projects/${pid}/jobs/${job.job_id}`);
      const p = j.progress || {};
      if (j.status === AL.STATUS.job.DONE) {
        const r = j.result;
        status.textContent = `Imported ${r.inserted} items (${r.duplicates} duplicates, ${r.rejected_count} rejected rows) in ${AL.fmt(r.seconds, 1)} s.`;
        if (r.rejected && r.rejected.length) box.append(AL.el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Rejected rows" }, AL.el("table", { id: "rejected" },
          AL.el("caption", {}, "Rejected rows"),
          AL.el("thead", {}, AL.el("tr", {}, AL.el("th", { scope: "col" }, "line"), AL.el("th", { scope: "col" }, "reason"))),
          AL.el("tbody", {}, r.rejected.map((x) => AL.el("tr", {}, AL.el("td", { class: "num" }, String(x.line)), AL.el("td", {}, x.reason)))))));
        return;
      }
      if (j.status === AL.STATUS.job.FAILED) { status.textContent = `The import failed: ${j.error}`; return; }
      status.textContent = `${j.status}: ${p.rows_seen ?? 0} rows read, ${p.inserted ?? 0} imported, ${p.rejected ?? 0} rejected…`;
      await new Promise((r) => setTimeout(r, 700));
    }
  }

  /* One option per role, lowest first (the server's list), the role "selected" preselected. */
  const roleOptions = (selected) => AL.ROLES.map((r) => AL.el("option", { value: r, selected: r === selected }, r));

  async function members() {
    const list = await AL.api("GET", `/projects/${pid}/members`);
    $("members").querySelector("tbody").replaceChildren(...list.map((m) => {
      const select = AL.el("select", { "aria-label": `role of ${m.username}`, onchange: () => setRole(m.username, select.value) },
        roleOptions(m.role));
      return AL.el("tr", {}, AL.el("th", { scope: "row" }, m.username), AL.el("td", {}, select),
        AL.el("td", {}, AL.el("button", { type: "button", class: "danger", "aria-label": `remove ${m.username}`,
          onclick: () => removeMember(m.username) }, "Remove")));
    }));
  }

  async function setRole(username, role) {
    $("member-error").textContent = "";
    try { await AL.api("POST", `/projects/${pid}/members`, { username, role }); AL.toast(`${username} is now ${role}.`); }
    catch (err) { $("member-error").textContent = err.message; }
    members();
  }

  async function removeMember(username) {
    if (!confirm(`Remove ${username} from the project?`)) return;
    try { await AL.api("DELETE", `/projects/${pid}/members/${encodeURIComponent(username)}`); }
    catch (err) { $("member-error").textContent = err.message; }
    members();
  }

  async function runRound() {
    try {
      const r = await AL.api("POST", `/projects/${pid}/rounds`);
      AL.toast(r.created ? `Round ${r.number} queued.` : `Round ${r.number} is already ${r.status}.`);
    } catch (err) { AL.toast(err.message, "bad"); }
  }

  async function settingsPage() {
    const project = await AL.project();
    if (!AL.atLeast(project.role, AL.ROLE.OWNER)) {
      AL.showState("forbidden", "No access", "Settings are for the project's owners.",
        [{ href: `/projects/${project.id}/label`, text: "Label instead", primary: true }]);
      return;
    }
    fillProject(project);
    $("project-form").addEventListener("submit", (ev) => saveProject(ev, project));
    $("settings-form").addEventListener("submit", saveSettings);
    $("upload-form").addEventListener("submit", upload);
    $("run-round").addEventListener("click", runRound);
    $("member-role").append(...roleOptions(null));
    $("member-form").addEventListener("submit", (ev) => { ev.preventDefault(); setRole($("member-name").value.trim(), $("member-role").value); });
    await Promise.all([members(), versions()]);
    document.body.dataset.loaded = "true";
    AL.markReady();
  }

  function newPage() {
    if (!AL.token()) { location.assign("/?next=/projects/new"); return; }
    $("new-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("new-error").textContent = "";
      const featurizer = $("featurizer").value;
      const field = $("field").value.trim();
      const body = { name: $("name").value.trim(), task: $("task").value, labels: lines($("labels").value),
        guidelines: $("guidelines").value, settings: { featurizer, featurizer_params: field ? { field } : {} } };
      try {
        const p = await AL.api("POST", "/projects", body);
        location.assign(`/projects/${p.id}/import`);
      } catch (err) { $("new-error").textContent = err.message; }
    });
    $("new-submit").disabled = false;
    document.body.dataset.loaded = "true";
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.page === "new") newPage();
    else {
      const start = () => settingsPage().catch((err) => AL.failed(err, start));
      start();
    }
  });
})();
