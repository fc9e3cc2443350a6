"""Stage 3: question (+ history) → cited answer, refusal, or a clear message.

    from qa import Assistant
    ans = Assistant.load("index").ask("到2020年北斗系统由多少颗卫星组成?")
    ans.text, ans.citations, ans.refused
"""

from .assistant import GENERATORS, Assistant
from .generator import Draft, Evidence, Generator, GeneratorError
from .records import Answer, Citation, Sources

__all__ = ["GENERATORS", "Answer", "Assistant", "Citation", "Draft", "Evidence", "Generator", "GeneratorError",
           "Sources"]
