"""``python -m qa.calibrate [--index DIR] [--questions eval/questions.jsonl] [--llm]``

Chooses the refusal thresholds from the dev set instead of guessing them. For every
question it computes the refusal signals (``qa.refusal``: evidence (support × coverage), the best sentence
cosine for Chinese questions, and with ``--llm`` the model's answerability score), then
searches the threshold grid for the combination with the best balanced accuracy among
those whose false-refusal rate on answerable questions is at most
``QASettings.refusal_max_false``. Thresholds are placed midway between adjacent observed
values. It prints, for the extractive path (retrieval signals) and the LLM path (all
three), the chosen thresholds, refusal accuracy and false-refusal rate, the unconstrained
optimum, and a leave-one-out estimate (each question judged by thresholds chosen without
it) — the honest, held-out number. Copy the printed values into ``QASettings``.
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
    evidence: float
    cosine: float
    refusal_accuracy: float
    false_refusal: float
    min_yes: float = -np.inf  # the LLM's answerability threshold (-inf: not used)

    @property
    def balanced(self) -> float:
        return (self.refusal_accuracy + 1 - self.false_refusal) / 2

    def refuses(self, evidence: float, cosine: float, cross: bool, yes: float) -> bool:
        return evidence < self.evidence or (not cross and cosine < self.cosine) or yes < self.min_yes


_MAX_CUTS = 80  # thresholds tried per signal (quantiles when there are more distinct values); 48 missed a
# point 3.3 points better on the 2026-12-08 LLM signals (60.0 -> 63.3 % refusal at 4.8 % false)


def _cuts(values: np.ndarray, never: float = 0.0) -> np.ndarray:
    """Candidate thresholds: ``never`` (never refuse) and midpoints between adjacent distinct
    values (a quantile subset of them when there are many)."""
    v = np.unique(values[np.isfinite(values)])
    if not len(v):
        return np.array([never])
    mids = (v[:-1] + v[1:]) / 2
    if len(mids) > _MAX_CUTS:
        mids = np.unique(np.quantile(mids, np.linspace(0, 1, _MAX_CUTS)))
    return np.concatenate([[never], mids, [v[-1] + 1e-6]])


def choose(evidence: np.ndarray, cosine: np.ndarray, cross: np.ndarray, answerable: np.ndarray,
           max_false: float | None, model_yes: np.ndarray | None = None) -> Choice:
    """Best thresholds (evidence, cosine, and the LLM score when given); ``max_false=None``
    means unconstrained. A question is refused when any signal is below its threshold."""
    yes = np.full(len(evidence), np.inf) if model_yes is None else model_yes
    ev_cuts, cos_cuts = _cuts(evidence), _cuts(cosine[~cross])
    yes_cuts = np.array([-np.inf]) if model_yes is None else _cuts(yes, never=-np.inf)
    refuse = ((evidence[None, None, None, :] < ev_cuts[:, None, None, None])
              | ((~cross)[None, None, None, :] & (cosine[None, None, None, :] < cos_cuts[None, :, None, None]))
              | (yes[None, None, None, :] < yes_cuts[None, None, :, None]))
    ra = refuse[..., ~answerable].mean(axis=-1) if (~answerable).any() else np.zeros(refuse.shape[:3])
    fr = refuse[..., answerable].mean(axis=-1)
    score = (ra + 1 - fr) / 2
    if max_false is not None:
        score = np.where(fr <= max_false + 1e-12, score, -1.0)
    # ties: prefer fewer false refusals, then the gentler (lower) thresholds
    key = np.lexsort((-np.indices(score.shape)[2].ravel(), -np.indices(score.shape)[1].ravel(),
                      -np.indices(score.shape)[0].ravel(), -fr.ravel(), score.ravel()))
    i, j, m = np.unravel_index(key[-1], score.shape)
    return Choice(float(ev_cuts[i]), float(cos_cuts[j]), float(ra[i, j, m]), float(fr[i, j, m]),
                  float(yes_cuts[m]))


def leave_one_out(evidence, cosine, cross, answerable, max_false, model_yes=None) -> tuple[float, float]:
    """Refusal accuracy and false-refusal rate when each question is judged by thresholds
    chosen without it: the held-out figure beside the fitted one."""
    yes = np.full(len(evidence), np.inf) if model_yes is None else model_yes
    refused = np.zeros(len(evidence), dtype=bool)
    for q in range(len(evidence)):
        keep = np.arange(len(evidence)) != q
        c = choose(evidence[keep], cosine[keep], cross[keep], answerable[keep], max_false,
                   None if model_yes is None else model_yes[keep])
        refused[q] = c.refuses(evidence[q], cosine[q], bool(cross[q]), yes[q])
    return float(refused[~answerable].mean()), float(refused[answerable].mean())


def auc(answerable_scores: np.ndarray, unanswerable_scores: np.ndarray) -> float:
    """How often an answerable question scores above an unanswerable one (ties count half):
    how well a signal separates them, whatever the threshold."""
    a, u = answerable_scores[:, None], unanswerable_scores[None, :]
    return float(((a > u).sum() + 0.5 * (a == u).sum()) / max(a.size * u.size, 1))


def separation(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Each signal's AUC, overall and per question language."""
    out: dict[str, dict[str, float]] = {}
    for signal in ("evidence", "support", "coverage", "best_cosine", "model_yes"):
        if not all(signal in r for r in rows):
            continue
        out[signal] = {}
        for lang in (None, *sorted({r["lang"] for r in rows})):
            pick = [r for r in rows if lang is None or r["lang"] == lang]
            yes = np.array([r[signal] for r in pick if r["answerable"]])
            no = np.array([r[signal] for r in pick if not r["answerable"]])
            if len(yes) and len(no):
                out[signal][lang or "all"] = round(auc(yes, no), 3)
    return out


def collect(index: str, questions: Path, settings, with_model: bool = False) -> list[dict]:
    from qa import Assistant

    assistant = Assistant.load(index, settings)
    rows = []
    with questions.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            q = json.loads(line)
            signal, hits = assistant.evidence_signal(q["question"], with_model=with_model)
            if with_model and signal.model_yes is None:
                raise SystemExit(f"error: the LLM is not available: {assistant.llm_notice()}")
            rows.append({"id": q["id"], "lang": q["lang"], "answerable": q["type"] != "unanswerable",
                         **signal.as_dict(), "top": hits[0].doc_id if hits else None})
    return rows


def _report(name: str, rows: list[dict], max_false: float, with_model: bool) -> dict:
    evidence = np.array([r["evidence"] for r in rows])  # support × coverage
    cosine = np.array([r["best_cosine"] for r in rows])
    cross = np.array([r["cross_lingual"] for r in rows])
    answerable = np.array([r["answerable"] for r in rows])
    yes = np.array([r.get("model_yes", np.inf) for r in rows]) if with_model else None
    chosen = choose(evidence, cosine, cross, answerable, max_false, yes)
    free = choose(evidence, cosine, cross, answerable, None, yes)
    loo_ra, loo_fr = leave_one_out(evidence, cosine, cross, answerable, max_false, yes)
    print(f"[{name}]")
    if with_model:
        print(f"chosen:        refusal_llm_evidence = {chosen.evidence:.3f}, refusal_llm_cosine = {chosen.cosine:.3f}, "
              f"refusal_llm_min_yes = {chosen.min_yes:.3f}")
    else:
        print(f"chosen:        refusal_min_evidence = {chosen.evidence:.3f}, refusal_min_cosine = {chosen.cosine:.3f}")
    print(f"  refusal accuracy {chosen.refusal_accuracy:.1%}, false-refusal rate {chosen.false_refusal:.1%}, "
          f"balanced accuracy {chosen.balanced:.3f}")
    print(f"unconstrained: refusal accuracy {free.refusal_accuracy:.1%}, false refusals {free.false_refusal:.1%}, "
          f"balanced {free.balanced:.3f}")
    print(f"leave-one-out: refusal accuracy {loo_ra:.1%}, false-refusal rate {loo_fr:.1%}")
    return {"chosen": chosen.__dict__, "unconstrained": free.__dict__,
            "leave_one_out": {"refusal_accuracy": loo_ra, "false_refusal": loo_fr}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--index", help="index directory (default from settings)")
    parser.add_argument("--questions", default=str(ROOT / "eval" / "questions.jsonl"))
    parser.add_argument("--config", help="TOML settings file")
    parser.add_argument("--max-false", type=float, help="highest false-refusal rate accepted")
    parser.add_argument("--llm", action="store_true", help="also score each question with the LLM's "
                        "answerability judgement and calibrate the LLM path's thresholds")
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
        rows = collect(args.index or settings.index.path, path, settings, with_model=args.llm)
    except IndexLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    answerable = np.array([r["answerable"] for r in rows])
    if answerable.all() or not answerable.any():
        print("error: the question file needs both answerable and unanswerable questions", file=sys.stderr)
        return 2
    if args.verbose:
        for r in rows:
            yes = f" yes {r['model_yes']:+.2f}" if "model_yes" in r else ""
            print(f"{r['id']} {'A' if r['answerable'] else 'U'} {r['lang']:7} ev {r['evidence']:.3f} sup {r['support']:.3f} "
                  f"cov {r['coverage']:.3f} "
                  f"cos {r['best_cosine']:.3f}{yes} missing {' '.join(r['missing'][:6])}")
    n_a, n_u = int(answerable.sum()), int((~answerable).sum())
    print(f"{len(rows)} questions ({n_a} answerable, {n_u} unanswerable), false refusals <= {max_false:.0%}")
    aucs = separation(rows)
    print("AUC answerable vs unanswerable: " + "; ".join(
        f"{name} " + ", ".join(f"{lang} {value:.3f}" for lang, value in per.items()) for name, per in aucs.items()))
    result = {"auc": aucs, "retrieval": _report("retrieval signals (extractive path)", rows, max_false, False)}
    if args.llm:
        result["llm"] = _report("with the LLM's judgement (llm path)", rows, max_false, True)
    print(f"# calibrated {dt.date.today().isoformat()} with: python -m qa.calibrate --index "
          f"{args.index or settings.index.path}{' --llm' if args.llm else ''}")
    if args.json:
        Path(args.json).write_text(json.dumps({**result, "rows": rows}, ensure_ascii=False, indent=1),
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
