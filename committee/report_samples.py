"""Sample outputs in report.md: a few dev prompts with each top member's answer, as literal text.

What it does: `sample_section(samples, members, n)` picks up to `n` dev prompts all of `members` answered
(the top members by `committee.promotion.rank_key`, plus r0-sft as the reference), preferring prompts where
their verifier scores differ and spreading the picks over domains (one per domain in turn), and writes each
prompt and each member's answer with its verifier and RM scores.

Why fenced: answers are model text: they can hold markdown, HTML or fences of their own. Each prompt and
answer goes in a fenced code block whose fence is longer than any backtick run in the text (CommonMark:
nothing inside is interpreted, no HTML is rendered, no heading or table can break out); inline fields
(domain, prompt id) are backslash-escaped with `md_escape`. Long answers are cut at `MAX_CHARS`.

Run: through `committee.report.write_report`; tests: `python -m pytest tests/committee/test_report_sections.py`.
"""
from __future__ import annotations

import re

MAX_CHARS = 800  # of an answer or prompt shown in the report
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~&])")


def prompt_text(prompt) -> str:
    """The user turns of a chat prompt (a plain string is returned as is)."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(str(m.get("content", "")) for m in prompt if m.get("role") == "user") or str(prompt)


def md_escape(text: str) -> str:
    """Inline text with markdown's special characters backslash-escaped (one line)."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def fenced(text: str, limit: int = MAX_CHARS) -> list[str]:
    """`text` in a fenced code block that no backtick run inside it can close."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit] + f"\n[... {len(text) - limit} more characters cut]"
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + "text", *text.splitlines(), fence]


def _score(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def pick_prompts(samples: list[dict], members: list[str], n: int) -> list[str]:
    """Up to `n` prompt ids all `members` answered: disagreements first, one domain at a time in turn."""
    answers: dict[str, dict[str, dict]] = {}
    for s in samples:
        if s.get("member") in members:
            answers.setdefault(s["prompt_id"], {})[s["member"]] = s
    shared = [p for p, by in answers.items() if len(by) == len(members)]
    by_domain: dict[str, list[str]] = {}
    for pid in sorted(shared, key=lambda p: (len({a.get("verifier_score") for a in answers[p].values()}) == 1, p)):
        by_domain.setdefault(answers[pid][members[0]].get("domain") or "-", []).append(pid)
    picks: list[str] = []
    queues = [by_domain[d] for d in sorted(by_domain)]
    while len(picks) < n and any(queues):
        for queue in queues:
            if queue and len(picks) < n:
                picks.append(queue.pop(0))
    return picks


def sample_section(samples: list[dict], members: list[str], n: int, split: str = "dev") -> list[str]:
    """The report's "Sample outputs" section (empty when no prompt was answered by all `members`)."""
    picks = pick_prompts(samples, members, n)
    if not picks:
        return []
    rows = {(s["prompt_id"], s["member"]): s for s in samples if s.get("member") in members}
    lines = ["## Sample outputs", "",
             (f"{len(picks)} {split} prompts answered by {', '.join(members)} (prompts where their verifier scores "
              "differ first, one domain at a time). Greedy answers, shown verbatim in code blocks."), ""]
    for pid in picks:
        first = rows[(pid, members[0])]
        lines += [f"### {md_escape(first.get('domain') or '-')}: {md_escape(pid)}", "", "Prompt:", "",
                  *fenced(prompt_text(first.get("prompt", ""))), ""]
        for member in members:
            s = rows[(pid, member)]
            lines += [f"**{md_escape(member)}** (verifier {_score(s.get('verifier_score'))}, "
                      f"RM {_score(s.get('rm_score'))}):", "", *fenced(s.get("completion", "")), ""]
    return lines
