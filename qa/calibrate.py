"""``python -m qa.calibrate [--index DIR] [--questions eval/questions.jsonl]``

Chooses the refusal thresholds from the dev set instead of guessing them. For every
question it computes the two refusal signals (``qa.refusal``: term coverage, and the best
sentence cosine for Chinese questions), then searches all threshold pairs for the one with
the best balanced accuracy among those whose false-refusal rate on answerable questions is
at most ``QASettings.refusal_max_false``. Thresholds are placed midway between adjacent
observed values. It prints the chosen pair, its refusal accuracy and false-refusal rate,
the unconstrained optimum, and a leave-one-out estimate (each question judged by
thresholds chosen without it), which is the honest number for a 12-negative dev set.
Copy the printed values into ``QASettings`` (settings.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Choice:
    coverage: float
    cosine: float
    refusal_accuracy: float
    false_refusal: float

    @property
    def balanced(self) -> float:
        return (self.refusal_accuracy + 1 - self.false_refusal) / 2


def _cuts(values: np.ndarray) -> np.ndarray:
    """Candidate thresholds: 0 (never refuse) and midpoints between adjacent distinct values."""
    v = np.unique(values)
    return np.concatenate([[0.0], (v[:-1] + v[1:]) / 2, [v[-1] + 1e-6]]) if len(v) else np.zeros(1)


def choose(coverage: np.ndarray, cosine: np.ndarray, cross: np.ndarray, answerable: np.ndarray,
           max_false: float | None) -> Choice:
    """Best (coverage, cosine) thresholds; ``max_false=None`` means unconstrained."""
    cov_cuts, cos_cuts = _cuts(coverage), _cuts(cosine[~cross])
    refuse = (coverage[None, None, :] < cov_cuts[:, None, None]) | (
        (~cross)[None, None, :] & (cosine[None, None, :] < cos_cuts[None, :, None]))
    ra = refuse[:, :, ~answerable].mean(axis=2) if (~answerable).any() else np.zeros(refuse.shape[:2])
    fr = refuse[:, :, answerable].mean(axis=2)
    score = (ra + 1 - fr) / 2
    if max_false is not None:
        score = np.where(fr <= max_false + 1e-12, score, -1.0)
    # ties: prefer fewer false refusals, then the gentler (lower) thresholds
    _, _, i, j = max((score[i, j], -fr[i, j], -i, -j) for i in range(len(cov_cuts)) for j in range(len(cos_cuts)))
    i, j = -i, -j
    return Choice(float(cov_cuts[i]), float(cos_cuts[j]), float(ra[i, j]), float(fr[i, j]))


def leave_one_out(coverage, cosine, cross, answerable, max_false) -> tuple[float, float]:
    refused = np.zeros(len(coverage), dtype=bool)
    for q in range(len(coverage)):
        keep = np.arange(len(coverage)) != q
        c = choose(coverage[keep], cosine[keep], cross[keep], answerable[keep], max_false)
        refused[q] = coverage[q] < c.coverage or (not cross[q] and cosine[q] < c.cosine)
    return float(refused[~answerable].mean()), float(refused[answerable].mean())


def collect(index: str, questions: Path, settings) -> list[dict]:
    from qa import Assistant

    assistant = Assistant.load(index, settings)
    rows = []
    with questions.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            q = json.loads(line)
            signal, hits = assistant.evidence_signal(q["question"])
            rows.append({"id": q["id"], "lang": q["lang"], "answerable": q["type"] != "unanswerable",
                         **signal.as_dict(), "top": hits[0].doc_id if hits else None})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="index directory (default from settings)")
    parser.add_argument("--questions", default=str(ROOT / "eval" / "questions.jsonl"))
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--max-false", type=float, help="highest false-refusal rate accepted")
    parser.add_argument("--json", help="also write the per-question signals and the result here")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every question's signals")
    args = parser.parse_args(argv)
    settings = load_settings(args.config)
    max_false = settings.qa.refusal_max_false if args.max_false is None else args.max_false
    path = Path(args.questions)
    if not path.is_file():
        print(f"error: no question file at {path}", file=sys.stderr)
        return 2
    from retriever import IndexLoadError

    try:
        rows = collect(args.index or settings.index.path, path, settings)
    except IndexLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    coverage = np.array([r["coverage"] for r in rows])
    cosine = np.array([r["best_cosine"] for r in rows])
    cross = np.array([r["cross_lingual"] for r in rows])
    answerable = np.array([r["answerable"] for r in rows])
    if answerable.all() or not answerable.any():
        print("error: the question file needs both answerable and unanswerable questions", file=sys.stderr)
        return 2
    chosen = choose(coverage, cosine, cross, answerable, max_false)
    free = choose(coverage, cosine, cross, answerable, None)
    loo_ra, loo_fr = leave_one_out(coverage, cosine, cross, answerable, max_false)
    if args.verbose:
        for r in rows:
            print(f"{r['id']} {'A' if r['answerable'] else 'U'} {r['lang']:7} cov {r['coverage']:.3f} "
                  f"cos {r['best_cosine']:.3f} missing {' '.join(r['missing'][:6])}")
    n_a, n_u = int(answerable.sum()), int((~answerable).sum())
    print(f"{len(rows)} questions ({n_a} answerable, {n_u} unanswerable), false refusals <= {max_false:.0%}")
    print(f"chosen:        refusal_threshold = {chosen.coverage:.3f}, refusal_min_cosine = {chosen.cosine:.3f}")
    print(f"  refusal accuracy {chosen.refusal_accuracy:.1%}, false-refusal rate {chosen.false_refusal:.1%}, "
          f"balanced accuracy {chosen.balanced:.3f}")
    print(f"unconstrained: coverage {free.coverage:.3f}, cosine {free.cosine:.3f}: refusal accuracy "
          f"{free.refusal_accuracy:.1%}, false refusals {free.false_refusal:.1%}, balanced {free.balanced:.3f}")
    print(f"leave-one-out: refusal accuracy {loo_ra:.1%}, false-refusal rate {loo_fr:.1%}")
    print(f"# calibrated {dt.date.today().isoformat()} with: python -m qa.calibrate --index {args.index or settings.index.path}")
    if args.json:
        Path(args.json).write_text(json.dumps({"chosen": chosen.__dict__, "unconstrained": free.__dict__,
                                               "leave_one_out": {"refusal_accuracy": loo_ra, "false_refusal": loo_fr},
                                               "rows": rows}, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
