"""Quality floors (eval/gate.toml) and the check CI runs against an evaluation summary."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_gate(path: str | Path | None = None) -> dict:
    """The gate file; a relative path is taken from the repository root."""
    from settings import load_settings

    path = Path(path or load_settings().eval.gate_file)
    if not path.is_absolute():
        path = ROOT / path
    with path.open("rb") as fh:
        return tomllib.load(fh)


def check_gate(summary: dict, gate: dict) -> list[str]:
    """Human-readable failures (empty when every floor holds)."""
    failures: list[str] = []
    floors = dict(gate.get("floors", {}))
    config = floors.pop("config", "hybrid")
    floors.pop("margin", None)
    block = summary.get("retrieval", {}).get(config)
    if block is None:
        return [f"configuration {config!r} was not evaluated"]
    for metric, floor in floors.items():
        value = block["overall"].get(metric)
        if value is None:
            failures.append(f"{config} {metric}: not computed")
        elif value < floor:
            failures.append(f"{config} {metric} = {value:.3f} is below the floor {floor:.3f}")
    answers = summary.get("answers")
    for metric, floor in gate.get("answer_floors", {}).items():
        if not answers:
            break
        value = answers["overall"].get(metric)
        # false_refusal_rate is the one metric where lower is better: its entry is a ceiling
        if metric == "false_refusal_rate":
            if value is not None and value > floor:
                failures.append(f"answers {metric} = {value:.3f} is above the ceiling {floor:.3f}")
        elif value is None or value < floor:
            failures.append(f"answers {metric} = {value} is below the floor {floor:.3f}")
    return failures
