// edm's saga view. Every value that comes from a message or a store is put on the page
// with textContent, never as markup: an event whose user_id is "<script>…" shows as text.
"use strict";

// Errors of the page, for its tests (and for anyone who opens the console).
window.__viewErrors = [];
window.addEventListener("error", (e) => window.__viewErrors.push(String(e.message)));
window.addEventListener("unhandledrejection", (e) => window.__viewErrors.push(String(e.reason)));
const consoleError = console.error.bind(console);
console.error = (...args) => {
  window.__viewErrors.push(args.map(String).join(" "));
  consoleError(...args);
};

const STATES = {
  stuck: "⚠ stuck",
  in_flight: "… in flight",
  complete: "✓ complete",
  cancelled: "✗ cancelled",
  dead_lettered: "☠ dead-lettered",
};
const RANK = { stuck: 0, dead_lettered: 0, in_flight: 1, complete: 2, cancelled: 2 };

const sagas = new Map();
let query = "";
let chosen = null;
let clockOffset = 0; // server clock minus this page's
let renderQueued = false;
let serverMatched = 0; // sagas the server has for the current search (it sends at most 500)

const $ = (id) => document.getElementById(id);

// A response's JSON, or {error} when it is none (a proxy's page, a plain-text refusal).
async function answerOf(response) {
  try {
    return await response.json();
  } catch {
    return { error: `${response.status} ${response.statusText}` };
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function ms(value) {
  if (value === null || value === undefined) return "";
  return value < 1000 ? `${value} ms` : `${(value / 1000).toFixed(1)} s`;
}

function matches(saga) {
  return !query || saga.transaction_id.includes(query) || (saga.user_id || "").includes(query);
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderList();
  });
}

// Rows are kept by transaction and updated in place: a row stays the same element while
// its saga changes (a click, or a test's WebDriver, never meets a replaced one).
const rows = new Map();

function rowOf(tx) {
  let row = rows.get(tx);
  if (!row) {
    row = el("tr");
    row.dataset.tx = tx;
    for (const name of ["state", "tx", "style", "user", "age", "latency"]) row.append(el("td", name));
    row.addEventListener("click", () => choose(tx));
    rows.set(tx, row);
  }
  return row;
}

// Writes a node's property only when it changes: a row rewritten with what it already
// shows still costs the browser a style and layout pass, and a load run updates hundreds
// of sagas a tick.
function set(node, property, value) {
  if (node[property] !== value) node[property] = value;
}

function renderList() {
  const found = [...sagas.values()].filter(matches);
  found.sort((a, b) => RANK[a.state] - RANK[b.state] || (b.last_ms || 0) - (a.last_ms || 0));
  const shown = found.slice(0, 500);
  const now = Date.now() + clockOffset;
  const wanted = new Set();
  for (const saga of shown) {
    const row = rowOf(saga.transaction_id);
    wanted.add(saga.transaction_id);
    row.classList.toggle("chosen", saga.transaction_id === chosen);
    const [state, tx, style, user, age, latency] = row.children;
    set(state, "className", `state ${saga.state}`);
    set(state, "textContent", STATES[saga.state] || saga.state);
    set(state, "title", saga.reason || "");
    set(tx, "textContent", saga.transaction_id);
    set(style, "textContent", saga.style);
    set(user, "textContent", saga.user_id || "");
    set(age, "textContent", saga.started_ms ? ms(Math.max(0, now - saga.started_ms)) : "");
    set(latency, "textContent", ms(saga.latency_ms));
  }
  for (const tx of [...rows.keys()]) if (!wanted.has(tx)) rows.delete(tx);
  const body = document.querySelector("#sagas tbody");
  const inOrder = shown.map((saga) => rows.get(saga.transaction_id));
  const same = inOrder.length === body.children.length && inOrder.every((row, i) => body.children[i] === row);
  if (!same) body.replaceChildren(...inOrder);
  const total = Math.max(found.length, serverMatched);
  set($("counts"), "textContent", `${shown.length} shown of ${total}${query ? " found" : ""}`);
}

async function loadList() {
  const answer = await (await fetch(`/api/sagas?q=${encodeURIComponent(query)}`)).json();
  clockOffset = answer.now_ms - Date.now();
  serverMatched = answer.matched;
  for (const saga of answer.sagas) sagas.set(saga.transaction_id, saga);
  queueRender();
}

async function choose(tx) {
  chosen = tx;
  queueRender();
  const response = await fetch(`/api/sagas/${encodeURIComponent(tx)}`);
  if (!response.ok) return;
  renderDetail(await response.json());
}

// A state change of the saga, on the lifeline of the service that wrote it.
function stateNote(change, lanes, since) {
  const lane = Math.max(0, lanes.indexOf(change.by));
  const note = el("div", "state-change");
  note.dataset.state = change.state;
  // Two lanes wide where there is room: a state's name is long.
  note.style.gridColumn = `${lane + 1} / ${Math.min(lane + 3, lanes.length + 1)}`;
  note.append(el("strong", "", `saga ${change.state}`), " ", el("span", "reason", `← ${change.cause}`));
  note.append(el("div", "meta", `state change · order store${since(change.at_ms)}`));
  if (change.timer) {
    const t = change.timer;
    const took = t.set_ms !== null && t.fired_ms !== null ? ` (${ms(t.fired_ms - t.set_ms)})` : "";
    note.append(el("div", "timer", `⏱ timer of ${t.step}: set${since(t.set_ms)}, fired${since(t.fired_ms)}${took}`));
  }
  return note;
}

function renderDetail(saga) {
  const pane = $("detail-pane");
  const stored = saga.stored;
  const head = el("div", "saga-head");
  head.append(
    el("h2", "", `saga ${saga.transaction_id}`),
    el("p", `state ${saga.state}`, `${STATES[saga.state] || saga.state}${saga.reason ? ` — ${saga.reason}` : ""}`),
    el("p", "", `${saga.style} · user ${saga.user_id || "?"} · ${saga.messages} messages${saga.latency_ms !== null ? ` · ${ms(saga.latency_ms)}` : ""}`),
  );
  if (stored && stored.status) {
    head.append(el("p", "stored", `order in the store: ${stored.status}${stored.reason ? ` (${stored.reason})` : ""}`));
  }
  if (stored && stored.error) head.append(el("p", "check bad", stored.error));
  const lanes = saga.lifelines;
  const diagram = el("div", "diagram");
  diagram.id = "diagram";
  diagram.style.gridTemplateColumns = `repeat(${lanes.length}, minmax(5rem, 1fr))`;
  for (const lane of lanes) diagram.append(el("div", "lifeline", lane));
  const changes = stored ? [...stored.states] : [];
  const times = saga.arrows.map((a) => a.at_ms).concat(changes.map((c) => c.at_ms)).filter((t) => t !== null);
  const start = times.length ? Math.min(...times) : undefined;
  const since = (at) => (at !== null && at !== undefined && start !== undefined ? ` +${at - start} ms` : "");
  for (const arrow of saga.arrows) {
    // The state changes written before this message, on their writer's lifeline.
    while (changes.length && changes[0].at_ms !== null && arrow.at_ms !== null && changes[0].at_ms <= arrow.at_ms) {
      diagram.append(stateNote(changes.shift(), lanes, since));
    }
    let from = lanes.indexOf(arrow.from);
    let to = lanes.indexOf(arrow.to);
    if (from < 0) from = 0;
    if (to < 0) to = lanes.length - 1;
    const rightward = to >= from;
    const kind = arrow.kind === "dead letter" ? "dead" : arrow.kind;
    const line = el("div", `arrow ${kind} ${rightward ? "right" : "left"}${arrow.compensation ? " compensation" : ""}`);
    line.dataset.name = arrow.name;
    line.style.gridColumn = `${Math.min(from, to) + 1} / ${Math.max(from, to) + 2}`;
    line.append(el("strong", "name", arrow.name));
    if (arrow.compensation) line.append(" ", el("span", "tag", "↺ compensation"));
    if (arrow.reason && arrow.reason !== arrow.name) line.append(" ", el("span", "reason", arrow.reason));
    line.append(el("div", "meta", `${arrow.kind} · ${arrow.topic} ${arrow.partition}@${arrow.offset}${since(arrow.at_ms)}`));
    line.append(el("span", "head", rightward ? "▶" : "◀"));
    diagram.append(line);
  }
  for (const change of changes) diagram.append(stateNote(change, lanes, since));
  const parts = [head, diagram];
  if (saga.to_come.length || (stored && stored.running)) {
    const todo = el("div", "todo");
    todo.append(el("h3", "", "still to come"));
    if (stored && stored.running) {
      const then = stored.running.step === "RELEASING_STOCK"
        ? "its commands are sent again until answered (a compensation must complete)"
        : "retries the step once, then compensates";
      todo.append(el("p", "timer running", `⏱ timer of ${stored.running.step} running, set${since(stored.running.set_ms)}: no reply within the orchestrator's step timeout ${then}`));
    }
    const list = el("ol");
    for (const step of saga.to_come) list.append(el("li", "", step));
    todo.append(list);
    parts.push(todo);
  }
  pane.replaceChildren(...parts);
}

function connect() {
  const events = new EventSource("/api/stream");
  events.addEventListener("open", () => { $("connection").textContent = "live"; });
  events.addEventListener("error", () => { $("connection").textContent = "reconnecting…"; });
  events.addEventListener("sagas", (message) => {
    for (const saga of JSON.parse(message.data)) {
      sagas.set(saga.transaction_id, saga);
      if (saga.transaction_id === chosen) choose(chosen);
    }
    queueRender();
  });
  events.addEventListener("reload", () => loadList());
}

let searchTimer = null;
$("search").addEventListener("input", (e) => {
  query = e.target.value.trim();
  queueRender();
  clearTimeout(searchTimer);
  searchTimer = setTimeout(loadList, 150);
});

// Failure drills: offered by `edm lab --ui` only.
async function loadDrills() {
  const offered = await (await fetch("/api/drills")).json();
  if (!offered.length) return;
  const buttons = $("drill-buttons");
  for (const drill of offered) {
    const button = el("button", "", `${drill.name} (${drill.style})`);
    button.dataset.drill = `${drill.style}/${drill.name}`;
    button.title = drill.expected;
    button.addEventListener("click", () => runDrill(drill));
    buttons.append(button);
  }
  $("drills").hidden = false;
}

async function runDrill(drill) {
  const buttons = [...document.querySelectorAll("#drill-buttons button")];
  for (const button of buttons) button.disabled = true;
  const report = $("drill-report");
  report.replaceChildren(el("p", "", `${drill.name} (${drill.style}) running… expected: ${drill.expected}`));
  try {
    const response = await fetch(`/api/drills/${drill.style}/${drill.name}`, { method: "POST" });
    const answer = await answerOf(response);
    if (!response.ok) {
      report.replaceChildren(el("p", "check bad", `✗ ${drill.name}: ${answer.error}`));
      return;
    }
    const verdict = el("p", `verdict ${answer.passed ? "check ok" : "check bad"}`,
      `${answer.passed ? "✓ passed" : "✗ failed"}: ${answer.drill} (${answer.style})`);
    const observed = el("ul", "observed");
    for (const line of answer.observed) observed.append(el("li", "", line));
    const checks = el("ul", "checks");
    for (const check of answer.checks) {
      checks.append(el("li", `check ${check.ok ? "ok" : "bad"}`, `${check.ok ? "✓" : "✗"} ${check.text}`));
    }
    report.replaceChildren(verdict, el("p", "", `expected: ${answer.expected}`), observed, checks);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

// Tabs: the sagas, or one of the views of tabs.js.
for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tab")) other.classList.toggle("chosen", other === tab);
    for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== tab.dataset.view;
    if (tab.dataset.view === "topics-view") loadTopics();
    if (tab.dataset.view === "stock-view") loadStock();
    if (tab.dataset.view === "consumers-view") loadConsumers();
    if (tab.dataset.view === "styles-view") loadStyles();
  });
}

function showTab(view) {
  document.querySelector(`.tab[data-view="${view}"]`).click();
}

loadList().then(connect);
loadDrills();
// The Stock tab, when the view reads an inventory.
fetch("/api/about").then(answerOf).then((about) => { $("tab-stock").hidden = !about.stock; });
setInterval(queueRender, 1000); // ages move on
