// gyre ui: the few things a server-rendered page cannot do alone. Our own code, no library.
// Label review: keyboard decisions, queued in localStorage (a reload loses nothing), applied as
// one batch with the batch's reason. The diff picker: two runs from the runs table.
"use strict";

(function () {
  const review = document.getElementById("review");
  if (review) setUpReview(review);
})();

function setUpReview(review) {
  const run = review.dataset.run;
  const classes = JSON.parse(review.dataset.classes || "[]");
  const items = Array.from(review.querySelectorAll(".suspect"));
  const why = document.getElementById("why");
  const pending = document.getElementById("pending");
  const status = document.getElementById("status");
  const key = "gyre-review-" + run;
  let queue = JSON.parse(localStorage.getItem(key) || "{}");
  why.value = localStorage.getItem("gyre-review-why") || "";
  why.addEventListener("input", () => localStorage.setItem("gyre-review-why", why.value));
  let at = 0;

  function label(d) {
    if (d.decision === "relabel") return "→ " + d.to;
    if (d.decision === "keep") return "keep the given label";
    return "exclude";
  }
  function show() {
    items.forEach((li, i) => {
      li.classList.toggle("current", i === at);
      const d = queue[li.dataset.row];
      li.classList.toggle("decided", !!d);
      if (d) li.querySelector(".decision").textContent = label(d);
    });
    const n = Object.keys(queue).length;
    pending.textContent = n + (n === 1 ? " decision queued" : " decisions queued");
    localStorage.setItem(key, JSON.stringify(queue));
  }
  function move(by) {
    at = Math.max(0, Math.min(items.length - 1, at + by));
    show();
    items[at].scrollIntoView({ block: "nearest" });
  }
  function decide(d) {
    const li = items[at];
    if (!li) return;
    queue[li.dataset.row] = d;
    move(1);
    show();
  }
  async function apply() {
    const decisions = Object.entries(queue).map(([row, d]) => Object.assign({ row: Number(row) }, d));
    if (decisions.length === 0) { status.textContent = "nothing to apply"; return; }
    if (!why.value.trim()) { status.textContent = "type the batch's reason first"; why.focus(); return; }
    status.textContent = "applying " + decisions.length + " decisions...";
    const res = await fetch(review.dataset.apply, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ why: why.value, decisions: decisions }),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) { status.textContent = "not applied: " + (body.error || res.status); return; }
    queue = {};
    localStorage.removeItem(key);
    const edits = (body.edits || []).map((e) => "edit " + e.edit + " (" + e.description + ")");
    status.textContent = "applied: " + (edits.join(", ") || "no edits") +
      (body.kept && body.kept.length ? "; kept " + body.kept.length + " given labels" : "");
    items.forEach((li) => li.classList.remove("decided"));
    show();
  }
  document.getElementById("apply").addEventListener("click", apply);
  document.addEventListener("keydown", (e) => {
    if (e.target === why || e.ctrlKey || e.metaKey || e.altKey) {
      if (e.target === why && e.key === "Enter") { e.preventDefault(); apply(); }
      return;
    }
    const li = items[at];
    if (e.key === "j") move(1);
    else if (e.key === "k") move(-1);
    else if (e.key === "a" && li) decide({ decision: "relabel", to: li.dataset.suggested });
    else if (e.key === "g") decide({ decision: "keep" });
    else if (e.key === "x") decide({ decision: "exclude" });
    else if (e.key === "u" && li) { delete queue[li.dataset.row]; li.querySelector(".decision").textContent = ""; show(); }
    else if (e.key === "Enter") apply();
    else if (/^[1-9]$/.test(e.key) && classes[Number(e.key) - 1] !== undefined)
      decide({ decision: "relabel", to: classes[Number(e.key) - 1] });
    else return;
    e.preventDefault();
  });
  show();
}
