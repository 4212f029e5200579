// The dashboard's page: tasks and totals arrive over server-sent events; a task's cancel
// button posts with the session's CSRF token. Written for this page; no library.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const list = document.getElementById("tasks");
const rows = new Map();

function bytes(n) {
  if (n == null) return "?";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function duration(secs) {
  if (!isFinite(secs) || secs < 0) return "–";
  const h = Math.floor(secs / 3600), m = Math.floor(secs % 3600 / 60), s = Math.floor(secs % 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}

// Which program moves the task's bytes now.
function engine(t) {
  if (t.state === "downloading" || t.state === "seeding") return "aria2";
  if (t.state === "uploading") return t.kind === "mirror" ? "rclone" : "Telegram";
  return "–";
}

function text(el, value) { if (el.textContent !== value) el.textContent = value; }

function render(t) {
  let li = rows.get(t.id);
  if (!li) {
    li = document.createElement("li");
    li.className = "task";
    li.dataset.id = t.id;
    li.innerHTML = '<span class="name"></span><button type="button" class="cancel">Cancel</button>' +
      '<progress max="100" value="0"></progress><span class="meta">' +
      '<span class="state"></span><span class="pct"></span><span class="speed"></span>' +
      '<span class="eta"></span><span class="engine"></span><span class="idn"></span></span>';
    li.querySelector("button").addEventListener("click", () => cancel(t.id, li));
    list.prepend(li);
    rows.set(t.id, li);
  }
  li.dataset.state = t.state;
  const pct = t.size_bytes ? Math.min(100, 100 * t.done_bytes / t.size_bytes) : 0;
  text(li.querySelector(".name"), t.name || `task ${t.id}`);
  text(li.querySelector(".state"), t.state + (t.waiting ? ` (${t.waiting})` : "") + (t.error ? `: ${t.error}` : ""));
  text(li.querySelector(".pct"), `${pct.toFixed(1)}% of ${bytes(t.size_bytes)}`);
  text(li.querySelector(".speed"), t.live ? `${bytes(t.speed_bytes_per_second)}/s` : "");
  const left = t.size_bytes && t.speed_bytes_per_second ? (t.size_bytes - t.done_bytes) / t.speed_bytes_per_second : NaN;
  text(li.querySelector(".eta"), t.live ? `ETA ${duration(left)}` : "");
  text(li.querySelector(".engine"), engine(t));
  text(li.querySelector(".idn"), `#${t.id}`);
  const bar = li.querySelector("progress");
  bar.value = pct;
  bar.setAttribute("aria-label", `${t.name || "task " + t.id}: ${pct.toFixed(0)}%`);
  const done = ["completed", "failed", "cancelled"].includes(t.state);
  li.querySelector("button").hidden = done;
  document.getElementById("empty").hidden = rows.size > 0;
}

async function cancel(id, li) {
  const button = li.querySelector("button");
  button.disabled = true;
  const r = await fetch(`/dashboard/tasks/${id}/cancel`, {
    method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
  });
  if (!r.ok) {
    button.disabled = false;
    const body = await r.json().catch(() => ({ error: r.statusText }));
    text(li.querySelector(".state"), `cancel refused: ${body.error}`);
  }
}

function totals(t) {
  text(document.getElementById("down"), `${bytes(t.download_bytes_per_second)}/s`);
  text(document.getElementById("up"), `${bytes(t.upload_bytes_per_second)}/s`);
  text(document.getElementById("disk"), t.disk_free_bytes == null ? "–" : `${bytes(t.disk_free_bytes)} of ${bytes(t.disk_total_bytes)}`);
  text(document.getElementById("queue"), `${t.downloading} down · ${t.uploading} up · ${t.waiting} waiting`);
}

const events = new EventSource("/dashboard/events");
const link = document.getElementById("link");
events.addEventListener("task", (e) => render(JSON.parse(e.data)));
events.addEventListener("gone", (e) => {
  const id = JSON.parse(e.data).id;
  const li = rows.get(id);
  if (li) { li.remove(); rows.delete(id); }
  document.getElementById("empty").hidden = rows.size > 0;
});
events.addEventListener("totals", (e) => totals(JSON.parse(e.data)));
events.addEventListener("ready", () => { text(link, "live"); document.body.dataset.ready = "1"; });
events.addEventListener("problem", (e) => text(link, `problem: ${e.data}`));
events.onerror = () => text(link, "reconnecting…");

// Logging out posts the CSRF token too.
document.getElementById("logout").addEventListener("submit", async (e) => {
  e.preventDefault();
  await fetch("/dashboard/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
  location.assign("/dashboard/login");
});
