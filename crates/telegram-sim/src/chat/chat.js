// The sandbox chat: talks to the Telegram simulator's control API as a user would talk
// to the bot. The bot's messages come from the simulator's log of sent calls and are
// edited in place as the bot edits them; its HTML is rendered from the message entities,
// as Telegram renders them. Written for this page; no library.
"use strict";

const params = new URLSearchParams(location.search);
const chat = Number(params.get("chat") || params.get("from") || 1000);
const from = Number(params.get("from") || chat);
const log = document.getElementById("log");
const bubbles = new Map(); // message_id → element
let seen = 0; // entries of the sent log handled

document.getElementById("who").textContent = `chat ${chat} · you are user ${from}`;

function post(path, body, headers) {
  return fetch(`/_sim/${path}`, { method: "POST", body, headers: headers || { "content-type": "application/json" } });
}

function scrollDown() { log.scrollTop = log.scrollHeight; }

// Message text with its entities, as DOM nodes. Offsets count UTF-16 code units, as
// JavaScript strings do.
function rich(text, entities) {
  const root = document.createDocumentFragment();
  const list = (entities || []).slice().sort((a, b) => a.offset - b.offset || b.length - a.length);
  function build(parent, from, to, items) {
    let at = from;
    while (items.length && items[0].offset < to) {
      const e = items.shift();
      if (e.offset < at) continue; // overlapping: Telegram nests, it never crosses
      if (e.offset > at) parent.append(text.slice(at, e.offset));
      const end = Math.min(e.offset + e.length, to);
      const inner = [];
      while (items.length && items[0].offset < end) inner.push(items.shift());
      const el = element(e, text.slice(e.offset, end));
      build(el, e.offset, end, inner);
      parent.append(el);
      at = end;
    }
    if (at < to) parent.append(text.slice(at, to));
  }
  build(root, 0, text.length, list);
  return root;
}

function element(e, text) {
  const tags = { bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre", blockquote: "blockquote", expandable_blockquote: "blockquote" };
  if (e.type === "text_link" || e.type === "url") {
    const a = document.createElement("a");
    const href = e.type === "url" ? text : e.url;
    if (/^(https?|tg|ftp|mailto):/i.test(href)) a.href = href;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    return a;
  }
  if (e.type === "spoiler") {
    const s = document.createElement("span");
    s.className = "spoiler";
    s.tabIndex = 0;
    return s;
  }
  return document.createElement(tags[e.type] || "span");
}

function keyboard(markup, messageId) {
  const rows = markup && markup.inline_keyboard;
  if (!rows || !rows.length) return null;
  const box = document.createElement("div");
  box.className = "keyboard";
  for (const row of rows) {
    const r = document.createElement("div");
    r.className = "row";
    for (const b of row) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = b.text;
      if (b.callback_data != null) {
        button.addEventListener("click", () => post("callback", JSON.stringify({ chat_id: chat, from, message_id: messageId, data: b.callback_data })));
      } else if (b.url) {
        button.addEventListener("click", () => window.open(b.url, "_blank", "noopener"));
      }
      r.append(button);
    }
    box.append(r);
  }
  return box;
}

function fill(el, entry) {
  el.replaceChildren();
  if (entry.file) {
    const doc = document.createElement("div");
    doc.className = "doc";
    const a = document.createElement("a");
    a.href = `/_sim/file/${encodeURIComponent(entry.file.file_id)}`;
    a.download = entry.file.name;
    a.textContent = entry.file.name;
    a.dataset.sha256 = entry.file.sha256;
    doc.append("📄 ", a, ` ${(entry.file.size / 1e6).toFixed(2)} MB`);
    el.append(doc);
  }
  const text = entry.text != null ? entry.text : entry.caption;
  if (text) el.append(rich(text, entry.entities));
  const kb = keyboard(entry.reply_markup, entry.message_id);
  if (kb) el.append(kb);
}

function handle(entry) {
  if (entry.chat_id !== chat) return;
  const id = entry.message_id;
  switch (entry.method) {
    case "sendMessage": case "sendDocument": case "sendVideo": case "sendPhoto": {
      const el = document.createElement("div");
      el.className = "msg bot";
      el.dataset.messageId = id;
      fill(el, entry);
      log.append(el);
      bubbles.set(id, el);
      break;
    }
    case "editMessageText": case "editMessageCaption": case "editMessageReplyMarkup": {
      const el = bubbles.get(id);
      if (!el) return;
      if (entry.method === "editMessageReplyMarkup") {
        el.querySelector(".keyboard")?.remove();
        const kb = keyboard(entry.reply_markup, id);
        if (kb) el.append(kb);
      } else {
        fill(el, entry);
      }
      el.dataset.edits = Number(el.dataset.edits || 0) + 1;
      el.querySelector(".edited")?.remove();
      const mark = document.createElement("span");
      mark.className = "edited";
      mark.textContent = "edited";
      el.append(mark);
      break;
    }
    case "deleteMessage": {
      bubbles.get(id)?.remove();
      bubbles.delete(id);
      break;
    }
  }
  scrollDown();
}

function mine(text) {
  const el = document.createElement("div");
  el.className = "msg me";
  el.textContent = text;
  log.append(el);
  scrollDown();
}

// The simulator holds the request until the log grows past what we have seen.
async function follow() {
  for (;;) {
    try {
      const r = await fetch(`/_sim/sent?wait_for=${seen + 1}&timeout_ms=25000`);
      if (r.status === 408) continue;
      const entries = await r.json();
      for (const e of entries) {
        if (e.seq >= seen) { handle(e); seen = e.seq + 1; }
      }
      document.body.dataset.seen = seen;
    } catch (err) {
      await new Promise((ok) => setTimeout(ok, 1000));
    }
  }
}

document.getElementById("compose").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = document.getElementById("text");
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  mine(text);
  await post("text", JSON.stringify({ chat_id: chat, from, text }));
});

document.getElementById("file").addEventListener("change", async (ev) => {
  const f = ev.target.files[0];
  if (!f) return;
  mine(`📎 ${f.name}`);
  const q = new URLSearchParams({ chat_id: chat, from, file_name: f.name });
  await post(`document?${q}`, await f.arrayBuffer(), { "content-type": "application/octet-stream" });
  ev.target.value = "";
});

document.body.dataset.ready = "1";
follow();
