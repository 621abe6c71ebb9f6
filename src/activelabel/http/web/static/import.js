/* The import page: upload a file, see its first rows and the role proposed for each column
   (with why), change the roles, import, follow the job. Answer-like columns are never shown
   to annotators unless the owner picks "content" for them, and the page says so. */
"use strict";
(() => {
  const pid = document.body.dataset.project;
  const $ = (id) => document.getElementById(id);
  /* What each role means, in the owner's words. */
  const ROLE_TEXT = {
    content: "shown to annotators", private: "private (kept, never shown)",
    label: "existing label", annotator: "who gave the label", label_time: "when the label was given",
    gold: "gold answer", prediction: "model prediction", prediction_score: "prediction score (0-1)",
    prediction_model: "model name", vector: "embedding vector", split: "split",
    external_id: "item id", ignore: "ignore",
  };
  let preview = null;

  const show = (v) => (v === null || v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v));
  const roles = () => Object.fromEntries([...document.querySelectorAll("#mapping select")].map((s) => [s.dataset.column, s.value]));

  function warning(p, role) {
    if (!p.answer_like) return "";
    return role === "content"
      ? "Looks like an answer, and you chose to show it to annotators."
      : "Looks like an answer: never shown to annotators unless you choose “shown to annotators”.";
  }

  function mappingRow(p) {
    const select = AL.el("select", { "aria-label": `role of column ${p.column}`, "data-column": p.column },
      preview.roles.map((r) => AL.el("option", { value: r, selected: r === p.role }, ROLE_TEXT[r] || r)));
    const note = AL.el(p.answer_like ? "strong" : "span", { "data-warning": p.column, style: "display:block" }, warning(p, p.role));
    select.addEventListener("change", () => { note.textContent = warning(p, select.value); rowsTable(); });
    return AL.el("tr", { "data-column": p.column }, AL.el("th", { scope: "row" }, p.column), AL.el("td", {}, select),
      AL.el("td", {}, p.reason, note), AL.el("td", {}, p.samples.map(show).join(" · ")));
  }

  /* The first rows with only the columns annotators would see. */
  function rowsTable() {
    const chosen = roles();
    const shown = preview.columns.filter((c) => chosen[c] === "content");
    const table = $("preview-rows");
    table.querySelector("thead").replaceChildren(AL.el("tr", {}, AL.el("th", { scope: "col" }, "line"),
      shown.map((c) => AL.el("th", { scope: "col" }, c))));
    table.querySelector("tbody").replaceChildren(...preview.rows.map((r) => AL.el("tr", {},
      AL.el("td", { class: "num" }, String(r.line)), shown.map((c) => AL.el("td", {}, show(r.row[c]).slice(0, 200))))));
  }

  function render(p) {
    preview = p;
    $("mapping-card").hidden = false;
    const saved = p.saved_mapping ? " Roles start from the project's saved mapping." : "";
    $("mapping-note").textContent = `${p.rows.length} rows read from ${p.upload.replace(/^[0-9a-f]{12}-/, "")} (${p.format}); ${p.columns.length} columns.${saved}`;
    $("mapping").querySelector("tbody").replaceChildren(...p.proposal.map(mappingRow));
    rowsTable();
    $("import-result").replaceChildren();
    $("h-mapping").scrollIntoView({ block: "start" });  // the next step in view
  }

  /* The upload with its progress (fetch cannot tell how much of a body is sent): the bytes
     sent in a progress bar, then "reading" while the server proposes the roles. */
  function send(path, form, file) {
    const bar = $("upload-progress"), text = $("upload-status");
    const kb = (n) => `${Math.round(n / 1024).toLocaleString()} kB`;
    bar.hidden = false; bar.value = 0; bar.max = file.size || 1;
    text.textContent = `Uploading ${file.name}: 0 of ${kb(file.size)}…`;
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/v1" + path);
      xhr.setRequestHeader("Accept", "application/json");
      if (AL.token()) xhr.setRequestHeader("Authorization", "Bearer " + AL.token());
      xhr.upload.addEventListener("progress", (ev) => {
        bar.value = ev.loaded;
        text.textContent = ev.loaded >= (ev.total || file.size)
          ? `Uploaded ${kb(file.size)}: reading the columns…` : `Uploading ${file.name}: ${kb(ev.loaded)} of ${kb(ev.total || file.size)}…`;
      });
      xhr.addEventListener("load", () => {
        let json = null;
        try { json = JSON.parse(xhr.responseText); } catch { json = null; }
        if (xhr.status >= 200 && xhr.status < 300) {
          bar.value = bar.max;
          text.textContent = `Uploaded ${file.name} (${kb(file.size)}).`;
          resolve(json);
        } else reject(new Error(json && json.error ? json.error.message : `the upload was refused (HTTP ${xhr.status})`));
      });
      xhr.addEventListener("error", () => reject(new Error("the server could not be reached: try again")));
      xhr.send(form);
    }).catch((err) => { bar.hidden = true; text.textContent = ""; throw err; });
  }

  async function upload(ev) {
    ev.preventDefault();
    $("preview-error").textContent = "";
    const file = $("import-file").files[0];
    const form = new FormData();
    form.append("file", file);
    try { render(await send(`/projects/${pid}/uploads`, form, file)); }
    catch (err) { $("preview-error").textContent = err.message; }
  }

  function resultText(r) {
    return `Imported ${r.inserted} items (${r.duplicates} duplicates, ${r.rejected_count} rejected rows) with ` +
      `${r.labels ?? 0} existing labels, ${r.predictions ?? 0} predictions and ${r.vectors ?? 0} vectors.` +
      (r.labels_skipped ? ` ${r.labels_skipped} existing labels of items already in left out: ` +
        Object.entries(r.labels_skipped_why || {}).map(([code, n]) => `${n}: ${(r.labels_skipped_reasons || {})[code] || code}`).join("; ") + "." : "");
  }

  async function follow(jobId, box = $("import-result")) {
    const status = AL.el("p", { id: "import-progress" }, "Queued…");
    box.replaceChildren(status);
    for (;;) {
      const j = await AL.api("GET", `/projects/${pid}/jobs/${jobId}`);
      const p = j.progress || {};
      if (j.status === AL.STATUS.job.DONE) {
        status.textContent = resultText(j.result);
        if (j.result.rejected && j.result.rejected.length) box.append(AL.el("div", { class: "table-wrap" }, AL.el("table", { id: "import-rejected" },
          AL.el("caption", {}, "Rejected rows"),
          AL.el("thead", {}, AL.el("tr", {}, AL.el("th", { scope: "col" }, "line"), AL.el("th", { scope: "col" }, "reason"))),
          AL.el("tbody", {}, j.result.rejected.map((x) => AL.el("tr", {}, AL.el("td", { class: "num" }, String(x.line)), AL.el("td", {}, x.reason)))))));
        const go = AL.el("a", { href: `/projects/${pid}/label`, class: "button primary", id: "start-labeling" }, "Start labeling");
        box.append(AL.el("p", {}, go));
        go.focus();  // the next step, for the keyboard too
        document.body.dataset.imported = "true";
        return;
      }
      if (j.status === AL.STATUS.job.FAILED) { status.textContent = `The import failed: ${j.error}`; return; }
      status.textContent = `${j.status}: ${p.rows_seen ?? 0} rows read, ${p.inserted ?? 0} imported, ${p.rejected ?? 0} rejected…`;
      await new Promise((r) => setTimeout(r, 700));
    }
  }

  async function startImport(ev) {
    ev.preventDefault();
    $("import-error").textContent = "";
    const body = { mapping: { columns: roles() } };
    if ($("import-split").value) body.split = $("import-split").value;
    let job;
    try { job = await AL.api("POST", `/projects/${pid}/uploads/${encodeURIComponent(preview.upload)}/import`, body); }
    catch (err) { $("import-error").textContent = err.message; return; }
    await follow(job.job_id);
  }

  /* Images: a zip upload, else a folder on the server. */
  async function importImages(ev) {
    ev.preventDefault();
    $("images-error").textContent = "";
    const zip = $("images-zip").files[0], folder = $("images-folder").value.trim();
    const split = $("images-split").value || null, labels = $("images-labels").checked;
    if (!zip && !folder) { $("images-error").textContent = "Choose a zip of images, or give a folder on the server."; return; }
    let job;
    try {
      if (zip) {
        const form = new FormData();
        form.append("file", zip);
        form.append("labels_from_folders", labels ? "true" : "false");
        if (split) form.append("split", split);
        job = await AL.api("POST", `/projects/${pid}/images/zip`, form);
      } else {
        job = await AL.api("POST", `/projects/${pid}/images/folder`, { path: folder, split, labels_from_folders: labels });
      }
    } catch (err) { $("images-error").textContent = err.message; return; }
    await follow(job.job_id, $("images-result"));
  }

  document.addEventListener("DOMContentLoaded", async () => {
    if (document.body.dataset.page !== "import") return;
    if (!AL.token()) { location.assign(`/?next=/projects/${pid}/import`); return; }
    const project = await AL.project();
    if (!AL.atLeast(project.role, AL.ROLE.OWNER)) {
      document.querySelector("main").replaceChildren(AL.el("p", {}, "Imports are for the project's owners."));
      return;
    }
    $("preview-form").addEventListener("submit", upload);
    $("import-form").addEventListener("submit", startImport);
    $("images-form").addEventListener("submit", importImages);
    document.body.dataset.loaded = "true";
  });
})();
