"""Is there an explicit ask to translate? Language is never the task: a Spanish question is not a translation.

The classifier may pick ``translation`` only when :func:`asks_translation` finds an ask in the prompt's
instruction zones (its first and last ``window`` characters, where asks are; pasted material in the middle
does not count): a form of "translate" in English, German, French, Spanish, Portuguese, Italian,
Japanese or Chinese, "how do you say ... in <language>", "... in English?", "into German", "English to Chinese",
"auf Italienisch: ...", "English please" (English, German, French, Spanish, Portuguese, Italian names of languages).
"""

from __future__ import annotations

import re

__all__ = ["asks_translation"]

_LANGUAGES = (
    r"english|german|french|spanish|portuguese|italian|japanese|chinese|korean|russian|dutch|polish|arabic|"
    r"englisch|deutsch|französisch|spanisch|portugiesisch|italienisch|japanisch|chinesisch|"
    r"anglais|allemand|français|espagnol|portugais|italien|japonais|chinois|"
    r"inglés|alemán|francés|español|portugués|italiano|japonés|chino|"
    r"inglês|alemão|francês|espanhol|português|japonês|chinês|"
    r"inglese|tedesco|francese|spagnolo|portoghese|giapponese|cinese|greek|griechisch|grec|griego|grego|greco|turkish|swedish|hindi"
)
_ASK = re.compile(
    r"\btranslat|\bübersetz|\buebersetz|\btrad[uú][cisçzíúz]?|\bперев[оеи]д|\bvertaal|"  # noqa: RUF001 (Russian)
    r"\bhow (?:do|would|can) (?:you|i|we) say\b|\bwhat(?:'s| is) the (?:\w+ )?(?:word|term) for\b|"
    r"\bwie sagt man\b|\bwas heißt\b.*\b(?:auf|in) (?:" + _LANGUAGES + r")|"
    r"\bcomment (?:dit-on|on dit|dire)\b|\bc[oó]mo se (?:dice|diz)\b|\bcome si dice\b|"
    r"\b(?:in|into|to|auf|ins|en|em|para o|pro|al|in) (?:" + _LANGUAGES + r")\b\s*[?？]|"  # noqa: RUF001 (full-width ?)
    r"翻訳|訳して|訳す|に訳|で何と言|でなんと言|翻译|翻譯|译成|譯成|译为|怎么说|怎麼說|用(?:英|日|中|法|德)语",
    re.IGNORECASE,
)
_TARGET = re.compile(
    r"\b(?:into|in) (?:plain )?(?:" + _LANGUAGES + r")\b|"
    r"\b(?:auf|ins|en|em|al|in|into|to) (?:" + _LANGUAGES + r")\s*[:\uff1a]|"
    r"\b(?:" + _LANGUAGES + r")(?: to (?:" + _LANGUAGES + r")| please\b| versions?\b)|"
    r"(?:英語|日本語|中国語|フランス語|ドイツ語)にして", re.IGNORECASE)


def asks_translation(text: str, window: int = 300) -> bool:
    """True when the start or the end of ``text`` asks for a translation (see the module docstring)."""
    zone = text if len(text) <= 2 * window else f"{text[:window]}\n{text[-window:]}"
    return _ASK.search(zone) is not None or _TARGET.search(zone) is not None
