// opensem's browser interface: a job's build followed live, and the upload list of the form.
"use strict";

const STATES = {
  "started": "running", "progress": "running", "built": "built", "up-to-date": "up to date",
  "from-cache": "from cache", "failed": "failed", "waiting": "waiting", "taking-over": "running",
};

function row(table, stage) {
  let found = table.querySelector(`tr[data-stage="${CSS.escape(stage)}"]`);
  if (!found) {
    found = document.createElement("tr");
    found.dataset.stage = stage;
    for (const part of ["name", "state", "progress", "detail"]) {
      const cell = document.createElement("td");
      cell.className = part;
      found.appendChild(cell);
    }
    found.querySelector(".name").textContent = stage;
    table.querySelector("tbody").appendChild(found);
  }
  return found;
}

const losses = [];

function drawLoss() {
  const svg = document.getElementById("loss-chart");
  document.getElementById("loss").hidden = false;
  const width = Number(svg.getAttribute("width")), height = Number(svg.getAttribute("height"));
  const pad = 28;
  const steps = losses.map((p) => p[0]), values = losses.map((p) => p[1]);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  const [y0, y1] = [Math.min(...values), Math.max(...values)];
  const x = (s) => pad + ((s - x0) / ((x1 - x0) || 1)) * (width - 2 * pad);
  const y = (v) => height - pad - ((v - y0) / ((y1 - y0) || 1)) * (height - 2 * pad);
  const points = losses.map(([s, v]) => `${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  svg.innerHTML =
    `<polyline points="${points}" fill="none" stroke="#2d6cdf" stroke-width="2"/>` +
    `<text x="${pad}" y="14" font-size="11">${y1.toFixed(3)}</text>` +
    `<text x="${pad}" y="${height - 8}" font-size="11">${y0.toFixed(3)} · step ${x0}</text>` +
    `<text x="${width - pad}" y="${height - 8}" font-size="11" text-anchor="end">step ${x1}</text>`;
  svg.dataset.points = String(losses.length);
}

function show(table, event) {
  if (event.event === "measured") {
    if (event.detail === "loss" && event.stage === "train") {
      losses.push([event.done, event.value]);
      drawLoss();
    }
    return;
  }
  if (event.event === "error") {
    outcome(`${event.location ? event.location + ": " : ""}${event.error}`, event.hint, "failed");
    return;
  }
  if (event.event === "finished") {
    outcome(event.detail || "finished", "", "done");
    return;
  }
  if (!event.stage) return;
  const line = row(table, event.stage);
  if (STATES[event.event]) {
    line.querySelector(".state").textContent = STATES[event.event];
    line.className = STATES[event.event].replace(/ /g, "-");
  }
  if (event.event === "progress" && event.total) {
    const share = Math.min(100, Math.round((100 * event.done) / event.total));
    line.querySelector(".progress").innerHTML =
      `<progress max="100" value="${share}"></progress> ${event.done} / ${event.total}`;
    line.querySelector(".detail").textContent = event.detail || "";
  } else if (event.event === "built" || event.event === "up-to-date") {
    const bar = line.querySelector("progress");
    if (bar) bar.value = 100;
    const took = event.seconds ? ` (${event.seconds.toFixed(1)} s)` : "";
    line.querySelector(".detail").textContent = (event.detail || "") + took;
  } else if (event.detail) {
    line.querySelector(".detail").textContent = event.detail;
  }
}

function outcome(text, hint, state) {
  const box = document.getElementById("outcome");
  box.hidden = false;
  box.className = `outcome ${state}`;
  box.textContent = text;
  if (hint) {
    const help = document.createElement("p");
    help.className = "hint";
    help.textContent = `What to do: ${hint}`;
    box.appendChild(help);
  }
}

function follow(table) {
  const source = new EventSource(`/jobs/${table.dataset.job}/events`);
  source.onmessage = (message) => show(table, JSON.parse(message.data));
  source.addEventListener("end", (message) => {
    source.close();
    const state = JSON.parse(message.data).state;
    const badge = document.getElementById("job-state");
    badge.textContent = state;
    badge.className = `state ${state}`;
    const cancel = document.getElementById("cancel");
    if (cancel) cancel.closest("form").remove();
  });
}

function chosen(input) {
  const list = document.getElementById("chosen");
  list.replaceChildren(...Array.from(input.files, (file) => {
    const item = document.createElement("li");
    item.textContent = `${file.name} (${Math.ceil(file.size / 1024)} KB)`;
    return item;
  }));
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("stages");
  if (table) follow(table);
  const input = document.getElementById("documents");
  const drop = document.getElementById("drop");
  if (input && drop) {
    input.addEventListener("change", () => chosen(input));
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      input.files = event.dataTransfer.files;
      chosen(input);
    });
  }
});

// The chat page: wait for the served release, stream answers, rate and edit them.
const csrf = () => document.querySelector("meta[name=csrf-token]").content;

async function post(url, body) {
  return fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(body),
  });
}

function waitServed(badge) {
  const expert = badge.dataset.expert;
  const poll = async () => {
    const state = await (await fetch(`/experts/${expert}/chat/state`)).json();
    badge.textContent = state.state;
    badge.className = `state ${state.state.replace(/ /g, "-")}`;
    if (state.state === "ready") {
      document.getElementById("ask").hidden = false;
    } else if (state.state === "loading") {
      setTimeout(poll, 1000);
    } else if (state.state === "stopped") {
      const log = document.getElementById("serve-log");
      log.hidden = false;
      log.textContent = state.log;
    }
  };
  poll();
}

function bubble(role, text) {
  const item = document.createElement("div");
  item.className = `message ${role}`;
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  item.appendChild(body);
  document.getElementById("conversation").appendChild(item);
  return item;
}

function rating(item, expert, completion) {
  const bar = document.createElement("div");
  bar.className = "rate";
  bar.append("Rate: ");
  for (let stars = 1; stars <= 5; stars += 1) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary star";
    button.dataset.rating = String(stars);
    button.textContent = String(stars);
    button.onclick = () => sendFeedback(bar, expert, { completion_id: completion, rating: stars });
    bar.appendChild(button);
  }
  const edit = document.createElement("button");
  edit.type = "button";
  edit.className = "secondary edit";
  edit.textContent = "Edit the answer";
  edit.onclick = () => {
    const box = document.createElement("textarea");
    box.className = "edited";
    box.value = item.querySelector(".text").textContent;
    const save = document.createElement("button");
    save.type = "button";
    save.className = "save-edit";
    save.textContent = "Save the better answer";
    save.onclick = () => sendFeedback(bar, expert, { completion_id: completion, edited: box.value });
    bar.append(box, save);
    edit.remove();
  };
  bar.appendChild(edit);
  item.appendChild(bar);
}

async function sendFeedback(bar, expert, body) {
  const answer = await post(`/experts/${expert}/feedback`, body);
  const result = await answer.json();
  const note = document.createElement("span");
  note.className = answer.ok ? "recorded" : "refused";
  note.textContent = answer.ok ? " Thanks: recorded for the next build." : ` ${result.error}`;
  bar.appendChild(note);
}

function sourcesOf(item, sources) {
  if (!sources.length) return;
  const list = document.createElement("ol");
  list.className = "sources";
  for (const source of sources) {
    const entry = document.createElement("li");
    const page = source.page ? ` p. ${source.page}` : "";
    entry.textContent = `${source.source}${page} (score ${Number(source.score).toFixed(2)})`;
    list.appendChild(entry);
  }
  item.appendChild(list);
}

const history = [];

async function ask(event) {
  event.preventDefault();
  const expert = document.getElementById("serve-state").dataset.expert;
  const field = document.getElementById("question");
  const question = field.value.trim();
  if (!question) return;
  field.value = "";
  bubble("user", question);
  history.push({ role: "user", content: question });
  const item = bubble("assistant", "");
  const text = item.querySelector(".text");
  const answer = await post(`/experts/${expert}/chat`, { messages: history });
  if (!answer.ok) {
    text.textContent = (await answer.json()).error;
    item.classList.add("refused");
    return;
  }
  const reader = answer.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const parts = buffer.split("\n\n");
    buffer = parts.pop();
    for (const part of parts) {
      const data = JSON.parse(part.replace(/^data: /, ""));
      if (data.text) text.textContent += data.text;
      if (data.error) { text.textContent = data.error; item.classList.add("refused"); }
      if (data.done) {
        history.push({ role: "assistant", content: text.textContent });
        sourcesOf(item, data.sources || []);
        rating(item, expert, data.id);
        item.dataset.completion = data.id;
      }
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const badge = document.getElementById("serve-state");
  if (badge && badge.textContent !== "not served") waitServed(badge);
  const form = document.getElementById("ask");
  if (form) form.addEventListener("submit", ask);
});

// The data page: edit, approve or delete a generated pair in place.
async function pairAction(row, body) {
  const expert = location.pathname.split("/")[2];
  const answer = await post(`/experts/${expert}/pairs`, { id: row.dataset.id, ...body });
  const state = row.querySelector(".pair-state");
  if (!answer.ok) {
    state.textContent = (await answer.json()).error;
    state.className = "pair-state refused";
    return;
  }
  const done = { edit: "edited", delete: "deleted", approve: "approved" }[body.action];
  state.textContent = done;
  row.className = done;
}

function editPair(row) {
  for (const part of ["question", "answer"]) {
    const cell = row.querySelector(`.${part}`);
    const box = document.createElement("textarea");
    box.className = `edit-${part}`;
    box.value = cell.textContent;
    cell.replaceChildren(box);
  }
  const actions = row.querySelector(".row-actions");
  const save = document.createElement("button");
  save.type = "button";
  save.className = "save-pair";
  save.textContent = "Save";
  save.onclick = async () => {
    const question = row.querySelector(".edit-question").value.trim();
    const answer = row.querySelector(".edit-answer").value.trim();
    await pairAction(row, { action: "edit", question, answer });
    row.querySelector(".question").textContent = question;
    row.querySelector(".answer").textContent = answer;
    save.remove();
  };
  actions.prepend(save);
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("pairs");
  if (!table) return;
  table.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (!row) return;
    if (event.target.classList.contains("edit-pair")) editPair(row);
    if (event.target.classList.contains("approve-pair")) pairAction(row, { action: "approve" });
    if (event.target.classList.contains("delete-pair")) pairAction(row, { action: "delete" });
  });
});
