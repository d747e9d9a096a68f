"""Build the task router's training examples and its held-out evaluation set from the templates
(templates.yaml and templates_more.yaml, merged).

    .venv/bin/python bench/classifier/make_sets.py [--out DIR]

Writes ``train.jsonl`` and ``heldout.jsonl`` (one ``{"prompt", "label", "lang", "group", "multiline"}``
per line). ``train.jsonl`` = the built-in route examples (``default_routes.yaml``) + the training half of
the templates; ``heldout.jsonl`` = the held-out half + the project's hand-written ``eval_set.jsonl``
(337 English prompts, never used for training). The split is by *template*: a template (one phrasing of
an ask) and every prompt made from it land on one side only. Pasted material is split too: of each kind's
list, even positions train and odd ones are held out. So no held-out prompt shares its wording or its
pasted piece with a training prompt (one news story is pasted in eight languages, four versions on each
side: translations of one text, not the same text). Standalone templates give the prompt as written plus one
noisy variant (lower case without final punctuation, or a greeting in front); templates with
material are filled with up to ``FILLS`` different pieces. Deterministic (seeded).

``templates_train*.yaml`` (issue 18, session 5) only ever train: their prompts are filled from the training
half of materials.yaml plus ``materials_train.yaml``, and half of them get one typo (two letters swapped).
They are made after the split of the other files, with a random generator of their own, so that
``heldout.jsonl`` stays exactly what it was.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
BUILTIN = HERE.parents[1] / "src" / "stellwerk" / "routing" / "task" / "default_routes.yaml"
HELDOUT_SHARE = 0.5
FILLS = 5
SEED = 1804
"""The third split (see RESULTS.md, "Task router": the first, seed 18, had only templates.yaml; the second
split the pasted material into first and second halves)."""
SLOT = re.compile(r"\{(code|text|email|review|log|problem|items)\}")
GREETING = {"en": "hi, ", "de": "Hallo, ", "fr": "Bonjour, ", "es": "Hola, ", "pt": "Oi, ", "it": "Ciao, ",
            "ja": "すみません、", "zh": "你好，"}  # noqa: RUF001


def variants(template: str, lang: str, pool: dict[str, list[str]], rng: random.Random) -> list[str]:
    slots = SLOT.findall(template)
    if not slots:
        plain = template.rstrip(".?!。？！ ")  # noqa: RUF001
        noisy = plain.lower() if lang not in ("ja", "zh") and rng.random() < 0.5 else GREETING[lang] + template
        return [template, noisy]
    kind = slots[0]
    choices = rng.sample(pool[kind], min(FILLS, len(pool[kind])))
    return [SLOT.sub(lambda _m, c=c: c.rstrip("\n"), template) for c in choices]


def typo(text: str, rng: random.Random) -> str:
    """``text`` with two neighbouring letters of one longer Latin-script word of its first or last line swapped."""
    lines = text.split("\n")
    ends = sorted({0, max(i for i, line in enumerate(lines) if line.strip() or i == 0)})
    words = [(n, m) for n in ends for m in re.finditer(r"[a-zA-Zà-ÿ]{5,}", lines[n])]
    if not words:
        return text
    n, word = rng.choice(words)
    i = rng.randrange(word.start() + 1, word.end() - 2)
    line = lines[n]
    lines[n] = line[:i] + line[i + 1] + line[i] + line[i + 2 :]
    return "\n".join(lines)


def row(prompt: str, label: str, lang: str, group: str) -> dict[str, object]:
    return {"prompt": prompt, "label": label, "lang": lang, "group": group, "multiline": "\n" in prompt.strip()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=HERE)
    out = parser.parse_args().out
    rng = random.Random(SEED)
    templates = yaml.safe_load((HERE / "templates.yaml").read_text(encoding="utf-8"))
    more = yaml.safe_load((HERE / "templates_more.yaml").read_text(encoding="utf-8"))
    for label, by_lang in more.items():
        for lang, items in by_lang.items():
            templates[label][lang] += items
    materials = yaml.safe_load((HERE / "materials.yaml").read_text(encoding="utf-8"))
    pools = {
        "train": {k: v[0::2] for k, v in materials.items()},
        "heldout": {k: v[1::2] for k, v in materials.items()},
    }
    rows: dict[str, list[dict[str, object]]] = {"train": [], "heldout": []}
    for label, by_lang in templates.items():
        for lang, items in by_lang.items():
            order = list(range(len(items)))
            rng.shuffle(order)
            cut = round(len(items) * HELDOUT_SHARE)
            for rank, index in enumerate(order):
                split = "heldout" if rank < cut else "train"
                group = f"{label}/{lang}/{index}"
                for prompt in variants(items[index], lang, pools[split], rng):
                    rows[split].append(row(prompt, label, lang, group))
    extra_rng = random.Random(SEED + 1)
    extra_materials = yaml.safe_load((HERE / "materials_train.yaml").read_text(encoding="utf-8"))
    extra_pool = {k: v + extra_materials.get(k, []) for k, v in pools["train"].items()}
    for path in sorted(HERE.glob("templates_train*.yaml")):
        for label, by_lang in yaml.safe_load(path.read_text(encoding="utf-8")).items():
            for lang, items in by_lang.items():
                for index, template in enumerate(items):
                    for prompt in variants(template, lang, extra_pool, extra_rng):
                        noisy = typo(prompt, extra_rng) if extra_rng.random() < 0.5 else prompt
                        rows["train"].append(row(noisy, label, lang, f"{path.stem}/{label}/{lang}/{index}"))
    for label, examples in yaml.safe_load(BUILTIN.read_text(encoding="utf-8")).items():
        rows["train"] += [row(e, label, "en", f"builtin/{label}/{i}") for i, e in enumerate(examples)]
    with (HERE / "eval_set.jsonl").open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            item = json.loads(line)
            rows["heldout"].append(row(item["text"], item["label"], "en", f"project/{i}"))
    # A template written like a prompt of the project's set must not train: drop its whole group.
    held = {str(r["prompt"]).strip().lower() for r in rows["heldout"]}
    clash = {r["group"] for r in rows["train"] if str(r["prompt"]).strip().lower() in held}
    rows["train"] = [r for r in rows["train"] if r["group"] not in clash]
    print(f"dropped from training (same text as a held-out prompt): {sorted(map(str, clash))}")
    for split, name in (("train", "train.jsonl"), ("heldout", "heldout.jsonl")):
        with (out / name).open("w", encoding="utf-8") as f:
            for item in rows[split]:
                f.write(json.dumps(item, ensure_ascii=False) + "\n")
        data = rows[split]
        non_en = sum(r["lang"] != "en" for r in data) / len(data)
        multi = sum(bool(r["multiline"]) for r in data) / len(data)
        print(f"{name}: {len(data)} prompts, {non_en:.0%} non-English, {multi:.0%} multi-line")


if __name__ == "__main__":
    main()
