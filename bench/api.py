"""``python -m bench.api --index DIR [--questions 20] [--burst 20] [--out bench/out]``

What the OpenAI-compatible API (ui/api.py) adds to an answer, measured through the real
``openai`` client against the app served on a free local port: per dev question, the
answer's time through ``Assistant.ask`` directly, through ``/v1/chat/completions``, and the
time to the first streamed content chunk; then a burst of parallel requests against
``AppSettings.concurrency`` + ``queue_size``: how many are answered and how many are told
"busy" (503), and how long the busy answer takes. Writes api.json into --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

from settings import load_settings
from ui.serve import serving

ROOT = Path(__file__).resolve().parents[1]


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True)
    parser.add_argument("--questions", type=int, default=20, help="dev questions timed (answerable first)")
    parser.add_argument("--burst", type=int, default=20, help="parallel requests in the burst")
    parser.add_argument("--generator", default="extractive")
    parser.add_argument("--out", default="bench/out")
    args = parser.parse_args(argv)

    import openai

    import app
    from ui.access import Access

    settings = load_settings().override("qa", generator=args.generator).override("app", warm_up=False)
    engine = app.Engine.load(Path(args.index), settings)
    engine.warm_up()  # sentence vectors cached: both paths answer from the same warm state
    rows = [json.loads(line) for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    questions = [r["question"] for r in rows if r["type"] != "unanswerable"][: args.questions]
    direct, api, first, total = [], [], [], []
    with serving(app.create_app(engine, settings, Access())) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=300)
        messages = lambda q: [{"role": "user", "content": q}]  # noqa: E731
        for q in questions:  # one untimed pass: query and sentence caches warm for every path alike
            client.chat.completions.create(model="policyqa", messages=messages(q))
        for q in questions:
            t0 = time.perf_counter()
            engine.assistant.ask(q)
            direct.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.chat.completions.create(model="policyqa", messages=messages(q))
            api.append(time.perf_counter() - t0)
            t0, got = time.perf_counter(), None
            for chunk in client.chat.completions.create(model="policyqa", messages=messages(q), stream=True):
                if got is None and chunk.choices and chunk.choices[0].delta.content:
                    got = time.perf_counter() - t0
            first.append(got)
            total.append(time.perf_counter() - t0)

        outcomes: list = [None] * args.burst
        start = threading.Barrier(args.burst)

        def one(i: int) -> None:
            start.wait()
            t0 = time.perf_counter()
            try:
                client.chat.completions.create(model="policyqa", messages=messages(questions[i % len(questions)]))
                outcomes[i] = ("answered", time.perf_counter() - t0)
            except openai.APIStatusError as exc:
                outcomes[i] = (str(exc.status_code), time.perf_counter() - t0)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(args.burst)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        burst_wall = time.perf_counter() - t0
    busy = [s for kind, s in outcomes if kind == "503"]
    result = {
        "questions": len(questions), "generator": args.generator,
        "direct_ask_s": {"p50": _pct(direct, 0.5), "p95": _pct(direct, 0.95)},
        "api_s": {"p50": _pct(api, 0.5), "p95": _pct(api, 0.95)},
        "api_overhead_s_median": round(statistics.median(a - d for a, d in zip(api, direct)), 3),
        "stream_first_content_s": {"p50": _pct(first, 0.5), "p95": _pct(first, 0.95)},
        "stream_total_s": {"p50": _pct(total, 0.5), "p95": _pct(total, 0.95)},
        "burst": {"requests": args.burst, "concurrency": settings.app.concurrency,
                  "queue_size": settings.app.queue_size,
                  "answered": sum(kind == "answered" for kind, _ in outcomes), "busy_503": len(busy),
                  "other": sum(kind not in ("answered", "503") for kind, _ in outcomes),
                  "busy_reply_s_max": round(max(busy), 3) if busy else None, "wall_s": round(burst_wall, 2)},
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "api.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
