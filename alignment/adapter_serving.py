"""Serving task adapters over one shared base: switch the adapter per request, never reload the base.

What it does: `AdapterServer(base, {name: adapter_dir})` loads the (palettised) base once and every adapter
under its name (`afm_align.adapter_io.load_adapted`); `answer(request)` switches to the request's adapter
(peft's `set_adapter`; the name `none` runs the bare base with the adapters disabled), times the switch,
answers greedily with the one generation path (`afm_align.generation`) and returns a response row. A bad
request (unknown adapter, no messages) gets a response with an `error` field instead of stopping the server,
so no request is lost: every request line gets exactly one response line, in order.
`memory_report` says what sharing the base saves: one palettised base plus N adapters at 16 bits, against
N merged models at 16 bits each (what serving the tasks without swapping would hold).

`afm-align serve --base DIR --adapter NAME=DIR [...] [--requests FILE]` reads JSON lines
(`{"id": ..., "adapter": NAME, "messages": [...]}`, or `"prompt": "text"`) from the file or stdin and writes
one JSON line per request to stdout; a summary (requests, switches, median switch ms) goes to stderr.

What it simplifies: one request at a time (no batching across adapters, as a device serves one feature at a
time); memory figures count weights, not activations or the KV cache.

Run: `printf '{"adapter": "summarize", "prompt": "Summarize this email: ..."}\\n' | afm-align serve --base q4 --adapter summarize=a`.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator

from afm_align.adapter_io import BARE
from afm_align.errors import UserError


class AdapterServer:
    """One base in memory, several named adapters, switched per request."""

    def __init__(self, base: str | Path, adapters: dict[str, str | Path], *, max_new_tokens: int = 64):
        from afm_align.adapter_io import load_adapted
        from afm_align.member_io import set_threads

        set_threads()
        self.model, self.tokenizer = load_adapted(base, adapters)
        self.names = set(adapters)
        self.active = None
        self.max_new_tokens = max_new_tokens
        self.switches: list[float] = []

    def switch(self, name: str) -> float:
        """Make `name` the active adapter; the milliseconds it took (0 when it already was)."""
        if name == self.active:
            return 0.0
        start = time.perf_counter()
        if name != BARE:
            self.model.set_adapter(name)
        self.active = name
        ms = (time.perf_counter() - start) * 1000
        self.switches.append(ms)
        return ms

    def generate(self, messages: list[dict]) -> str:
        """The greedy answer of the active adapter (the bare base with adapters disabled for `none`)."""
        from contextlib import nullcontext

        from afm_align.generation import generate

        bare = self.active == BARE and hasattr(self.model, "disable_adapter")
        with self.model.disable_adapter() if bare else nullcontext():
            return generate(self.model, self.tokenizer, [messages], max_new_tokens=self.max_new_tokens,
                            temperature=0.0)[0][0]

    def answer(self, request: dict) -> dict:
        """The response row of one request (an `error` field instead of an exception for a bad one)."""
        out = {"id": request.get("id")}
        name = request.get("adapter", BARE)
        messages = request.get("messages") or ([{"role": "user", "content": request["prompt"]}]
                                               if isinstance(request.get("prompt"), str) else None)
        if name != BARE and name not in self.names:
            return {**out, "adapter": name, "error": f"unknown adapter '{name}' (loaded: {', '.join(sorted(self.names))})"}
        if not messages:
            return {**out, "adapter": name, "error": "a request needs 'messages' (chat) or 'prompt' (text)"}
        start = time.perf_counter()
        switch_ms = self.switch(name)
        completion = self.generate(messages)
        return {**out, "adapter": name, "completion": completion, "switch_ms": round(switch_ms, 4),
                "latency_ms": round((time.perf_counter() - start) * 1000, 2)}

    def serve(self, requests: Iterable[dict]) -> Iterator[dict]:
        """One response per request, in order."""
        for request in requests:
            yield self.answer(request)


def memory_report(base: str | Path, adapters: dict[str, str | Path]) -> dict:
    """Bytes held by one shared base + N adapters against N merged 16-bit models (weights only)."""
    from afm_align.adapter_io import adapter_meta, weight_file
    from afm_align.palette_format import bits_report, is_quantized

    config = json.loads((Path(base) / "config.json").read_text(encoding="utf-8"))
    size_bytes = bits_report(base)["size_bytes"] if is_quantized(base) else weight_file(base).stat().st_size
    adapter_bytes = sum(adapter_meta(p)["adapter_bytes_16bit"] for p in adapters.values())
    params = param_count(config)
    merged = len(adapters) * params * 2
    shared = size_bytes + adapter_bytes
    return {"adapters": len(adapters), "base_bytes": size_bytes, "adapter_bytes_16bit": adapter_bytes,
            "shared_bytes": shared, "merged_16bit_bytes": merged, "saved_bytes": merged - shared,
            "saved_share": round(1 - shared / merged, 4) if merged else 0.0}


def param_count(config: dict) -> int:
    """Parameters of a Qwen3 config (tied embeddings), from the config alone."""
    h, inter, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    head_dim = config.get("head_dim") or h // config["num_attention_heads"]
    q, kv = config["num_attention_heads"] * head_dim, config["num_key_value_heads"] * head_dim
    per_layer = h * q + 2 * h * kv + q * h + 3 * h * inter + 2 * h + 2 * head_dim
    return config["vocab_size"] * h + layers * per_layer + h


def parse_adapters(items: list[str]) -> dict[str, str]:
    """`NAME=DIR` flags as a dict; one line for a malformed or repeated one."""
    adapters = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--adapter {item!r}: write NAME=DIR")
        if name in adapters:
            raise UserError(f"--adapter {name} given twice")
        adapters[name] = path
    if not adapters:
        raise UserError("serve needs at least one --adapter NAME=DIR")
    return adapters


def read_requests(lines: Iterable[str]) -> Iterator[dict]:
    """JSON request rows; a line that is not a JSON object becomes a request that answers with its error."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            row = {"id": f"line {number}", "adapter": BARE, "_error": f"not JSON ({err.msg})"}
        yield row if isinstance(row, dict) else {"id": f"line {number}", "_error": "not a JSON object"}


def cli_main(args) -> int:
    """`afm-align serve`: JSON lines in, JSON lines out, a summary on stderr."""
    adapters = parse_adapters(args.adapter)
    if args.requests and not Path(args.requests).is_file():
        raise UserError(f"--requests {args.requests}: no such file")
    server = AdapterServer(args.base, adapters, max_new_tokens=args.max_new_tokens)
    lines = open(args.requests, encoding="utf-8") if args.requests else sys.stdin
    count = errors = 0
    for request in read_requests(lines):
        response = ({"id": request.get("id"), "error": request["_error"]} if "_error" in request
                    else server.answer(request))
        errors += "error" in response
        count += 1
        print(json.dumps(response, ensure_ascii=False), flush=True)
    switches = [s for s in server.switches if s > 0]
    median = statistics.median(switches) if switches else 0.0
    print(f"serve: {count} request(s), {errors} error(s), {len(switches)} adapter switch(es), "
          f"median switch {median:.3f} ms, base loaded once", file=sys.stderr)
    return 0
