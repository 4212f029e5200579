// The torrent file-selection page: reads the task's key from the link's fragment, shows
// the file tree (folders chosen as a whole), keeps the selected total up to date, and
// sends the choice. Names are set as text, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const id = location.pathname.split('/').filter(Boolean)[1] || '';
const key = new URLSearchParams(location.hash.slice(1)).get('k') || '';
const headers = { 'X-Select-Key': key };
let files = [];
let totalBytes = 0;

function size(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 2 : 1)) + ' ' + units[i];
}

function say(text, kind) {
  const status = $('status');
  status.textContent = text;
  status.className = 'status' + (kind ? ' ' + kind : '');
}

async function problem(response) {
  try { return (await response.json()).error; } catch (e) { return response.status + ' ' + response.statusText; }
}

// The files as a tree of folders: { dirs: Map(name -> node), files: [file] }.
function treeOf(list) {
  const root = { dirs: new Map(), files: [] };
  for (const f of list) {
    const parts = f.path.split('/');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      if (!node.dirs.has(part)) node.dirs.set(part, { dirs: new Map(), files: [] });
      node = node.dirs.get(part);
    }
    node.files.push({ name: parts[parts.length - 1], file: f });
  }
  return root;
}

function row(name, bytes, attrs) {
  const label = document.createElement('label');
  const box = document.createElement('input');
  box.type = 'checkbox';
  box.checked = true;
  for (const [k, v] of Object.entries(attrs)) box.dataset[k] = v;
  const text = document.createElement('span');
  text.className = 'name';
  text.textContent = name;
  const weight = document.createElement('span');
  weight.className = 'size';
  weight.textContent = size(bytes);
  label.append(box, text, weight);
  return label;
}

function bytesUnder(node) {
  let n = node.files.reduce((s, f) => s + f.file.size, 0);
  for (const child of node.dirs.values()) n += bytesUnder(child);
  return n;
}

function render(node, into) {
  for (const [name, child] of [...node.dirs.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    const li = document.createElement('li');
    li.className = 'folder';
    li.append(row(name + '/', bytesUnder(child), { folder: '1' }));
    const ul = document.createElement('ul');
    render(child, ul);
    li.append(ul);
    into.append(li);
  }
  for (const f of [...node.files].sort((a, b) => a.name.localeCompare(b.name))) {
    const li = document.createElement('li');
    li.className = 'file';
    li.append(row(f.name, f.file.size, { index: String(f.file.index) }));
    into.append(li);
  }
}

function fileBoxes(scope) {
  return [...scope.querySelectorAll('input[data-index]')];
}

// A folder is checked when all its files are, mixed when some are.
function settleFolders() {
  const folders = [...$('tree').querySelectorAll('li.folder')].reverse();
  for (const li of folders) {
    const boxes = fileBoxes(li);
    const on = boxes.filter((b) => b.checked).length;
    const box = li.querySelector(':scope > label > input');
    box.checked = on === boxes.length && on > 0;
    box.indeterminate = on > 0 && on < boxes.length;
  }
}

function chosen() {
  return fileBoxes($('tree')).filter((b) => b.checked).map((b) => Number(b.dataset.index));
}

function showTotal() {
  const picked = chosen();
  const bytes = picked.reduce((s, i) => s + files[i - 1].size, 0);
  $('total').textContent = `Selected: ${picked.length} of ${files.length} files, ${size(bytes)} of ${size(totalBytes)}`;
  $('start').disabled = picked.length === 0;
  document.body.dataset.selected = String(picked.length);
}

function onChange(event) {
  const box = event.target;
  if (box.dataset.folder) {
    for (const b of fileBoxes(box.closest('li'))) b.checked = box.checked;
  }
  settleFolders();
  showTotal();
}

function setAll(on) {
  for (const b of fileBoxes($('tree'))) b.checked = on;
  settleFolders();
  showTotal();
}

async function load() {
  if (!key) {
    say('This link is incomplete: open it from the bot\'s message.', 'problem');
    document.body.dataset.ready = 'error';
    return;
  }
  const response = await fetch(`/select/${encodeURIComponent(id)}/files`, { headers, cache: 'no-store' });
  if (response.status === 409) {
    say('Waiting for the torrent\'s file list (its metadata is still downloading)…');
    setTimeout(load, 2000);
    return;
  }
  if (!response.ok) {
    say(response.status === 410 ? 'This link has expired: the download has started, or the task was cancelled.' : await problem(response), 'problem');
    document.body.dataset.ready = response.status === 410 ? 'expired' : 'error';
    return;
  }
  const list = await response.json();
  files = list.files;
  totalBytes = list.total_bytes;
  $('title').textContent = `Choose the files of ${list.name || 'task #' + list.task}`;
  document.title = `mltb · ${list.name || 'task #' + list.task}`;
  render(treeOf(files), $('tree'));
  $('tree').addEventListener('change', onChange);
  $('all').addEventListener('click', () => setAll(true));
  $('none').addEventListener('click', () => setAll(false));
  $('form').addEventListener('submit', start);
  $('form').hidden = false;
  say(`Task #${list.task}: untick what you do not want, then start the download.`);
  showTotal();
  document.body.dataset.ready = '1';
}

async function start(event) {
  event.preventDefault();
  const picked = chosen();
  if (picked.length === 0) return;
  $('start').disabled = true;
  const response = await fetch(`/select/${encodeURIComponent(id)}`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({ files: picked }),
  });
  if (response.status === 202) {
    const done = await response.json();
    $('form').hidden = true;
    say(`Started: ${done.files} file(s), ${size(done.bytes)}. The bot shows the progress; you can close this page.`, 'done');
    document.body.dataset.started = '1';
    return;
  }
  say(response.status === 410 ? 'This link has expired: the download has started, or the task was cancelled.' : await problem(response), 'problem');
  $('start').disabled = response.status === 410;
}

load().catch((e) => { say('The file list could not be loaded: ' + e, 'problem'); document.body.dataset.ready = 'error'; });
