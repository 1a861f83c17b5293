// Keyboard shortcuts of the annotation app (loaded into the page <head> by ui/annotate_app.py).
// Every choice has a key; the table of keys is shown on the page (SHORTCUTS in annotate_app.py).
// Grades are a two-key chord: a slot key (q w e r = response A's four dimensions, u i o p = B's)
// then 0 / 1 / 2 (poor / acceptable / good). Shortcuts are ignored while typing in a text box,
// except Ctrl+Enter (submit) and Escape (leave the box).
(() => {
  const SLOTS = {q: "grade-a-0", w: "grade-a-1", e: "grade-a-2", r: "grade-a-3",
                 u: "grade-b-0", i: "grade-b-1", o: "grade-b-2", p: "grade-b-3"};
  let slot = null;
  const byId = (id) => document.getElementById(id);
  const visible = (el) => el && el.offsetParent !== null;
  const pick = (id, index) => {
    const radios = document.querySelectorAll(`#${id} input[type=radio]`);
    if (radios[index]) radios[index].click();
  };
  const press = (id) => {
    const el = byId(id);
    const button = el && (el.tagName === "BUTTON" ? el : el.querySelector("button"));
    if (button) button.click();
  };
  const focusBox = (id) => {
    const box = byId(id) && byId(id).querySelector("textarea, input");
    if (box) box.focus();
  };
  const mark = (id) => {
    document.querySelectorAll(".slot-active").forEach((el) => el.classList.remove("slot-active"));
    if (id && byId(id)) byId(id).classList.add("slot-active");
  };
  const toggleGuidelines = () => {
    const head = byId("guidelines") && byId("guidelines").querySelector("button, .label-wrap");
    if (head) head.click();
  };
  const ACTIONS = {
    a: () => pick("choice", 0), b: () => pick("choice", 1),
    "1": () => pick("level", 0), "2": () => pick("level", 1), "3": () => pick("level", 2), "4": () => pick("level", 3),
    Enter: () => press("submit-btn"), z: () => press("undo-btn"),
    s: () => focusBox("skip-reason"), n: () => focusBox("justification"), g: toggleGuidelines,
    L: () => { window.location.href = new URL("logout", window.location.href).href; },
  };
  document.addEventListener("keydown", (ev) => {
    if (!visible(byId("submit-btn"))) return;           // not on the annotation tab (or not logged in)
    const t = ev.target;
    const typing = t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && !["radio", "checkbox"].includes(t.type)));
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); press("submit-btn"); return; }
    if (typing) {
      if (ev.key === "Escape") t.blur();
      // After Enter in the skip box the skip is sent: leave the box so the next keys are shortcuts again.
      if (ev.key === "Enter" && t.closest("#skip-reason")) setTimeout(() => t.blur(), 0);
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (slot && "012".includes(ev.key)) {
      pick(slot, Number(ev.key)); slot = null; mark(null); ev.preventDefault(); return;
    }
    if (SLOTS[ev.key]) { slot = SLOTS[ev.key]; mark(slot); ev.preventDefault(); return; }
    slot = null; mark(null);
    const action = ACTIONS[ev.key];
    if (action) { ev.preventDefault(); action(); }
  });
})();
