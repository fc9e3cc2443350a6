"""Turning the bytes of a text file into str, whatever its encoding.

Government documents arrive as UTF-8, GB18030/GBK, Big5 or UTF-16, often without a
declaration. We trust byte-order marks and strict UTF-8 first (they are unambiguous),
then ask charset-normalizer, and refuse bytes that decode only to garbage so a binary
file with a ``.txt`` name is reported instead of indexed.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

from charset_normalizer import from_bytes

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Chinese detection often lands on a sibling code page; these are the supersets to use.
_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "cp936": "gb18030", "big5": "big5hkscs", "cp950": "big5hkscs"}
_MAX_BAD_SHARE = 0.02  # share of control/replacement characters tolerated in decoded text
_UTF8_EVIDENCE = 16  # this many non-ASCII characters that decode as strict UTF-8 are no accident
# A guessed legacy code page must give at least this share of Chinese/English characters:
# the guesser maps any run of high bytes to some code page (0xBB... -> "뻣뻣", cp949).
_MIN_GUESSED_SHARE = 0.5
# Characters real Chinese/English documents are made of (CJK, its punctuation, ASCII).
_COMMON_CHAR = re.compile("[\n\r\t -~\u4e00-\u9fff\u3000-\u303f\uff00-\uffef\u2000-\u206f]")


class DecodeError(ValueError):
    """The bytes are not text in any encoding we can recognise."""


def _looks_like_text(text: str) -> bool:
    if not text:
        return True
    bad = sum(1 for ch in text if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f"))
    return bad / len(text) <= _MAX_BAD_SHARE


def _plausible_share(text: str) -> float:
    """Share of characters from the ranges real Chinese/English documents are made of.

    Counted with a regex, not a loop: binary files that pass as UTF-8 now reach the
    UTF-16 check too, and a per-character loop costs seconds on a large one.
    """
    common = len(text) - len(_COMMON_CHAR.sub("", text))
    return common / max(len(text), 1)


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 without a BOM: accept it only if it decodes to overwhelmingly ordinary text."""
    if len(data) < 4 or len(data) % 2:
        return None
    for enc in ("utf-16-le", "utf-16-be"):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if _plausible_share(text) >= 0.95:
            return text
    return None


def _surely_utf8(data: bytes) -> bool:
    """Valid UTF-8 with many non-ASCII characters is UTF-8 whatever a page declares:
    GBK or Big5 bytes pass as UTF-8 only by chance, and only for a few characters."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    return non_ascii >= _UTF8_EVIDENCE


def _decode_declared(data: bytes, declared: str) -> tuple[str, str] | None:
    """Decode as the encoding the file itself declares (an HTML ``<meta charset>``).

    A short page gives detection too little to go on ("通知" in GBK is also valid UTF-8),
    while the declaration is what the page's own browser used. A wrong or unknown
    declaration (bytes that do not decode) falls back to detection.
    """
    encoding = _SUPERSETS.get(declared.lower(), declared.lower())
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    return (text, encoding) if _looks_like_text(text) else None


def decode_bytes(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Return ``(text, encoding)``; raise DecodeError for binary or undecodable data.

    ``declared`` is an encoding named inside the file; only a byte-order mark or
    unmistakable UTF-8 overrides it.
    """
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError as exc:
                raise DecodeError(f"starts with a {enc} byte-order mark but is not valid {enc}") from exc
    if declared and not _surely_utf8(data) and (found := _decode_declared(data, declared)) is not None:
        return found
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _looks_like_text(text):
        return text, "utf-8"
    # Only now refuse control bytes: ASCII in BOM-less UTF-16 is valid UTF-8 full of NULs.
    text16 = _utf16_without_bom(data)
    if text16 is not None:
        return text16, "utf-16"
    if text is not None:
        raise DecodeError("binary content (control bytes) in a text file")
    if b"\x00" in data:
        raise DecodeError("binary content (NUL bytes) in a text file")
    best = from_bytes(data).best()
    if best is None:
        raise DecodeError("not decodable as text in any known encoding")
    encoding = _SUPERSETS.get(best.encoding.lower(), best.encoding)
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text = str(best)
    if not _looks_like_text(text) or _plausible_share(text) < _MIN_GUESSED_SHARE:
        raise DecodeError(f"decodes as {encoding} only to garbage; is it binary?")
    return text, encoding
