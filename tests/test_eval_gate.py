"""CI quality gate: hybrid retrieval on the dev set must stay above the floors in eval/gate.toml.

The floors are the numbers measured on the seed index (see the file for the date and the
command) minus a small margin. When this fails, a change made retrieval worse on the dev
set: look at the misses in ``python -m eval eval/questions.jsonl --index ... --out ...``.
Answers (key recall, citation correctness, refusal accuracy, false-refusal ceiling) are
gated too when the qa stage is importable and ``EvalSettings.gate_answers`` is on (about
30 s on an idle 2-core machine; ``POLICYQA_EVAL_GATE_ANSWERS=0`` turns it off).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.gate import check_gate, load_gate
from eval.runner import EvalOptions, load_assistant_class, run_evaluation
from eval.schema import load_questions
from settings import load_settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gate():
    return load_gate()


def test_gate_file_is_well_formed(gate):
    measured, floors = gate["measured"], gate["floors"]
    assert measured["date"] and "python -m eval" in measured["command"]
    for metric in ("hit@5", "mrr@10"):
        assert 0 < floors[metric] <= measured[metric], metric
        assert measured[metric] - floors[metric] <= floors["margin"] + 0.01, metric
    for metric, floor in gate.get("answer_floors", {}).items():
        if metric == "false_refusal_rate":  # a ceiling
            assert measured[metric] <= floor, metric
        else:
            assert floor <= measured[metric], metric


def test_dev_set_hybrid_above_floors(retriever, settings, gate):
    qfile = load_questions(ROOT / "eval" / "questions.jsonl")
    assert not qfile.errors, [str(e) for e in qfile.errors]
    answer_floors = gate.get("answer_floors") or {}
    with_answers = (bool(answer_floors) and load_settings().eval.gate_answers
                    and load_assistant_class()[0] is not None)
    config = gate["floors"].get("config", "hybrid")
    options = EvalOptions.from_settings(settings, configs=(config,), answers=with_answers, answer_mode=config)
    result = run_evaluation(qfile.questions, retriever, settings, options, progress=False)
    assert not result.summary["diagnostics"]["evidence_not_in_index"]
    if with_answers:
        assert result.summary["answers"] and not result.summary["answers"]["errors"], "answering failed"
    failures = check_gate(result.summary, gate)
    overall = result.summary["retrieval"][config]["overall"]
    answers = (result.summary["answers"] or {}).get("overall")
    assert not failures, f"{failures}; measured now: retrieval {overall}, answers {answers}"


def test_check_gate_flags_a_drop():
    gate = {"floors": {"config": "hybrid", "margin": 0.03, "hit@5": 0.9, "mrr@10": 0.8},
            "answer_floors": {"key_recall": 0.5, "false_refusal_rate": 0.2}}
    good = {"retrieval": {"hybrid": {"overall": {"hit@5": 0.95, "mrr@10": 0.85}}},
            "answers": {"overall": {"key_recall": 0.6, "false_refusal_rate": 0.1}}}
    assert check_gate(good, gate) == []
    bad = {"retrieval": {"hybrid": {"overall": {"hit@5": 0.85, "mrr@10": 0.85}}},
           "answers": {"overall": {"key_recall": 0.6, "false_refusal_rate": 0.3}}}
    failures = check_gate(bad, gate)
    assert len(failures) == 2 and "hit@5" in failures[0] and "false_refusal_rate" in failures[1]
    assert check_gate({"retrieval": {}}, gate) == ["configuration 'hybrid' was not evaluated"]
