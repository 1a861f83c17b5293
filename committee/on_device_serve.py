"""The on-device track's serving check: one process, one palettised base, task adapters switched per request.

What it measures (`measure(track, bases, data)`): an `alignment.adapter_serving.AdapterServer` over the
mixed scheme's base with the seed-0 recovery, summarize and math adapters answers an interleaved stream of
test requests (the adapter changes on every request, the bare base included) and reports:
- requests in / responses out / errors (no request may be lost);
- adapter switch time in milliseconds (median and max over the switches) and the mean request latency;
- agreement: a sample of the served answers is compared with the same adapter loaded alone in a fresh
  process-local model (greedy, so a correct switch gives the identical text);
- memory: one palettised base + N adapters at 16 bits against N merged 16-bit models
  (`alignment.adapter_serving.memory_report`).

What it simplifies: requests come from a list, not a socket; the agreement check covers a sample.

Run: used by `committee.on_device` (the `serving` entry of results.json).
"""
from __future__ import annotations

import statistics


def requests(data: dict, adapters: list[str], n: int) -> list[dict]:
    """`n` requests cycling through `adapters` (and the bare base), summarise and math test prompts."""
    from afm_align.store import read_rows

    summ = read_rows(data["summarize_test"], "prompt")
    math = [r for r in read_rows(data["test"], "prompt") if r["domain"] == "math"]
    names = [*adapters, "none"]
    out = []
    for i in range(n):
        name = names[i % len(names)]
        row = summ[i % len(summ)] if name == "summarize" else math[i % len(math)]
        out.append({"id": f"req-{i}", "adapter": name, "messages": row["prompt"]})
    return out


def measure(track, bases: dict, data: dict) -> dict:
    """Serve the interleaved stream; switch times, losses of requests, agreement and memory."""
    def compute():
        from alignment.adapter_serving import AdapterServer, memory_report

        scheme = track.results["tasks"]["scheme"]
        seed = track.cfg.seeds[0]
        adapters = {"recovery": track.path(f"adapters/ara-{scheme}-r16-s{seed}"),
                    "summarize": track.path(f"tasks/summarize-s{seed}"), "math": track.path(f"tasks/math-s{seed}")}
        stream = requests(data, list(adapters), track.cfg.serve_requests)
        server = AdapterServer(bases[scheme], adapters, max_new_tokens=track.cfg.eval_max_new_tokens)
        responses = list(server.serve(stream))
        switches = [s for s in server.switches if s > 0]
        agree = 0
        sample = responses[: len(adapters) + 1]
        for request, response in zip(stream, sample):
            alone = AdapterServer(bases[scheme], {k: v for k, v in adapters.items() if k == request["adapter"]},
                                  max_new_tokens=track.cfg.eval_max_new_tokens)
            agree += alone.answer(request).get("completion") == response.get("completion")
        return {"base": str(bases[scheme]), "adapters": {k: str(v) for k, v in adapters.items()},
                "requests": len(stream), "responses": len(responses),
                "errors": sum("error" in r for r in responses),
                "switches": len(switches), "switch_ms_median": round(statistics.median(switches), 4),
                "switch_ms_max": round(max(switches), 4),
                "latency_ms_mean": round(statistics.mean(r["latency_ms"] for r in responses if "latency_ms" in r), 2),
                "agreement_with_alone": f"{agree}/{len(sample)}", **memory_report(bases[scheme], adapters)}
    return track.evaluation("serving", compute)
