// The review page (soundmind-data review): every item in one table, filtered, sorted and paged here, so that a
// corpus of 10,000 items opens without drawing 10,000 rows. An item's texts, speech texts and transcripts lie in
// data/details-NNNNN.js, a few hundred items a file, loaded by a <script> tag when the item is first opened (a page
// opened from the file system may not fetch() files). Every text goes into the page as text, never as HTML.
"use strict";

const PAGE_SIZE = 100;
const FILTERS = {  // filter name -> does the row match the chosen value
  split: (row, value) => row.split === value,
  label: (row, value) => row.label === value,
  decision: (row, value) => row.decision === value,
  voice: (row, value) => row.voices.includes(value),
  reason: (row, value) => row.reasons.includes(value),
  check: (row, value) => value === "(any)" ? row.failed_checks.length > 0 : row.failed_checks.includes(value),
};
const number = (value, digits) => value === null || value === undefined ? "" : value.toFixed(digits);
const pair = (a, b, digits) => [a, b].some((v) => v !== null && v !== undefined)
  ? `${number(a, digits) || "–"} / ${number(b, digits) || "–"}` : "";
const total = (a, b) => (a === null && b === null) ? null : (a || 0) + (b || 0);
const worst = (a, b) => (a === null && b === null) ? null : Math.max(a ?? -Infinity, b ?? -Infinity);
const COLUMNS = [  // header, the value sorted by, what the cell shows
  ["Id", (r) => r.id, (r) => r.id],
  ["Split", (r) => r.split, (r) => r.split],
  ["Label", (r) => r.label, (r) => r.label],
  ["Decision", (r) => r.decision, (r) => r.decision],
  ["Reasons", (r) => r.reasons.join(" "), (r) => r.reasons.join(", ")],
  ["Dropped by", (r) => r.dropped_by, (r) => r.dropped_by],
  ["Voice", (r) => r.voices.join(" "), (r) => r.voices.join(" / ")],
  ["Seconds (q / a)", (r) => total(r.question_s, r.answer_s), (r) => pair(r.question_s, r.answer_s, 1)],
  ["LUFS (q / a)", (r) => worst(r.question_lufs, r.answer_lufs), (r) => pair(r.question_lufs, r.answer_lufs, 1)],
  ["WER (q / a)", (r) => worst(r.question_wer, r.answer_wer), (r) => pair(r.question_wer, r.answer_wer, 3)],
  ["Failed checks", (r) => r.failed_checks.join(" "), (r) => r.failed_checks.join(", ")],
];

const state = {rows: [], chunkSize: 1, shown: [], page: 0, sort: null, descending: false,
               chunks: new Map(), waiting: new Map(), open: new Set()};
const $ = (selector) => document.querySelector(selector);

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

window.soundmindReview = {
  receive(message) {
    if (message.kind === "index") {
      start(message.data);
    } else if (message.kind === "details") {
      state.chunks.set(message.chunk, message.data);
      for (const done of state.waiting.get(message.chunk) || []) done(message.data);
      state.waiting.delete(message.chunk);
    }
  },
};

function start(index) {
  state.rows = index.rows.map((row, position) => ({...row, position}));
  state.chunkSize = index.chunk_size;
  drawSummary(index.summary);
  drawHeader();
  drawFilterChoices();
  const form = $("#filters");
  form.addEventListener("input", () => { state.page = 0; update(); });
  form.addEventListener("submit", (event) => event.preventDefault());
  $("#previous").addEventListener("click", () => { state.page -= 1; draw(); });
  $("#next").addEventListener("click", () => { state.page += 1; draw(); });
  update();
}

function drawSummary(summary) {
  document.title = `${summary.title}: review`;
  $("#title").textContent = summary.title;
  $("#licence").textContent = summary.licence
    ? `Licence: ${summary.licence}${summary.licence_text ? ". " + summary.licence_text : ""}`
    : "Licence: not stated (no dataset card)";
  $("#manifest").textContent = `Manifest: ${summary.manifest}`;
  const tables = $("#summary-tables");
  tables.append(table("Items per split and label", ["split", ...summary.split_label.columns], summary.split_label.rows));
  tables.append(table("Decisions and their reasons", ["reason", ...summary.decision_reason.columns],
                      summary.decision_reason.rows));
  for (const plot of summary.plots) {
    $("#plots").append(element("img", {src: plot, alt: plot.split("/").pop(), loading: "lazy"}));
  }
}

function table(caption, columns, rows) {
  return element("table", {class: "summary"}, element("caption", {}, caption),
    element("thead", {}, element("tr", {}, ...columns.map((c) => element("th", {scope: "col"}, c)))),
    element("tbody", {}, ...rows.map((cells) => element("tr", {}, ...cells.map((c) => element("td", {}, String(c)))))));
}

function drawHeader() {
  const row = $("#items thead tr");
  COLUMNS.forEach(([header], column) => {
    const button = element("button", {type: "button"}, header);
    button.addEventListener("click", () => {
      state.descending = state.sort === column ? !state.descending : false;
      state.sort = column;
      update();
    });
    row.append(element("th", {scope: "col", "aria-sort": "none"}, button));
  });
}

function drawFilterChoices() {
  const values = {split: new Set(), label: new Set(), decision: new Set(), voice: new Set(), reason: new Set(),
                  check: new Set()};
  for (const row of state.rows) {
    values.split.add(row.split); values.label.add(row.label); values.decision.add(row.decision);
    row.voices.forEach((voice) => values.voice.add(voice));
    row.reasons.forEach((reason) => values.reason.add(reason));
    row.failed_checks.forEach((check) => values.check.add(check));
  }
  if (values.check.size) values.check.add("(any)");
  for (const [name, found] of Object.entries(values)) {
    const select = $(`#filters select[name=${name}]`);
    select.append(element("option", {value: ""}, "all"));
    for (const value of [...found].filter((v) => v !== "").sort()) select.append(element("option", {value}, value));
  }
}

function update() {
  const form = $("#filters");
  const chosen = Object.keys(FILTERS).map((name) => [FILTERS[name], form.elements[name].value]).filter(([, v]) => v);
  const text = form.elements.text.value.trim().toLowerCase();
  state.shown = state.rows.filter((row) => chosen.every(([matches, value]) => matches(row, value))
    && (!text || row.id.toLowerCase().includes(text) || row.search.includes(text)));
  if (state.sort !== null) {
    const key = COLUMNS[state.sort][1];
    const sign = state.descending ? -1 : 1;
    state.shown.sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === null || x === "") return (y === null || y === "") ? a.position - b.position : 1;  // blanks last
      if (y === null || y === "") return -1;
      return (x < y ? -sign : x > y ? sign : 0) || a.position - b.position;
    });
  }
  document.querySelectorAll("#items thead th").forEach((th, column) => th.setAttribute("aria-sort",
    column !== state.sort ? "none" : state.descending ? "descending" : "ascending"));
  draw();
}

function draw() {
  const pages = Math.max(1, Math.ceil(state.shown.length / PAGE_SIZE));
  state.page = Math.min(Math.max(state.page, 0), pages - 1);
  const first = state.page * PAGE_SIZE;
  const page = state.shown.slice(first, first + PAGE_SIZE);
  const body = $("#items tbody");
  body.replaceChildren();
  for (const row of page) {
    const tr = element("tr", {class: `item ${row.decision}`, "data-id": row.id, tabindex: "0",
                              "aria-expanded": String(state.open.has(row.position))});
    COLUMNS.forEach(([, , cell]) => tr.append(element("td", {}, cell(row))));
    const toggle = () => { state.open.has(row.position) ? state.open.delete(row.position) : state.open.add(row.position); draw(); };
    tr.addEventListener("click", toggle);
    tr.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(); } });
    body.append(tr);
    if (state.open.has(row.position)) body.append(detailRow(row));
  }
  $("#count").textContent = `${state.shown.length} of ${state.rows.length} items`;
  $("#page").textContent = state.shown.length
    ? `${first + 1}–${first + page.length} of ${state.shown.length} (page ${state.page + 1} of ${pages})` : "no items";
  $("#previous").disabled = state.page === 0;
  $("#next").disabled = state.page >= pages - 1;
}

function detailRow(row) {
  const cell = element("td", {colspan: String(COLUMNS.length)}, "Loading…");
  const chunk = Math.floor(row.position / state.chunkSize);
  withChunk(chunk, (details) => cell.replaceChildren(detail(row, details[row.position % state.chunkSize])));
  return element("tr", {class: "detail", "data-for": row.id}, cell);
}

function withChunk(chunk, done) {
  if (state.chunks.has(chunk)) return done(state.chunks.get(chunk));
  if (!state.waiting.has(chunk)) {
    state.waiting.set(chunk, []);
    const name = `data/details-${String(chunk).padStart(5, "0")}.js`;
    const script = element("script", {src: name});
    script.addEventListener("error", () => console.error(`cannot load ${name}`));
    document.body.append(script);
  }
  state.waiting.get(chunk).push(done);
}

function detail(row, item) {
  const facts = [item.source && `from ${item.source}`, item.old_label && `label was ${item.old_label}`,
                 row.dropped_by && `dropped by ${row.dropped_by}`, item.rerender, item.note].filter(Boolean);
  return element("div", {class: "spoken"}, element("p", {class: "facts"}, facts.join(" · ")),
                 spoken("Question", item.question), spoken("Answer", item.answer));
}

function spoken(title, part) {
  const section = element("section", {}, element("h3", {}, title));
  if (part.audio) section.append(element("audio", {controls: "", preload: "none", src: part.audio}));
  else section.append(element("p", {class: "missing"}, part.text ? "no audio" : "no text, no audio"));
  if (part.text) section.append(element("p", {class: "text"}, part.text));
  if (part.speech_text) {
    section.append(element("h4", {}, "Spoken as"), element("p", {class: "text speech"}, part.speech_text));
  }
  if (part.transcript !== null || part.diff !== null) {
    section.append(element("h4", {}, part.sampled ? "Heard (sampled windows, joined by …)" : "Heard"),
                   part.diff ? difference(part.diff) : element("p", {class: "text heard"}, part.transcript));
  }
  return section;
}

function difference(chunks) {  // [equal | substitute | delete | insert, words said, words heard]
  const text = element("p", {class: "text heard"});
  for (const [kind, said, heard] of chunks) {
    if (kind === "equal") text.append(heard);
    if (kind === "substitute" || kind === "delete") text.append(element("del", {title: "said, not heard"}, said));
    if (kind === "substitute" || kind === "insert") text.append(element("ins", {title: "heard, not said"}, heard));
    text.append(" ");
  }
  return text;
}
