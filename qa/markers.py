"""Cleaning an LLM's citation markers while its text streams.

A model may cite a passage that does not exist ([7] of five), write several numbers in one
bracket ([1, 2]) or use full-width brackets (【1】). ``MarkerFilter`` takes the raw text
piece by piece and gives back text that is safe to show at once: a marker is held back
until its bracket closes, valid numbers are renumbered by first use (through the shared
``CitationBuilder``), invalid ones are dropped, and trailing whitespace is held until more
text follows, so the shown pieces always add up to the final answer.

``SentenceGate``, before it, lets the raw text through a sentence at a time and drops a
sentence that carries a link or an instruction.
"""

from __future__ import annotations

import re

from retriever import Hit

from .citations import CitationBuilder, marker
from .injection import Finding, detect_output

_OPEN = "[【"
_CLOSE = {"[": "]", "【": "】"}
_INSIDE = re.compile(r"[\d,，、\s]*")
_NUMBER = re.compile(r"\d+")
_MAX_MARKER = 16  # an open bracket followed by more than this is text, not a marker
_SENTENCE_END = re.compile(r"[。！？!?；;.\n]")


class MarkerFilter:
    def __init__(self, hits: list[Hit], builder: CitationBuilder):
        self.hits = hits
        self.builder = builder
        self.valid = 0  # markers kept
        self.dropped = 0  # numbers that pointed to no passage
        self.cited: list[tuple[Hit, str]] = []  # (passage, the answer sentence citing it)
        self._pending = ""  # text not yet safe to show
        self._sentence = ""  # the answer sentence being written (for quoting)
        self._started = False

    def feed(self, text: str) -> str:
        self._pending += text
        return self._drain(final=False)

    def finish(self) -> str:
        out = self._drain(final=True)
        return out.rstrip()

    def _drain(self, final: bool) -> str:
        out: list[str] = []
        buf = self._pending
        i = 0
        while i < len(buf):
            ch = buf[i]
            if ch in _OPEN:
                close = buf.find(_CLOSE[ch], i + 1)
                inside = buf[i + 1 : close] if close != -1 else buf[i + 1 :]
                if close == -1 and not final and len(inside) <= _MAX_MARKER and _INSIDE.fullmatch(inside):
                    break  # may still become a marker: wait for more text
                if close != -1 and _INSIDE.fullmatch(inside) and _NUMBER.search(inside):
                    out.append(self._resolve(inside))
                    i = close + 1
                    continue
            out.append(ch)
            self._note(ch)
            i += 1
        self._pending = buf[i:]
        text = "".join(out)
        if not self._started:
            text = text.lstrip()
            self._started = bool(text)
        if not final:  # hold trailing whitespace until something follows it
            stripped = text.rstrip()
            self._pending = text[len(stripped):] + self._pending
            text = stripped
        return text

    def _resolve(self, inside: str) -> str:
        out = []
        for raw in _NUMBER.findall(inside):
            n = int(raw)
            if 1 <= n <= len(self.hits):
                hit = self.hits[n - 1]
                out.append(marker(self.builder.number(hit)))
                self.cited.append((hit, self._sentence))
                self.valid += 1
            else:
                self.dropped += 1
        return "".join(out)

    def _note(self, ch: str) -> None:
        self._sentence += ch
        if _SENTENCE_END.match(ch):
            self._sentence = ""


_END = re.compile(r"(?:[。！？!?；;]+|\.(?=\s))[”’」』\"')）]*|\n")
_MARKERS_AFTER = re.compile(r"(?:\s*(?:\[[\d,，、\s]*\]|【[\d,，、\s]*】))*")
_ANY_MARKER = re.compile(r"\[[\d,，、\s]*\]|【[\d,，、\s]*】")


class SentenceGate:
    """Lets generated text through a whole sentence at a time, and drops a sentence that
    carries a link or an instruction (``qa.injection.detect_output``): a model that obeyed
    an instruction planted in a passage must not show it to the user.

    It sits before ``MarkerFilter``, so the markers of a dropped sentence (also those
    written right after its end punctuation, "…login。[2]") never reach the citation list.
    """

    def __init__(self) -> None:
        self.dropped: list[tuple[str, Finding]] = []  # (sentence, why)
        self._pending = ""

    def feed(self, text: str) -> str:
        return "".join(self.feed_sentences(text))

    def finish(self) -> str:
        return "".join(self.finish_sentences())

    def feed_sentences(self, text: str) -> list[str]:
        """The sentences completed by ``text`` that passed (each with its markers)."""
        self._pending += text
        return self._release(final=False)

    def finish_sentences(self) -> list[str]:
        return self._release(final=True)

    def _release(self, final: bool) -> list[str]:
        out = []
        while True:
            end = self._sentence_end(final)
            if end is None:
                break
            out.append(self._check(self._pending[:end]))
            self._pending = self._pending[end:]
        if final and self._pending:
            out.append(self._check(self._pending))
            self._pending = ""
        return [s for s in out if s]

    def _sentence_end(self, final: bool) -> int | None:
        """Where the first complete sentence (with the markers right after it) ends, if any:
        complete once something other than whitespace or a possible marker follows it."""
        buf = self._pending
        m = _END.search(buf)
        if m is None:
            return None
        end = _MARKERS_AFTER.match(buf, m.end()).end()
        rest = buf[end:].lstrip()
        if final:
            return end if rest else None
        if not rest:
            return None  # a marker may still follow
        if rest[0] in _OPEN and _CLOSE[rest[0]] not in rest and len(rest) <= _MAX_MARKER + 1 \
                and _INSIDE.fullmatch(rest[1:]):
            return None  # an unfinished marker
        return end

    def _check(self, sentence: str) -> str:
        finding = detect_output(_ANY_MARKER.sub("", sentence))
        if finding is None:
            return sentence
        self.dropped.append((sentence, finding))
        return ""
