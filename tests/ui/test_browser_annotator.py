"""Browser tests of what an annotator trips over (issue 20), in Debian's Chromium against `afm-align annotate`.

- `test_progress_drafts_opaque_ids_and_quota`: the progress bar counts up; a half-filled form survives a
  reload (localStorage) and is dropped once saved; keys typed right after Enter land on the next item;
  no pair id is anywhere in the page (a pair id like `...-violate_ends_with-50` tells which answer was
  corrupted); My labels is filled without Refresh, numbers levels as the keys 1-4, and picking a label
  switches to Annotate; at the quota the page says so and hides the form.
- `test_expired_lease_and_stale_tab_move_on`: with a lease of about a second, an abandoned item goes to
  another annotator and the first one's submit says so and moves on; a stale second tab does the same.

With AFM_ALIGN_SCREENSHOTS=DIR the annotate page (a half-filled form restored after a reload) is saved
as DIR/annotate.png:
`AFM_ALIGN_SCREENSHOTS=/tmp/afm_screens .venv/bin/python -m pytest -q tests/ui/test_browser_annotator.py
tests/ui/test_browser.py -k "progress or admin"` (the second file adds DIR/report_plots.png).
"""
import re
import time

import pytest

from afm_align.schema import GRADE_DIMENSIONS

REVEALING = "r0-q17-violate_ends_with-50"
NONE = dict.fromkeys(GRADE_DIMENSIONS)


def _item(page) -> int:
    return int(re.search(r"Item (\d+)", page.locator("#prompt").inner_text()).group(1))


def _wait_for_new_item(page, old: int, timeout_s: float = 20.0) -> float:
    """Seconds until the page shows an item other than `old`."""
    start = time.time()
    page.wait_for_function("(old) => { const m = (document.querySelector('#prompt') || {}).innerText"
                           ".match(/Item (\\d+)/); return m && Number(m[1]) !== old; }", arg=old,
                           timeout=timeout_s * 1000)
    return time.time() - start


def _checked(page, elem_id: str) -> int:
    return page.evaluate("(id) => Array.from(document.querySelectorAll(`#${id} input[type=radio]`))"
                         ".findIndex((r) => r.checked)", elem_id)


def _drafts(page) -> list[str]:
    return page.evaluate("() => Object.keys(localStorage).filter((k) => k.startsWith('afm-draft:'))")


def _until(check, timeout_s: float = 5.0):
    """Wait until check() is true (polling); the last value otherwise fails the test."""
    deadline = time.time() + timeout_s
    while not check() and time.time() < deadline:
        time.sleep(0.05)
    assert check()


@pytest.mark.slow
def test_progress_drafts_opaque_ids_and_quota(served, login, screenshot):
    from playwright.sync_api import expect

    _, store = served
    store.add_pairs([{"pair_id": REVEALING, "prompt": "Reply in one line ending with 'ok'.",
                      "response_a": "Sure thing ok", "response_b": "Sure thing."}], round=0, k=1)
    page = login("ann", "ann-password-1")
    bar = page.locator("#afm-progress-bar")
    expect(bar).to_have_attribute("value", "0")
    expect(bar).to_have_attribute("max", "6")                         # 1 open + 5 more available
    first = _item(page)
    assert store.assignments("ann")[0]["pair_id"] == REVEALING       # round 0 comes first
    for part in ("violate", "ends_with", REVEALING):
        assert part not in page.content()

    # A half-filled form survives a reload.
    for key in ("a", "3", "q", "2"):
        page.keyboard.press(key)
    page.keyboard.press("n")
    page.keyboard.type("half done")
    page.keyboard.press("Escape")
    _until(lambda: _drafts(page) == [f"afm-draft:ann/{first}"])
    page.reload()
    expect(page.locator("#prompt")).to_contain_text(f"Item {first}", timeout=30_000)
    expect(page.locator("#justification textarea")).to_have_value("half done", timeout=10_000)
    assert (_checked(page, "choice"), _checked(page, "level"), _checked(page, "grade-a-0")) == (0, 2, 2)
    screenshot(page, "annotate.png")

    # Enter, then at once the next item's keys: they wait for it instead of being lost.
    page.keyboard.press("Enter")
    page.keyboard.press("b")
    page.keyboard.press("2")
    seconds = _wait_for_new_item(page, first)
    assert seconds < 5, f"the next item took {seconds:.2f} s"
    second = _item(page)
    expect(page.locator("#choice input[value=B]")).to_be_checked(timeout=5_000)
    assert _checked(page, "level") == 1
    expect(bar).to_have_attribute("value", "1")
    [label] = store.labels()
    assert (label["level"], label["justification"], label["user"]) == (2, "half done", "ann")
    _until(lambda: _drafts(page) == [f"afm-draft:ann/{second}"])          # first's draft is dropped

    # My labels: filled on its own, levels as keys, picking one opens it in Annotate.
    page.get_by_role("tab", name="My labels").click()
    table = page.locator("#my-labels")
    expect(table).to_contain_text("3 · better", timeout=20_000)
    expect(table).to_contain_text(str(first))
    assert "violate" not in page.content()
    page.locator("#edit-picker input").click()
    page.get_by_role("option", name=re.compile(f"item {first}")).click()
    expect(page.locator("#prompt")).to_contain_text(f"editing label #{label['id']}", timeout=20_000)
    expect(page.locator("#submit-btn")).to_be_visible()                # the Annotate tab is shown
    page.evaluate("() => document.activeElement && document.activeElement.blur()")   # leave the picker
    page.keyboard.press("4")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("Saved label", timeout=20_000)
    assert store.labels()[0]["level"] == 3
    expect(page.locator("#prompt")).to_contain_text(f"Item {second}", timeout=20_000)
    expect(page.locator("#choice input[value=B]")).to_be_checked(timeout=5_000)   # its draft came back

    # At the quota: said so, and no empty form.
    store.set_user("ann", quota=2)
    page.keyboard.press("Enter")
    expect(page.locator("#prompt")).to_contain_text("reached your quota of 2", timeout=20_000)
    expect(page.locator("#progress")).to_contain_text("quota reached")
    expect(page.locator("#progress")).not_to_contain_text("more pairs available")
    expect(page.locator("#submit-btn")).to_be_hidden()
    expect(bar).to_have_attribute("value", "2")
    expect(bar).to_have_attribute("max", "2")
    assert _drafts(page) == []


@pytest.mark.slow
def test_expired_lease_and_stale_tab_move_on(served, login):
    from playwright.sync_api import expect

    _, store = served
    store.set_settings(lease_minutes=0.02)                             # 1.2 s
    store.add_pairs([{"pair_id": "solo", "prompt": "Say hi.", "response_a": "hi", "response_b": "hello"}],
                    round=0, k=1)
    page = login("ann", "ann-password-1")
    item = _item(page)
    assert store.assignment("ann", item).pair_id == "solo"
    time.sleep(1.5)                                                    # ann walks away ...
    assert store.next_pair("ann2").pair_id == "solo"                   # ... and ann2 gets the pair
    assert store.assignment("ann", item).state == "expired"
    page.keyboard.press("a")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text(
        f"Not saved: item {item} went to another annotator after its lease ran out", timeout=20_000)
    _wait_for_new_item(page, item)
    assert store.labels(user="ann") == []

    store.set_settings(lease_minutes=30)
    second_tab = login("ann", "ann-password-1")
    now = _item(page)
    assert _item(second_tab) == now
    page.keyboard.press("a")
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    expect(page.locator("#message")).to_contain_text("Saved label", timeout=20_000)
    second_tab.keyboard.press("b")
    second_tab.keyboard.press("1")
    second_tab.keyboard.press("Enter")
    expect(second_tab.locator("#message")).to_contain_text(f"Not saved: item {now} was already labelled",
                                                           timeout=20_000)
    _wait_for_new_item(second_tab, now)
    assert _item(second_tab) == _item(page)                           # both on the next open item
    assert [label["better"] for label in store.labels(user="ann")] == [
        "a" if not store.assignment("ann", now).swapped else "b"]
