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

// Tabs: the sagas, or the topics' newest messages.
let openTopic = null;
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

// Stock: each inventory's items, and its newest changes, each linked to its saga.
// A row of `cells`.
function tr(...cells) {
  const row = el("tr");
  row.append(...cells);
  return row;
}

// A table with a header row of `headers`, and `rows` as its body.
function table(className, headers, rows) {
  const thead = el("thead");
  thead.append(tr(...headers.map((name) => el("th", "", name))));
  const tbody = el("tbody");
  tbody.append(...rows);
  const node = el("table", className);
  node.append(thead, tbody);
  return node;
}

async function loadStock() {
  const response = await fetch("/api/stock");
  if (!response.ok) return;
  const labs = await response.json();
  const parts = labs.map((lab) => {
    const items = table("items", ["item", "name", "price", "in stock"], lab.items.map((item) =>
      tr(el("td", "", item.id), el("td", "", item.name), el("td", "", item.price), el("td", "", item.quantity))));
    const history = table("history", ["change", "item", "units", "saga"], lab.history.map((change) => {
      const saga = el("td", "tx", change.transaction_id);
      saga.addEventListener("click", () => { showTab("sagas-view"); choose(change.transaction_id); });
      const row = tr(el("td", "", `#${change.id}`), el("td", "", change.inventory_id),
        el("td", "", change.quantity > 0 ? `+${change.quantity}` : change.quantity), saga);
      row.dataset.tx = change.transaction_id;
      return row;
    }));
    const part = el("section");
    part.append(el("h2", "", `${lab.name}: stock`), items, el("h3", "", "newest changes"), history);
    return part;
  });
  $("stock").replaceChildren(...parts);
}

async function loadTopics() {
  const topics = await (await fetch("/api/topics")).json();
  const list = $("topic-list");
  list.replaceChildren(...topics.map((t) => {
    const button = el("button", t.topic === openTopic ? "chosen" : "", `${t.topic} (${t.seen})`);
    button.dataset.topic = t.topic;
    button.addEventListener("click", () => { openTopic = t.topic; loadTopics(); });
    return button;
  }));
  if (openTopic) await loadMessages(openTopic);
}

async function loadMessages(topic) {
  const response = await fetch(`/api/topics/${encodeURIComponent(topic)}`);
  if (!response.ok) return;
  const lines = await response.json();
  const body = document.querySelector("#messages tbody");
  body.replaceChildren(...lines.map((line) => {
    const at = line.at_ms ? new Date(line.at_ms).toISOString().slice(11, 23) : "";
    const row = tr(el("td", "", `${line.partition}@${line.offset}`), el("td", "", at),
      el("td", "key", line.key || ""), el("td", "", line.name), el("td", "", line.size));
    row.dataset.position = `${line.partition}@${line.offset}`;
    row.addEventListener("click", async () => {
      const answer = await fetch(`/api/topics/${encodeURIComponent(topic)}/${line.partition}/${line.offset}`);
      $("body").textContent = answer.ok ? (await answer.json()).body : "no longer kept";
      $("body").className = "";
    });
    return row;
  }));
}

// Consumers: each saga step's group, its lag per partition in messages and in time.
let consumersAsked = false; // one question at a time (an answer may take seconds)

async function loadConsumers() {
  if (consumersAsked) return;
  consumersAsked = true;
  try {
    await showConsumers();
  } finally {
    consumersAsked = false;
  }
}

async function showConsumers() {
  const response = await fetch("/api/consumers");
  const answer = await answerOf(response);
  if (!response.ok) {
    $("consumers-error").textContent = `✗ ${answer.error}`;
    document.querySelector("#consumers tbody").replaceChildren(); // no stale figures
    return;
  }
  $("consumers-error").textContent = answer
    .filter((group) => group.error)
    .map((group) => `✗ ${group.service}: ${group.error}`)
    .join("\n");
  const rows = [];
  for (const group of answer) {
    group.partitions.forEach((p, i) => {
      const first = i === 0;
      const waiting = p.lag_ms === null ? "?" : ms(p.lag_ms);
      const row = tr(
        el("td", "group", first ? group.group : ""),
        el("td", "", first ? `${group.service} (${group.style})` : ""),
        el("td", group.members ? "" : "check bad", first ? group.members : ""),
        el("td", "", first ? group.topic : ""),
        el("td", "", p.partition),
        el("td", "", p.committed === null ? "— (from the start)" : p.committed),
        el("td", "", p.end),
        el("td", p.lag ? "lagging" : "", p.lag),
        el("td", p.lag ? "lagging" : "", waiting),
      );
      row.dataset.group = group.group;
      row.dataset.partition = p.partition;
      row.dataset.lag = p.lag;
      rows.push(row);
    });
  }
  document.querySelector("#consumers tbody").replaceChildren(...rows);
}

// Both styles: each style's figures and traits, and the same orders in each.
const fixed = (value) => (value === null ? "—" : value.toFixed(1));

async function loadStyles() {
  const answer = await (await fetch("/api/styles")).json();
  const figures = answer.figures;
  const head = tr(el("th", "", ""), ...figures.map((f) => el("th", "", f.style)));
  const row = (label, cell) => tr(el("th", "", label), ...figures.map((f) => el("td", "", cell(f))));
  const rows = [
    row("sagas read", (f) => f.sagas),
    row("✓ complete", (f) => f.complete),
    row("✗ cancelled", (f) => f.cancelled),
    row("… not ended", (f) => f.open),
    row("messages per completed saga", (f) => fixed(f.messages_complete)),
    row("messages per cancelled saga", (f) => fixed(f.messages_cancelled)),
    row("latency of completed, median", (f) => ms(f.latency_p50_ms) || "—"),
    row("latency of completed, 95th percentile", (f) => ms(f.latency_p95_ms) || "—"),
    ...figures[0].traits.map(([label], i) => row(label, (f) => f.traits[i][1])),
  ];
  $("figures").tHead.replaceChildren(head);
  $("figures").tBodies[0].replaceChildren(...rows);
  $("place-form").hidden = !answer.can_place;
  const styles = figures.map((f) => f.style);
  $("pairs").tHead.replaceChildren(tr(el("th", "", "the same order"), ...styles.map((s) => el("th", "", s))));
  $("pairs").tBodies[0].replaceChildren(...answer.pairs.map((pair) => {
    const cells = styles.map((style) => {
      const found = pair.sagas.find(([s]) => s === style);
      const cell = el("td", "pair");
      if (!found) return cell;
      const [, tx, saga] = found;
      cell.dataset.tx = tx;
      cell.dataset.style = style;
      if (saga) {
        cell.dataset.state = saga.state;
        cell.append(el("span", `state ${saga.state}`, STATES[saga.state] || saga.state),
          el("div", "meta", `${saga.messages} messages${saga.latency_ms !== null ? ` · ${ms(saga.latency_ms)}` : ""}${saga.reason ? ` · ${saga.reason}` : ""}`));
      } else {
        cell.append(el("span", "meta", "not read yet"));
      }
      cell.append(el("div", "tx", tx));
      cell.addEventListener("click", () => { showTab("sagas-view"); choose(tx); });
      return cell;
    });
    return tr(el("td", "", pair.story), ...cells);
  }));
}

$("place-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const order = {
    user_id: $("place-user").value.trim(),
    item: Number($("place-item").value),
    quantity: Number($("place-quantity").value),
  };
  $("place-button").disabled = true;
  try {
    const response = await fetch("/api/styles/orders", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(order),
    });
    const answer = await answerOf(response);
    $("place-result").textContent = response.ok ? `✓ placed: ${answer.story}` : `✗ ${answer.error}`;
    $("place-result").className = response.ok ? "check ok" : "check bad";
    await loadStyles();
  } finally {
    $("place-button").disabled = false;
  }
});

setInterval(() => {
  if (!$("styles-view").hidden) loadStyles();
  if (!$("topics-view").hidden) loadTopics(); // live tail
  if (!$("stock-view").hidden) loadStock();
  if (!$("consumers-view").hidden) loadConsumers();
}, 2000);

loadList().then(connect);
loadDrills();
// The Stock tab, when the view reads an inventory.
fetch("/api/about").then(answerOf).then((about) => { $("tab-stock").hidden = !about.stock; });
setInterval(queueRender, 1000); // ages move on
