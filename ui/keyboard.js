// Keyboard shortcuts, drafts and key buffering of the annotation app (loaded into the page <head> by
// ui/annotate_app.py). The table of keys is shown on the page (ui/annotate_view.py, `shortcuts`).
// - Grades are a two-key chord: a slot key (q w e r = response A's four dimensions, u i o p = B's) then
//   0 / 1 / 2 (poor / acceptable / good). Shortcuts are ignored while typing in a text box, except
//   Ctrl+Enter (submit) and Escape (leave the box).
// - Keys typed while a submit, skip or undo is in flight are held, then replayed on the item the reply
//   shows (the reply's message carries a fresh data-reply token): nothing typed right after Enter is lost.
// - Drafts: the half-filled form is kept in localStorage under the key of the form on screen (#afm-key:
//   user/item or user/edit-label), restored when that form comes back (a reload), and dropped when the
//   server says it was saved or skipped (data-closed) or after a week.
(() => {
  const SLOTS = {q: "grade-a-0", w: "grade-a-1", e: "grade-a-2", r: "grade-a-3",
                 u: "grade-b-0", i: "grade-b-1", o: "grade-b-2", p: "grade-b-3"};
  const GRADE_IDS = Object.values(SLOTS);
  const DRAFT = "afm-draft:";
  const WEEK_MS = 7 * 24 * 3600 * 1000;
  const HOLD_MS = 8000;             // replay held keys anyway if no reply came by then
  let slot = null;
  let formKey = null;               // the form on screen (#afm-key)
  let lastReply = null;             // the latest reply token seen
  let pending = null;               // {since}: a submit / skip / undo in flight; keys wait in `held`
  const held = [];

  const byId = (id) => document.getElementById(id);
  const visible = (el) => el && el.offsetParent !== null;
  const radios = (id) => Array.from(document.querySelectorAll(`#${id} input[type=radio]`));
  const pick = (id, index) => { const r = radios(id)[index]; if (r && !r.checked) r.click(); };
  const checked = (id) => radios(id).findIndex((r) => r.checked);
  const box = (id) => byId(id) && byId(id).querySelector("textarea, input");
  const press = (id) => {
    const el = byId(id);
    const button = el && (el.tagName === "BUTTON" ? el : el.querySelector("button"));
    if (button) button.click();
  };
  const focusBox = (id) => { const b = box(id); if (b) b.focus(); };
  const mark = (id) => {
    document.querySelectorAll(".slot-active").forEach((el) => el.classList.remove("slot-active"));
    if (id && byId(id)) byId(id).classList.add("slot-active");
  };
  const toggleGuidelines = () => {
    const head = byId("guidelines") && byId("guidelines").querySelector("button, .label-wrap");
    if (head) head.click();
  };
  const currentReply = () => {
    const el = document.querySelector("#message .afm-reply");
    return el ? el.dataset.reply : null;
  };
  const hold = () => { pending = {since: Date.now(), reply: currentReply()}; };
  const send = (id) => { hold(); press(id); };
  const ACTIONS = {
    a: () => pick("choice", 0), b: () => pick("choice", 1),
    "1": () => pick("level", 0), "2": () => pick("level", 1), "3": () => pick("level", 2), "4": () => pick("level", 3),
    Enter: () => send("submit-btn"), z: () => send("undo-btn"),
    s: () => focusBox("skip-reason"), n: () => focusBox("justification"), g: toggleGuidelines,
    L: () => { window.location.href = new URL("logout", window.location.href).href; },
  };

  // ---- drafts ----------------------------------------------------------------------------------
  const readForm = () => ({choice: checked("choice"), level: checked("level"), grades: GRADE_IDS.map(checked),
                           justification: box("justification") ? box("justification").value : "",
                           skip: box("skip-reason") ? box("skip-reason").value : ""});
  const isEmpty = (d) => d.choice < 0 && d.level < 0 && d.grades.every((g) => g < 0) && !d.justification && !d.skip;
  const saveDraft = () => {
    if (!formKey || pending) return;
    const draft = readForm();
    try {
      if (isEmpty(draft)) localStorage.removeItem(DRAFT + formKey);
      else localStorage.setItem(DRAFT + formKey, JSON.stringify({...draft, t: Date.now()}));
    } catch (err) { /* storage full or disabled: drafts are a convenience */ }
  };
  const setBox = (id, value) => {
    const b = box(id);
    if (b && value && !b.value) { b.value = value; b.dispatchEvent(new Event("input", {bubbles: true})); }
  };
  const restoreDraft = (key) => {
    let draft = null;
    try { draft = JSON.parse(localStorage.getItem(DRAFT + key) || "null"); } catch (err) { draft = null; }
    if (!draft) return;
    if (draft.choice >= 0) pick("choice", draft.choice);
    if (draft.level >= 0) pick("level", draft.level);
    (draft.grades || []).forEach((g, i) => { if (g >= 0) pick(GRADE_IDS[i], g); });
    setBox("justification", draft.justification);
    setBox("skip-reason", draft.skip);
  };
  const forgetOld = () => {
    for (const name of Object.keys(localStorage)) {
      if (!name.startsWith(DRAFT)) continue;
      try { if (Date.now() - JSON.parse(localStorage.getItem(name)).t > WEEK_MS) localStorage.removeItem(name); }
      catch (err) { localStorage.removeItem(name); }
    }
  };

  // ---- keys ------------------------------------------------------------------------------------
  const typingIn = (t) => t && (t.tagName === "TEXTAREA" ||
                                (t.tagName === "INPUT" && !["radio", "checkbox"].includes(t.type)));
  const handle = (k) => {                 // one shortcut key (not typed into a box)
    if (slot && "012".includes(k.key)) { pick(slot, Number(k.key)); slot = null; mark(null); return; }
    if (SLOTS[k.key]) { slot = SLOTS[k.key]; mark(slot); return; }
    slot = null; mark(null);
    if (ACTIONS[k.key]) ACTIONS[k.key]();
  };
  const replayInto = (t, k) => {          // a held key that was meant for the box `t` (focused by n or s)
    if (k.key === "Escape") { t.blur(); return; }
    if (k.key === "Enter") {
      if (t.closest("#skip-reason")) {
        hold();
        for (const type of ["keydown", "keypress"]) {
          t.dispatchEvent(new KeyboardEvent(type, {key: "Enter", code: "Enter", bubbles: true}));
        }
        t.blur();
      } else if (k.ctrl) { send("submit-btn"); }
      return;
    }
    if (k.key.length === 1) { t.value += k.key; t.dispatchEvent(new Event("input", {bubbles: true})); }
  };
  const replay = () => {
    while (held.length && !pending) {
      const k = held.shift();
      const t = document.activeElement;
      if (typingIn(t)) replayInto(t, k);
      else if (k.key === "Enter" && k.ctrl) send("submit-btn");
      else handle(k);
    }
    saveDraft();
  };
  document.addEventListener("keydown", (ev) => {
    if (!visible(byId("undo-btn"))) return;             // not on the annotation tab (or not logged in)
    const t = ev.target;
    const typing = typingIn(t);
    if (pending && !(typing && !held.length) && !["Shift", "Control", "Alt", "Meta"].includes(ev.key)) {
      // A reply is on its way: hold the key for the item it brings.
      held.push({key: ev.key, ctrl: ev.ctrlKey || ev.metaKey});
      ev.preventDefault();
      return;
    }
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); send("submit-btn"); return; }
    if (typing) {
      if (ev.key === "Escape") t.blur();
      // After Enter in the skip box the skip is sent: leave the box so the next keys are shortcuts again.
      if (ev.key === "Enter" && t.closest("#skip-reason")) { hold(); setTimeout(() => t.blur(), 0); }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ACTIONS[ev.key] || SLOTS[ev.key] || (slot && "012".includes(ev.key))) ev.preventDefault();
    handle({key: ev.key, ctrl: false});
  });
  for (const type of ["input", "change"]) {
    document.addEventListener(type, (ev) => {
      if (ev.target && ev.target.closest && ev.target.closest("#afm-form")) saveDraft();
    }, true);
  }

  // ---- replies: a new form (restore its draft), closed forms (drop their drafts), held keys ----------
  const tick = () => {
    const keyEl = byId("afm-key");
    const key = keyEl ? keyEl.dataset.key || "" : null;
    const replyEl = document.querySelector("#message .afm-reply");
    const reply = currentReply();
    if (reply !== lastReply) {
      lastReply = reply;
      const closed = replyEl && replyEl.dataset.closed;
      if (closed) { try { localStorage.removeItem(DRAFT + closed); } catch (err) { /* ignore */ } }
    }
    if (key !== null && key !== formKey) {
      formKey = key;
      if (key) restoreDraft(key);
    }
    if (pending && (reply !== pending.reply || Date.now() - pending.since > HOLD_MS)) {
      pending = null;
      setTimeout(replay, 0);
    }
  };
  forgetOld();
  setInterval(tick, 40);
})();
