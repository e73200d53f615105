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

function show(table, event) {
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
