"""Browser acceptance test: Playwright drives Debian's Chromium against `afm-align annotate` on localhost.

A wrong password is refused; then an annotator logs in and, with the keyboard only, labels three
pairs, undoes the third, edits it, skips the next pair with a reason, opens the guidelines and logs out. The label store must then hold exactly that: three
current labels with the values typed (un-swapped from the A/B order shown), the undone label's
history (original, retraction, edit), and nothing else. Model text with `<script>` and an `onerror`
image shows as text and never runs. A screenshot is saved under the test's temporary directory.

`test_model_markup_cannot_act` queues a pair whose id, prompt and responses are every markup payload
of tests/ui/conftest.py (the three of issue 17 first) and checks, in Chromium, that no request leaves
for another host, no dialog opens, no element a payload describes (form, input, image, frame, overlay)
is in the page, and a real mouse click still reaches the form; its screenshot also goes to
$AFM_ALIGN_XSS_SCREENSHOT when that is set. The annotator's own flow of issue 20 (progress, drafts,
opaque ids, leases, quota) is tests/ui/test_browser_annotator.py.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and the `playwright` package (no browser
download). Without them the test skips, except under CI=true, where it fails.
"""
import os
import re
import urllib.parse

import pytest

from afm_align.label_store import LabelStore
from afm_align.rundir import RunDir
from afm_align.schema import GRADE_DIMENSIONS

# What the annotator types for each pair: better (on screen), level key, grade digits for q w e r and u i o p.
PLAN = [("a", "3", "2122", "0102", ""), ("b", "1", "1111", "2222", "close call"), ("a", "4", "2222", "0000", "")]
EDIT = ("b", "2", "1111", "2212")


def _shown_item(page) -> int:
    """The opaque item number the page shows (the annotator's assignment)."""
    return int(re.search(r"Item (\d+)", page.locator("#prompt").inner_text()).group(1))


def _shown_pair(page, store: LabelStore) -> str:
    """The pair behind the item on screen, looked up in the store (the page never shows it)."""
    item = _shown_item(page)
    return next(a["pair_id"] for a in store.assignments() if a["id"] == item)


def _label_with_keys(page, better, level, grades_a, grades_b, why):
    keys = page.keyboard
    keys.press(better)
    keys.press(level)
    for slot, grade in zip("qwer" + "uiop", grades_a + grades_b):
        keys.press(slot)
        keys.press(grade)
    if why:
        keys.press("n")
        keys.type(why)
        keys.press("Escape")
    keys.press("Enter")


def _expect_progress(page, done: int):
    from playwright.sync_api import expect

    expect(page.locator("#progress")).to_contain_text(f"labelled {done}", timeout=20_000)


@pytest.mark.slow
def test_keyboard_labelling_session(served, chromium, tmp_path):
    from playwright.sync_api import expect

    url, store = served
    page = chromium.new_page()
    page.goto(url)
    page.get_by_label("username").fill("ann")
    page.get_by_label("password").fill("wrong-password")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Incorrect Credentials")).to_be_visible(timeout=10_000)
    assert page.locator("#submit-btn").count() == 0
    page.get_by_label("username").fill("ann")
    page.get_by_label("password").fill("ann-password-1")
    page.keyboard.press("Enter")
    expect(page.locator("#prompt")).to_contain_text("Item ", timeout=30_000)
    expect(page.get_by_role("tab", name="Admin")).to_have_count(0)

    assert _shown_pair(page, store) == "p0"                    # p0's response B carries <script>
    expect(page.locator("#response-a, #response-b").get_by_text("<script>window.__pwned")).to_have_count(1)
    shown = []
    for i, (better, level, ga, gb, why) in enumerate(PLAN):
        shown.append(_shown_pair(page, store))
        _label_with_keys(page, better, level, ga, gb, why)
        _expect_progress(page, i + 1)
    assert page.evaluate("window.__pwned") is None           # shown as text, never run

    page.keyboard.press("z")                                   # undo the third label
    expect(page.locator("#message")).to_contain_text("withdrawn", timeout=20_000)
    assert _shown_pair(page, store) == shown[2]
    assert page.locator("#choice input[value=A]").is_checked()  # it comes back as it was
    _label_with_keys(page, *EDIT, "")
    _expect_progress(page, 3)
    expect(page.locator("#message")).to_contain_text("Saved label", timeout=20_000)
    skipped = _shown_pair(page, store)
    page.keyboard.press("s")                                   # skip the next pair, with a reason
    page.keyboard.type("cannot judge this")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("Skipped.", timeout=20_000)
    page.keyboard.press("g")                                   # the guidelines panel opens
    expect(page.get_by_text("Guideline version: builtin-v1", exact=False)).to_be_visible(timeout=10_000)
    page.screenshot(path=str(tmp_path / "annotate.png"), full_page=True)
    page.keyboard.press("Shift+L")                             # log out
    expect(page.get_by_label("password")).to_be_visible(timeout=20_000)
    assert (tmp_path / "annotate.png").stat().st_size > 0
    _check_database(store, shown, skipped)


def _grades(digits: str) -> dict:
    return dict(zip(GRADE_DIMENSIONS, map(int, digits)))


def _check_database(store: LabelStore, shown: list[str], skipped: str):
    swapped = {a["pair_id"]: bool(a["swapped"]) for a in store.assignments("ann")}
    expected = {}
    for pair, (better, level, ga, gb, why) in zip(shown, PLAN[:2] + [EDIT + ("",)]):
        flip = swapped[pair]
        expected[pair] = {"better": "a" if (better == "a") != flip else "b", "level": int(level) - 1,
                          "grades_a": _grades(gb if flip else ga), "grades_b": _grades(ga if flip else gb),
                          "justification": why, "user": "ann"}
    current = {label["pair_id"]: label for label in store.labels()}
    assert set(current) == set(shown)
    for pair, want in expected.items():
        assert {key: current[pair][key] for key in want} == want
    history = store.labels(current_only=False)
    assert [(h["pair_id"], h["version"], h["status"]) for h in history] == [
        (shown[0], 1, "active"), (shown[1], 1, "active"), (shown[2], 1, "active"), (shown[2], 2, "retracted"),
        (shown[2], 3, "active")]
    original = history[2]
    assert original["level"] == 3 and original["better"] == ("a" if not swapped[shown[2]] else "b")
    states = {a["pair_id"]: (a["state"], a["skip_reason"]) for a in store.assignments()}
    assert states.pop(skipped) == ("skipped", "cannot judge this")
    assert sorted(states.values()) == [("done", None)] * 3 + [("open", None)]   # the fifth was shown only
    assert {h["guideline_version"] for h in history if h["status"] == "active"} == {"builtin-v1"}


@pytest.mark.slow
def test_admin_sees_agreement_and_compare_tabs(served, login, round_writer, screenshot):
    from playwright.sync_api import expect

    url, store = served
    round_writer(RunDir(store.path.parent))
    from committee.report import write_report

    (RunDir(store.path.parent).round(1) / "plots" / "elo.png").unlink()  # the fixture's blank stand-in
    write_report(RunDir(store.path.parent), 1)  # the round report's real plots, which the compare tab shows
    for user, side in (("ann", "a"), ("ann2", "b")):                    # two labels that disagree on p0
        a = store.next_pair(user)
        shown = "A" if (side == "a") != a.swapped else "B"
        store.submit(user, a.id, shown, 1, *[dict.fromkeys(GRADE_DIMENSIONS)] * 2, f"{user} thinks so")
    page = login("boss", "boss-password-1")
    page.get_by_role("tab", name="Admin").click()
    page.locator("#admin-refresh").click()
    expect(page.get_by_text("5 pairs queued")).to_be_visible(timeout=20_000)
    expect(page.locator("#admin-disagreements")).to_contain_text("ann2 thinks so", timeout=20_000)
    page.locator("#admin-export").click()
    expect(page.locator("#admin-export-file")).to_contain_text(".zip", timeout=20_000)   # a file to download
    page.get_by_role("tab", name="Compare").click()
    expect(page.locator("span", has_text="[0.600, 0.800]").first).to_be_visible(timeout=20_000)   # member b's CI
    expect(page.get_by_text("RM 0.5 · verifier 1.0").first).to_be_visible(timeout=20_000)
    expect(page.locator("p", has_text="b says 0 <b>bold</b>")).to_be_visible()   # model HTML as text
    assert page.locator("b", has_text="bold").count() == 0
    expect(page.locator("#round-plots img").first).to_be_visible(timeout=20_000)
    screenshot(page.locator("#round-plots"), "report_plots.png")





# Elements no model text may create inside the shown texts (the payloads also mark theirs with "pwn").
PAYLOAD_ELEMENTS = ("form, input, img, iframe, svg, style, script, object, embed, meta, base, link, video, audio, "
                    "source, a, button, textarea, select, details, math, noscript, [style], [class*=pwn], [onerror], "
                    "[onload], [onclick]")


@pytest.mark.slow
def test_model_markup_cannot_act(served, chromium, tmp_path, markup_payloads):
    from playwright.sync_api import expect

    url, store = served
    issue = list(markup_payloads.values())[:4]         # the three of issue 17, then the overlay by the third route
    corpus = "\n\n".join(markup_payloads.values())
    store.add_pairs([{"pair_id": '<img class="pwn-id" src="http://evil.example/pair-id.png">x',
                      "prompt": [{"role": '<img class="pwn-role" src="http://evil.example/role.png">',
                                  "content": corpus}],
                      "response_a": "\n\n".join(issue), "response_b": issue[2] + "\n\n" + issue[1]}],
                    round=0, k=2)                                  # round 0: shown first
    requests, dialogs = [], []
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(url)
    page.get_by_label("username").fill("ann")
    page.get_by_label("password").fill("ann-password-1")
    page.keyboard.press("Enter")
    expect(page.locator("#response-b")).to_contain_text("log in again", timeout=30_000)
    page.wait_for_timeout(2000)                                 # time for anything a payload would load or run
    hosts = {urllib.parse.urlsplit(u).hostname for u in requests
             if urllib.parse.urlsplit(u).scheme not in ("data", "blob")}
    assert hosts == {"127.0.0.1"}, f"requests left for {hosts - {'127.0.0.1'}}"
    assert dialogs == []
    texts = page.locator("#prompt, #response-a, #response-b")
    assert texts.count() == 3
    made = page.evaluate("""(sel) => ['#prompt', '#response-a', '#response-b'].flatMap(id => {
        const root = document.querySelector(id);
        const content = root.querySelector('.prose, .html-container') || root;
        return Array.from(content.querySelectorAll(sel)).map(e => id + ' ' + e.outerHTML.slice(0, 120));
    })""", PAYLOAD_ELEMENTS)
    assert made == []
    assert page.locator("[class*=pwn], form[action*=evil], img[src*=evil], iframe").count() == 0
    expect(page.locator("#prompt")).to_contain_text("Item ")                      # an opaque item number
    assert "pwn-id" not in page.content() and "pair-id.png" not in page.content()  # the pair id: not shown
    shown = page.locator("#response-a").inner_text() + page.locator("#response-b").inner_text()
    assert "<form" in shown and "<img" in shown and "position:fixed" in shown   # there, as text
    page.locator("#choice label").first.click(timeout=5_000)     # a real mouse click: no overlay in the way
    assert page.locator("#choice input").first.is_checked()
    assert page.evaluate("window.__pwned") is None
    page.screenshot(path=str(tmp_path / "xss.png"), full_page=True)
    if os.environ.get("AFM_ALIGN_XSS_SCREENSHOT"):
        page.screenshot(path=os.environ["AFM_ALIGN_XSS_SCREENSHOT"], full_page=True)
    hosts = {urllib.parse.urlsplit(u).hostname for u in requests
             if urllib.parse.urlsplit(u).scheme not in ("data", "blob")}
    assert hosts == {"127.0.0.1"} and dialogs == []                  # none after the clicks either
