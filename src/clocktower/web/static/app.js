// Clocktower dashboard: the live parts, in plain JavaScript.
//
// 1. Elements marked data-live="name" are refreshed from the page's status
//    endpoint (<main data-status="...">), which answers {name: html}. Polling
//    runs every few seconds while the tab is visible and backs off (doubling,
//    up to a minute) while it is hidden; coming back refreshes at once.
// 2. A run's output (<pre data-stream="...">) follows the run live with
//    Server-Sent Events and stops when the run ends.
// 3. Forms with data-confirm ask first.
"use strict";

(function () {
  const VISIBLE_EVERY = 5000;
  const HIDDEN_MAX = 60000;
  const main = document.querySelector("main[data-status]");
  let delay = VISIBLE_EVERY;
  let timer = null;

  async function refresh() {
    if (!main) return;
    try {
      const response = await fetch(main.dataset.status, {
        headers: { Accept: "application/json" }, credentials: "same-origin",
      });
      if (response.status === 401) { window.location.reload(); return; }
      if (!response.ok) return;
      const parts = await response.json();
      for (const [name, html] of Object.entries(parts)) {
        const target = document.querySelector(`[data-live="${name}"]`);
        if (target && target.innerHTML !== html) target.innerHTML = html;
      }
    } catch (err) {
      // The server may be restarting: try again on the next round.
    }
  }

  function schedule() {
    clearTimeout(timer);
    if (!main) return;
    timer = setTimeout(async () => {
      await refresh();
      delay = document.hidden ? Math.min(delay * 2, HIDDEN_MAX) : VISIBLE_EVERY;
      schedule();
    }, delay);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) { delay = VISIBLE_EVERY; refresh(); schedule(); }
  });
  schedule();

  // ------------------------------------------------------------------ live output
  const output = document.querySelector("pre[data-stream]");
  if (output && window.EventSource) {
    const status = document.querySelector("[data-tail-status]");
    const source = new EventSource(output.dataset.stream);
    const follow = () => output.scrollHeight - output.scrollTop - output.clientHeight < 40;
    source.addEventListener("output", (event) => {
      const chunk = JSON.parse(event.data);
      const stick = follow();
      for (const line of chunk.lines) {
        const span = document.createElement("span");
        span.className = line.stream === "stderr" ? "err" : "out";
        span.textContent = line.text;
        output.append(span, "\n");
      }
      if (stick) output.scrollTop = output.scrollHeight;
    });
    source.addEventListener("cut", (event) => {
      const cut = JSON.parse(event.data);
      const span = document.createElement("span");
      span.className = "cut";
      span.textContent = `[… ${cut.dropped_bytes} bytes of output dropped …]`;
      output.append(span, "\n");
    });
    source.addEventListener("state", () => { refresh(); });
    source.addEventListener("end", (event) => {
      source.close();
      const end = JSON.parse(event.data);
      if (status) status.textContent = `ended: ${end.state}`;
      output.dataset.ended = end.state;
      refresh();
    });
    source.onerror = () => { if (status) status.textContent = "reconnecting…"; };
    source.onopen = () => { if (status) status.textContent = "live"; };
  }

  // ------------------------------------------------------------------ confirmations
  document.addEventListener("submit", (event) => {
    const message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });
})();
