"""Turning the bytes of a text file into str, whatever its encoding.

Government documents arrive as UTF-8, GB18030/GBK, Big5 or UTF-16, often without a
declaration. We trust byte-order marks and strict UTF-8 first (they are unambiguous),
then ask charset-normalizer, and refuse bytes that decode only to garbage so a binary
file with a ``.txt`` name is reported instead of indexed.
"""

from __future__ import annotations

import codecs
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


class DecodeError(ValueError):
    """The bytes are not text in any encoding we can recognise."""


def _looks_like_text(text: str) -> bool:
    if not text:
        return True
    bad = sum(1 for ch in text if ch == "\ufffd" or (unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f"))
    return bad / len(text) <= _MAX_BAD_SHARE


def _plausible_share(text: str) -> float:
    """Share of characters from the ranges real Chinese/English documents are made of."""
    common = sum(
        1
        for ch in text
        if ch in "\n\r\t" or " " <= ch <= "~" or "\u4e00" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f"
        or "\uff00" <= ch <= "\uffef" or "\u2000" <= ch <= "\u206f"
    )
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


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Return ``(text, encoding)``; raise DecodeError for binary or undecodable data."""
    for bom, enc in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError as exc:
                raise DecodeError(f"starts with a {enc} byte-order mark but is not valid {enc}") from exc
    try:
        text = data.decode("utf-8")
        if _looks_like_text(text):
            return text, "utf-8"
        raise DecodeError("binary content (control bytes) in a text file")
    except UnicodeDecodeError:
        pass
    text16 = _utf16_without_bom(data)
    if text16 is not None:
        return text16, "utf-16"
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
    if not _looks_like_text(text):
        raise DecodeError(f"decodes as {encoding} only to garbage; is it binary?")
    return text, encoding
