// berth's dashboard script: live updates and actions. The pages are complete without it.
//
// - An element with data-live="URL" is refreshed every 2 s: the page at URL is fetched (same
//   origin, the session cookie) and each child with a data-key is replaced when it changed;
//   the element stops refreshing when the new copy no longer has data-live (a job that ended).
// - A <pre data-follow="URL"> follows a job's output over the API's Server-Sent Events.
// - A button with data-post="URL" sends POST URL (data-method: another method; data-body: a
//   JSON body; data-goto: go to that path plus the answer's id) to the API, then refreshes the
//   live regions.
// - A form with data-api="URL" sends its fields to the API as JSON (data-method, data-type
//   "number", data-path fills {name} in the URL); one with data-upload="URL" sends its file
//   as the body. Both are hidden until this script shows them.
// - A job's log gets a search box (a client-side filter of its lines); a service's page
//   streams its container's output while it runs.
"use strict";
(function () {
  const POLL_MS = 2000;
  const flash = (msg, ok) => {
    const f = document.getElementById("flash");
    if (!f) return;
    f.textContent = msg || "";
    f.classList.toggle("ok", !!ok);
  };

  // --- live regions ---
  const regions = [];
  async function refresh(region) {
    if (region.busy || !region.el.dataset.live) return;
    region.busy = true;
    try {
      const res = await fetch(region.el.dataset.live, { credentials: "same-origin", headers: { "X-Berth-Live": "1" } });
      if (res.status === 401 || (res.redirected && new URL(res.url).pathname === "/signin")) {
        flash("Your session ended: sign in again to see live updates.");
        region.stopped = true;
        return;
      }
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const fresh = doc.getElementById(region.el.id);
      if (!fresh) return;
      merge(region.el, fresh);
      if (!fresh.dataset.live) {
        delete region.el.dataset.live;
        region.stopped = true;
      }
    } catch (e) {
      // A network hiccup: try again at the next tick.
    } finally {
      region.busy = false;
    }
  }

  // merge replaces the children of el that differ from fresh's (matched by data-key), adds
  // new ones and removes gone ones, in fresh's order; the rest stay as they are (focus kept).
  function merge(el, fresh) {
    const old = new Map();
    for (const c of Array.from(el.children)) old.set(c.dataset.key, c);
    let prev = null;
    for (const n of Array.from(fresh.children)) {
      const key = n.dataset.key;
      let cur = old.get(key);
      const node = document.importNode(n, true);
      if (cur && cur.outerHTML !== n.outerHTML) {
        keepOpen(cur, node);
        const hadFocus = cur.contains(document.activeElement);
        cur.replaceWith(node);
        cur = node;
        if (hadFocus) focusLike(node);
      } else if (!cur) {
        cur = node;
      }
      old.delete(key);
      const want = prev ? prev.nextElementSibling : el.firstElementChild;
      if (want !== cur) el.insertBefore(cur, want);
      prev = cur;
    }
    for (const c of old.values()) c.remove();
    wire(el);
  }

  // keepOpen carries the open <details> of a replaced element over to its new copy.
  function keepOpen(from, to) {
    const a = from.querySelectorAll("details"), b = to.querySelectorAll("details");
    a.forEach((d, i) => { if (d.open && b[i]) b[i].open = true; });
  }

  function focusLike(node) {
    const f = node.querySelector("button:not([hidden]), a[href]");
    if (f) f.focus();
  }

  // --- actions ---
  function wire(root) {
    root.querySelectorAll("button[data-post]").forEach((b) => {
      b.hidden = false;
      if (b.dataset.wired) return;
      b.dataset.wired = "1";
      b.addEventListener("click", () => act(b));
    });
  }

  // send calls the API with the session cookie and says how it went; it returns the answer's
  // JSON (or {}) when it succeeded, null otherwise.
  async function send(url, init, label) {
    flash("");
    init.credentials = "same-origin";
    try {
      const res = await fetch(url, init);
      let body = null;
      try { body = await res.json(); } catch (e) { /* not JSON */ }
      if (!res.ok) {
        let msg = res.status + " " + res.statusText;
        if (body && body.error && body.error.message) msg = body.error.message;
        flash(label + " failed: " + msg);
        return null;
      }
      flash(label + ": done.", true);
      return body || {};
    } catch (e) {
      flash(label + " failed: " + e.message);
      return null;
    }
  }

  async function act(b) {
    if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
    b.disabled = true;
    b.setAttribute("aria-busy", "true");
    const label = b.textContent.trim();
    // While a start or stop runs, refresh fast so the card shows each state on the way.
    const fast = setInterval(() => regions.forEach(refresh), 500);
    const init = { method: b.dataset.method || "POST" };
    if (b.dataset.body) {
      init.body = b.dataset.body;
      init.headers = { "Content-Type": "application/json" };
    }
    try {
      const body = await send(b.dataset.post, init, label);
      if (body && b.dataset.goto && body.id) {
        window.location.assign(b.dataset.goto + encodeURIComponent(body.id));
        return;
      }
    } finally {
      clearInterval(fast);
      b.disabled = false;
      b.removeAttribute("aria-busy");
      regions.forEach((r) => { r.stopped = false; refresh(r); });
    }
  }

  // --- forms ---
  function wireForms(root) {
    root.querySelectorAll("form[data-api], form[data-upload]").forEach((f) => {
      f.hidden = false;
      if (f.dataset.wired) return;
      f.dataset.wired = "1";
      f.addEventListener("submit", (ev) => { ev.preventDefault(); submitForm(f); });
    });
  }

  async function submitForm(f) {
    const button = f.querySelector("button[type=submit]");
    const label = button ? button.textContent.trim() : "Send";
    let url;
    const init = { method: f.dataset.method || "POST" };
    if (f.dataset.upload) {
      const input = f.querySelector("input[type=file]");
      const file = input && input.files[0];
      if (!file) return;
      const q = new URLSearchParams({ name: file.name });
      const tags = f.elements.tags ? f.elements.tags.value : "";
      tags.split(",").map((t) => t.trim()).filter(Boolean).forEach((t) => q.append("tag", t));
      url = f.dataset.upload + "?" + q.toString();
      init.body = file;
      init.headers = { "Content-Type": "application/octet-stream" };
    } else {
      url = f.dataset.api;
      const body = {};
      for (const el of Array.from(f.elements)) {
        if (!el.name) continue;
        if (el.dataset.path) {
          url = url.replace("{" + el.dataset.path + "}", encodeURIComponent(el.value));
          continue;
        }
        if (el.value === "") continue;
        body[el.name] = el.dataset.type === "number" ? Number(el.value) : el.value;
      }
      init.body = JSON.stringify(body);
      init.headers = { "Content-Type": "application/json" };
    }
    if (button) button.disabled = true;
    try {
      const body = await send(url, init, label);
      if (!body) return;
      if (f.dataset.shows === "token" && body.token) showToken(body);
      f.reset();
    } finally {
      if (button) button.disabled = false;
      regions.forEach((r) => { r.stopped = false; refresh(r); });
    }
  }

  // showToken shows a new token's value, this once (the server keeps only its hash).
  function showToken(t) {
    const box = document.getElementById("token-value");
    if (!box) return;
    box.querySelector("code").textContent = t.token;
    box.hidden = false;
    flash("Token " + t.name + " created: copy its value now, it is not shown again.", true);
  }

  // --- a job's log search ---
  function logSearch() {
    const input = document.getElementById("log-search");
    const pre = document.getElementById("log");
    if (!input || !pre) return;
    input.closest("label").hidden = false;
    const out = document.createElement("pre");
    out.className = pre.className;
    out.id = "log-filtered";
    out.tabIndex = 0;
    out.hidden = true;
    out.setAttribute("aria-label", "The log's matching lines");
    pre.after(out);
    const matches = document.getElementById("log-matches");
    const apply = () => {
      const q = input.value.trim().toLowerCase();
      if (!q) {
        out.hidden = true;
        pre.hidden = false;
        if (matches) matches.textContent = "";
        return;
      }
      const lines = pre.textContent.split("\n").filter((l) => l.toLowerCase().includes(q));
      out.textContent = lines.join("\n");
      out.hidden = false;
      pre.hidden = true;
      if (matches) matches.textContent = lines.length + (lines.length === 1 ? " line matches." : " lines match.");
    };
    input.addEventListener("input", apply);
    new MutationObserver(apply).observe(pre, { childList: true, characterData: true, subtree: true });
  }

  // --- a service's live logs ---
  function serviceLogs() {
    const pre = document.getElementById("svc-log");
    if (!pre || pre.dataset.streaming) return;
    const marker = document.querySelector("[data-stream-url]");
    const url = marker ? marker.dataset.streamUrl : pre.dataset.stream;
    if (url) stream(pre, url);
  }

  async function stream(pre, url) {
    pre.dataset.streaming = "1";
    const note = document.getElementById("svc-log-note");
    try {
      const res = await fetch(url, { credentials: "same-origin" });
      if (!res.ok || !res.body) return;
      pre.textContent = "";
      if (note && note.firstChild) note.firstChild.textContent = "Live: the container's output. ";
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const stick = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
        pre.appendChild(document.createTextNode(dec.decode(value, { stream: true })));
        if (stick) pre.scrollTop = pre.scrollHeight;
      }
      if (note && note.firstChild) note.firstChild.textContent = "The container stopped. ";
    } catch (e) {
      // The stream broke: the next refresh starts it again while the service runs.
    } finally {
      delete pre.dataset.streaming;
    }
  }

  // --- the live log ---
  function follow(pre) {
    const note = document.getElementById("log-note");
    const src = new EventSource(pre.dataset.follow);
    let first = true;
    const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
    const add = (stream, text) => {
      if (first) { pre.textContent = ""; first = false; if (note) note.textContent = "Live."; }
      const stick = atBottom();
      pre.appendChild(document.createTextNode(stream === "system" ? prefixLines(text) : text));
      if (stick) pre.scrollTop = pre.scrollHeight;
    };
    for (const stream of ["stdout", "stderr", "system"]) {
      src.addEventListener(stream, (ev) => {
        try { const c = JSON.parse(ev.data); add(stream, c.text); } catch (e) { /* skip a bad event */ }
      });
    }
    src.addEventListener("end", (ev) => {
      src.close();
      if (first) first = false; // nothing streamed: the rendered log stays
      try {
        const j = JSON.parse(ev.data);
        if (note) note.textContent = "The job ended: " + j.state + ".";
      } catch (e) { /* ignore */ }
      regions.forEach(refresh);
    });
    src.onerror = () => {
      // A closed stream would be replayed from the start on reconnecting: stop instead.
      src.close();
      if (note && !note.textContent.startsWith("The job ended")) note.textContent = "The live log stopped; reload to see the rest.";
    };
  }

  function prefixLines(text) {
    return text.split("\n").map((l, i, a) => (l === "" && i === a.length - 1 ? l : "[berth] " + l)).join("\n");
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-live]").forEach((el) => {
      if (!el.id) return;
      regions.push({ el: el, busy: false, stopped: false });
    });
    setInterval(() => {
      regions.forEach((r) => { if (!r.stopped && !document.hidden) refresh(r); });
      serviceLogs();
    }, POLL_MS);
    wire(document);
    wireForms(document);
    logSearch();
    serviceLogs();
    document.querySelectorAll("pre[data-follow]").forEach(follow);
  });
})();
