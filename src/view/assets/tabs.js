// edm's saga view, its tabs beside the sagas: Stock, Topics, Consumers and Both styles
// (app.js has the sagas, the page's helpers and the tabs' switching). As there, every value
// from a message or a store is put on the page with textContent, never as markup.
"use strict";

let openTopic = null; // the Topics tab's chosen topic

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
