/* Login, then the projects the caller may open. */
"use strict";
(() => {
  const next = new URLSearchParams(location.search).get("next");
  const safeNext = next && next.startsWith("/") && !next.startsWith("//") ? next : null;

  async function showProjects() {
    const projects = await AL.api("GET", "/projects");
    if (safeNext) { location.assign(safeNext); return; }
    document.getElementById("projects").hidden = false;
    AL.showWho();
    const list = document.getElementById("project-list");
    list.replaceChildren();
    document.getElementById("no-projects").hidden = projects.length > 0;
    for (const p of projects) {
      const links = [AL.el("a", { class: "button primary", href: `/projects/${p.id}/label` }, "Label")];
      if (AL.atLeast(p.role, AL.ROLE.REVIEWER)) {
        links.push(AL.el("a", { class: "button", href: `/projects/${p.id}/review` }, "Review"));
        links.push(AL.el("a", { class: "button", href: `/projects/${p.id}/dashboard` }, "Dashboard"));
      }
      if (AL.atLeast(p.role, AL.ROLE.OWNER)) links.push(AL.el("a", { class: "button", href: `/projects/${p.id}/settings` }, "Settings"));
      list.append(AL.el("li", { class: "card project" },
        AL.el("h2", {}, p.name),
        AL.el("p", { class: "muted" }, `${p.task} · ${p.labels.length} labels · your role: ${p.role}`),
        AL.el("div", { class: "row" }, links)));
    }
    AL.markReady();
  }

  function showLogin() {
    document.getElementById("login").hidden = false;
    AL.markReady();
    document.getElementById("username").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const error = document.getElementById("login-error");
      error.textContent = "";
      try {
        const answer = await AL.api("POST", "/auth/login", {
          username: document.getElementById("username").value,
          password: document.getElementById("password").value }, { noRedirect: true });
        AL.setLogin(answer);
        location.assign(safeNext || "/");
      } catch (err) {
        error.textContent = err.status === 401 ? "Wrong user name or password." : err.message;
      }
    });
    const start = () => showProjects().catch((err) => {
      if (err.network) AL.failed(err, start);
      else { AL.logout(); showLogin(); }
    });
    if (AL.token()) start();
    else showLogin();
  });
})();
