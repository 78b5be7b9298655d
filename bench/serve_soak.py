"""A soak of the scoring server: a bounded loop of requests, malformed ones included, to 127.0.0.1 only.

    transferflow run                                     # once: a champion in the registry
    python bench/serve_soak.py [--name MODEL] [--requests 2000]

It starts `transferflow serve` for `models:/<name>@champion` on a free local port and sends requests
in a fixed cycle: texts one at a time and in batches, malformed bodies (not JSON, no "inputs", a
number, numbers for texts, an empty body, the wrong content type) and one text of 1 MB. Each kind has
the answer it must get: 200 with one label per text for texts (the 1 MB one too: the model truncates
it), a 4xx for a malformed body. Every request after a malformed or a 1 MB one is a text, so the
figures show the server still answers after each. It prints a row per kind (count, p50/p99 latency
in ms, unexpected answers) and last `errors: N`, the count of unexpected answers (a 5xx, a dropped
connection, a timeout, or the wrong status); the exit code is 1 when N > 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TEXTS = ["a gripping , funny film", "a dull , lifeless mess", "it is what it is", "a triumph", "tedious",
         "not bad at all", "the plot goes nowhere", "one of the year 's best"]
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Kind:
    """One kind of request: its body, headers, and the answer it must get."""

    name: str
    body: bytes
    headers: dict = field(default_factory=lambda: JSON)
    texts: int = 0
    """Texts sent (a 200 must carry this many predictions); 0 for a malformed body, which must get a 4xx."""


def _texts(texts: list[str]) -> bytes:
    return json.dumps({"inputs": texts}).encode()


ONE = Kind("one text", _texts(TEXTS[:1]), texts=1)
BATCH = Kind("8 texts", _texts(TEXTS), texts=8)
HUGE = Kind("1 MB text", _texts([" ".join(["film"] * 209_716)]), texts=1)  # 5 bytes a word: 1 MiB
MALFORMED = [
    Kind("not JSON", b'{"inputs": ["a film"'),
    Kind("no inputs key", json.dumps({"texts": TEXTS[:2]}).encode()),
    Kind("inputs a number", json.dumps({"inputs": 5}).encode()),
    Kind("numbers for texts", json.dumps({"inputs": [1, 2]}).encode()),
    Kind("empty body", b""),
    Kind("text/plain body", b"a film", {"Content-Type": "text/plain"}),
]
CYCLE = [ONE, BATCH, ONE, BATCH] + [k for bad in MALFORMED + [HUGE] for k in (bad, ONE)]
"""Each malformed or 1 MB request is followed by a text, whose answer shows the server survived it."""


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)


def expected(kind: Kind, answer: httpx.Response) -> str | None:
    """Why the answer is wrong for this kind of request, or None when it is the right one."""
    if kind.texts:
        if answer.status_code != 200:
            return f"{answer.status_code}: {answer.text[:200]}"
        predictions = answer.json().get("predictions")
        if not isinstance(predictions, list) or len(predictions) != kind.texts:
            return f"200 without {kind.texts} predictions: {answer.text[:200]}"
        return None
    if not 400 <= answer.status_code < 500:
        return f"{answer.status_code} for a malformed body: {answer.text[:200]}"
    return None


def soak(url: str, requests: int, timeout_s: float = 60) -> dict[str, Tally]:
    """Send `requests` requests in CYCLE order, one at a time; a tally of latency and unexpected
    answers per kind, plus "after malformed" and "after 1 MB" for the text that followed each."""
    tallies: dict[str, Tally] = {}
    previous = None
    with httpx.Client(base_url=url, timeout=timeout_s) as client:
        for i in range(requests):
            kind = CYCLE[i % len(CYCLE)]
            started = time.perf_counter()
            try:
                problem = expected(kind, client.post("/invocations", content=kind.body, headers=kind.headers))
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}: {err}"
            tally = tallies.setdefault(kind.name, Tally())
            tally.latencies_ms.append((time.perf_counter() - started) * 1000)
            if problem:
                tally.unexpected.append(problem)
            if previous is HUGE or (previous is not None and previous.texts == 0):
                after = tallies.setdefault("after 1 MB" if previous is HUGE else "after malformed", Tally())
                after.latencies_ms.append(tally.latencies_ms[-1])
                if problem:
                    after.unexpected.append(problem)
            previous = kind
    return tallies


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def report(tallies: dict[str, Tally]) -> str:
    lines = ["| requests | count | p50 ms | p99 ms | unexpected |", "|---|---|---|---|---|"]
    for name, t in sorted(tallies.items(), key=lambda item: item[0].startswith("after")):
        lines.append(f"| {name} | {len(t.latencies_ms)} | {percentile(t.latencies_ms, 50):.1f} | "
                     f"{percentile(t.latencies_ms, 99):.1f} | {len(t.unexpected)} |")
    texts = [ms for k in (ONE, BATCH) for ms in tallies.get(k.name, Tally()).latencies_ms]
    lines.append(f"\nall text requests: p50 {percentile(texts, 50):.1f} ms, p99 {percentile(texts, 99):.1f} ms")
    seen = [p for name, t in tallies.items() if not name.startswith("after") for p in t.unexpected]
    lines += [f"  unexpected: {p}" for p in dict.fromkeys(seen)]
    lines.append(f"errors: {len(seen)}")
    return "\n".join(lines)


def main() -> int:
    from transferflow.config import load_params
    from transferflow.scoring import running_server

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", help="registered model name (default: register.model_name of --params)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    name = args.name or load_params(args.params).register.model_name
    with tempfile.TemporaryDirectory() as tmp, running_server(name, Path(tmp) / "serve.log", args.alias) as url:
        print(f"soak: {args.requests} requests to {url} (models:/{name}@{args.alias}), one at a time")
        started = time.perf_counter()
        tallies = soak(url, args.requests)
        seconds = time.perf_counter() - started
    print(report(tallies))
    print(f"wall: {seconds:.1f} s, {args.requests / seconds:.1f} requests/s")
    return 1 if any(t.unexpected for n, t in tallies.items() if not n.startswith("after")) else 0


if __name__ == "__main__":
    sys.exit(main())
