// berth's dashboard script: live updates and actions. The pages are complete without it.
//
// - An element with data-live="URL" is refreshed every 2 s: the page at URL is fetched (same
//   origin, the session cookie) and each child with a data-key is replaced when it changed;
//   the element stops refreshing when the new copy no longer has data-live (a job that ended).
// - A <pre data-follow="URL"> follows a job's output over the API's Server-Sent Events.
// - A button with data-post="URL" sends POST URL to the API, then refreshes the live regions.
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

  async function act(b) {
    if (b.dataset.confirm && !window.confirm(b.dataset.confirm)) return;
    b.disabled = true;
    b.setAttribute("aria-busy", "true");
    flash("");
    const label = b.textContent.trim();
    // While a start or stop runs, refresh fast so the card shows each state on the way.
    const fast = setInterval(() => regions.forEach(refresh), 500);
    try {
      const res = await fetch(b.dataset.post, { method: "POST", credentials: "same-origin" });
      if (!res.ok) {
        let msg = res.status + " " + res.statusText;
        try {
          const body = await res.json();
          if (body && body.error && body.error.message) msg = body.error.message;
        } catch (e) { /* not JSON */ }
        flash(label + " failed: " + msg);
      } else {
        flash(label + ": done.", true);
      }
    } catch (e) {
      flash(label + " failed: " + e.message);
    } finally {
      clearInterval(fast);
      b.disabled = false;
      b.removeAttribute("aria-busy");
      regions.forEach((r) => { r.stopped = false; refresh(r); });
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
    setInterval(() => regions.forEach((r) => { if (!r.stopped && !document.hidden) refresh(r); }), POLL_MS);
    wire(document);
    document.querySelectorAll("pre[data-follow]").forEach(follow);
  });
})();
