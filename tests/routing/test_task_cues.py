"""The ask cues of the task router's features: the instruction's verb in eight languages, not the material's."""

from __future__ import annotations

import numpy as np
import pytest

from stellwerk.routing.task.cues import CUES, ask_lines, cue_vector

NAMES = tuple(name for name, _ in CUES)


def cues(text: str) -> set[str]:
    return {name for name, on in zip(NAMES, cue_vector(ask_lines(text.lower())), strict=True) if on}


@pytest.mark.parametrize(("prompt", "cue"), [
    ("Summarize this in two lines", "summarize"), ("pls sumarize", "summarize"), ("summerize it", "summarize"),
    ("clasify these", "classify"), ("extact the names", "extract"), ("Fass das bitte kurz zusammen", "summarize"),
    ("Résume ce texte", "summarize"), ("Resúmelo en una línea", "summarize"), ("Riassumi in breve", "summarize"),
    ("これを要約して", "summarize"), ("帮我总结一下", "summarize"), ("tl;dr?", "summarize"),
    ("Classify these tickets", "classify"), ("Ist diese Bewertung positiv oder negativ?", "classify"),
    ("Clasifica cada elemento", "classify"), ("次の項目を分類して", "classify"), ("这条评价是正面还是负面", "classify"),
    ("Extract the dates", "extract"), ("Extrahiere alle Beträge", "extract"), ("Extraia os valores", "extract"),
    ("日付を抜き出して", "extract"), ("提取用户名", "extract"), ("as JSON please", "extract"),
    ("Translate to German", "translate"), ("übersetz das", "translate"), ("翻译成英文", "translate"),
    ("write a short poem about rain", "create"), ("写一首诗", "create"),
    ("what's 15% of 240", "math"), ("解方程 3x - 5 = 16", "math"),
    ("pls fix this code", "code"), ("这个报错怎么解决", "code"),
    ("thanks, that worked", "greet"), ("谢谢", "greet"), ("Why is the sky blue?", "question"),
])
def test_an_ask_sets_its_cue(prompt: str, cue: str) -> None:
    assert cue in cues(prompt)


def test_only_the_first_and_last_line_count() -> None:
    assert ask_lines("  \nSummarize:\nmiddle\nmore middle\n\nthanks\n") == "Summarize:\nthanks"
    assert ask_lines("one line only") == "one line only" and ask_lines(" \n ") == ""
    assert ask_lines("x" * 500).startswith("x" * 200) and len(ask_lines("a\n" + "y" * 500)) == 202
    pasted = "Please review:\nWe should summarize, classify and translate all of it.\nok?"
    assert cues(pasted) == {"question"}


def test_the_vector_has_one_entry_per_cue() -> None:
    vector = cue_vector("")
    assert vector.shape == (len(CUES),) and vector.dtype == np.float32 and not vector.any()
