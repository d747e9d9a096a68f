"""The guard against false semantic hits: two prompts may share an answer only if their facts match.

Embedders score "convert 100 USD to EUR" and "convert 100 EUR to USD" as nearly identical. The guard
reads from each prompt what an embedder blurs, and a semantic hit needs all of it to be equal:

- **numbers** (digits, with thousands separators removed, and number words up to twenty), in order,
  with the arithmetic operators between them;
- **units** (``km``, ``miles``, ``°C``, ``%``…) and **currencies** (``$``, ``USD``, ``dollars``… as one
  code), each in order;
- **quoted strings**, **code spans** (backticks) and code-like tokens (``snake_case``, ``camelCase``,
  ``f(x)``, ``a.b``), **URLs** and e-mail addresses, exactly;
- **named entities**: capitalized words and acronyms (except a sentence's first word when it is a
  common word), case-folded, in order;
- **polar words** whose opposite an embedder confuses (before/after, min/max, increase/decrease,
  today/tomorrow…), in order;
- **negation**: how many negations (not, never, no, ``n't``…);
- **language** and **script**: stop words of eight languages and the Unicode scripts used.

:func:`signature` is the tuple of all of them; the guard passes when two signatures are equal. The
semantic index is partitioned by it, so a lookup only meets candidates the guard would pass.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

__all__ = ["Signature", "guard", "signature", "signature_key"]

Signature = tuple[tuple[str, ...], ...]


def _words(text: str) -> list[str]:
    return text.split()


_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    _words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty "
))}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80",
                      "ninety": "90", "hundred": "100", "thousand": "1000", "million": "1e6", "billion": "1e9",
                      "trillion": "1e12", "dozen": "12", "half": "0.5", "twice": "2", "once": "1", "double": "2",
                      "triple": "3", "first": "#1", "second": "#2", "third": "#3", "fourth": "#4", "fifth": "#5",
                      "tenth": "#10"})

_CURRENCIES = {
    "$": "USD", "usd": "USD", "dollar": "USD", "dollars": "USD", "us$": "USD", "bucks": "USD",
    "€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR",
    "£": "GBP", "gbp": "GBP", "sterling": "GBP", "quid": "GBP",
    "¥": "JPY", "jpy": "JPY", "yen": "JPY", "cny": "CNY", "yuan": "CNY", "rmb": "CNY", "renminbi": "CNY",
    "chf": "CHF", "franc": "CHF", "francs": "CHF", "cad": "CAD", "aud": "AUD", "inr": "INR", "rupee": "INR",
    "rupees": "INR", "₹": "INR", "krw": "KRW", "won": "KRW", "₩": "KRW", "rub": "RUB", "ruble": "RUB",
    "rubles": "RUB", "₽": "RUB", "sek": "SEK", "nok": "NOK", "dkk": "DKK", "krona": "SEK", "krone": "NOK",
    "mxn": "MXN", "peso": "MXN", "pesos": "MXN", "brl": "BRL", "real": "BRL", "reais": "BRL", "btc": "BTC",
    "bitcoin": "BTC", "bitcoins": "BTC", "eth": "ETH", "ether": "ETH", "ethereum": "ETH", "pln": "PLN",
    "zloty": "PLN", "try": "TRY_", "lira": "TRY", "hkd": "HKD", "sgd": "SGD", "nzd": "NZD", "zar": "ZAR",
    "rand": "ZAR",
}
_CURRENCIES.pop("try")  # the English verb

_UNITS = {
    "km": "km", "kms": "km", "kilometer": "km", "kilometers": "km", "kilometre": "km", "kilometres": "km",
    "mile": "mi", "miles": "mi", "mi": "mi", "m": "m", "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "cm": "cm", "centimeter": "cm", "centimeters": "cm", "centimetre": "cm", "centimetres": "cm", "mm": "mm",
    "millimeter": "mm", "millimeters": "mm", "ft": "ft", "foot": "ft", "feet": "ft", "inch": "in",
    "inches": "in", "yd": "yd", "yard": "yd", "yards": "yd", "kg": "kg", "kilogram": "kg", "kilograms": "kg",
    "kilo": "kg", "kilos": "kg", "g": "g", "gram": "g", "grams": "g", "mg": "mg", "milligram": "mg",
    "milligrams": "mg", "lb": "lb", "lbs": "lb", "pound": "lb", "pounds": "lb", "oz": "oz", "ounce": "oz",
    "ounces": "oz", "ton": "t", "tons": "t", "tonne": "t", "tonnes": "t", "t": "t", "l": "l", "liter": "l",
    "liters": "l", "litre": "l", "litres": "l", "ml": "ml", "milliliter": "ml", "milliliters": "ml",
    "gallon": "gal", "gallons": "gal", "gal": "gal", "cup": "cup", "cups": "cup", "tbsp": "tbsp",
    "tablespoon": "tbsp", "tablespoons": "tbsp", "tsp": "tsp", "teaspoon": "tsp", "teaspoons": "tsp",
    "celsius": "C", "°c": "C", "c": "C", "centigrade": "C", "fahrenheit": "F", "°f": "F", "f": "F",
    "kelvin": "K", "k": "K", "%": "%", "percent": "%", "percentage": "%", "mph": "mph", "kmh": "kmh",
    "km/h": "kmh", "kph": "kmh", "s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "min", "mins": "min", "minute": "min", "minutes": "min", "h": "h", "hr": "h", "hrs": "h",
    "hour": "h", "hours": "h", "day": "d", "days": "d", "week": "wk", "weeks": "wk", "month": "mo",
    "months": "mo", "year": "yr", "years": "yr", "yr": "yr", "yrs": "yr", "decade": "dec", "decades": "dec",
    "century": "cent", "centuries": "cent", "kb": "KB", "mb": "MB", "gb": "GB", "tb": "TB", "kib": "KiB",
    "mib": "MiB", "gib": "GiB", "byte": "B", "bytes": "B", "bit": "bit", "bits": "bit", "kw": "kW",
    "kwh": "kWh", "w": "W", "watt": "W", "watts": "W", "v": "V", "volt": "V", "volts": "V", "hz": "Hz",
    "mhz": "MHz", "ghz": "GHz", "calorie": "kcal", "calories": "kcal", "kcal": "kcal", "acre": "acre",
    "acres": "acre", "hectare": "ha", "hectares": "ha", "degree": "deg", "degrees": "deg", "°": "deg",
    "psi": "psi", "bar": "bar", "knot": "kn", "knots": "kn",
}
_SHORT_UNITS = {k for k in _UNITS if len(k) <= 2 or k in ("min", "sec", "day", "bar")}
"""Unit words that are also ordinary words or letters: units only right after a number."""

_POLAR = {w: w for w in _words(
    "before after above below over under more less fewer most least larger smaller largest smallest "
    "bigger biggest higher highest lower lowest longer longest shorter shortest faster fastest slower "
    "slowest older oldest younger youngest newer newest earlier earliest later latest first last next "
    "previous increase decrease increasing decreasing add remove insert delete buy sell import export "
    "encode decode encrypt decrypt compress decompress serialize deserialize upload download push pull "
    "min max minimum maximum best worst better worse good bad pros cons advantages disadvantages benefits "
    "risks north south east west northern southern eastern western up down left right inside outside male "
    "female men women boys girls ascending descending true false yes today tomorrow yesterday tonight "
    "morning evening night am pm start end begin finish open close enable disable allow deny accept "
    "reject win lose gain loss profit cheap expensive cheapest hot cold warm cool hotter colder hottest "
    "coldest warmest coolest summer "
    "winter spring autumn fall monday tuesday wednesday thursday friday saturday sunday weekday weekend "
    "past future present singular plural vs versus xor without plus minus times divided multiplied "
    "squared cubed sum difference product quotient average mean median mode sqrt root log sin cos tan "
    "integral derivative odd even prime positive negative horizontal vertical uppercase lowercase "
)}

_NEGATIONS = frozenset(
    _words(
    "not no never none nobody nothing nowhere neither nor cannot without nicht kein keine keinen nie ne "
    "pas jamais aucun sans nunca nada ningún ninguna sin non mai niente senza niet geen nooit zonder não "
    "nem nenhum "
))

_STOPWORDS = {
    "en": _words(
    "the is are what how why who which where when of and to in for with does do can you your my this that "
    "it be was were will would should could i me please tell "
),
    "de": _words(
    "der die das ist sind was wie warum wer welche wo wann und zu mit für ein eine ich du sie es nicht "
    "bitte mir kannst können ist auf den dem des "
),
    "fr": _words(
    "le la les est sont que qui quoi comment pourquoi où quand et pour avec un une je tu vous il elle des "
    "du de au aux est-ce ce cette mon ton votre s'il "
),
    "es": _words(
    "el la los las es son qué que cómo por quién dónde cuándo y para con un una yo tú usted de del al mi "
    "tu su cuál cuánto está "
),
    "it": _words(
    "il lo la gli le è sono che cosa come perché chi dove quando e per con un una io tu lei di del della "
    "mi ti ci qual quanto "
),
    "pt": _words(
    "o a os as é são que como por quem onde quando e para com um uma eu você ele ela de do da no na meu "
    "minha qual quanto está "
),
    "nl": _words(
    "de het een is zijn wat hoe waarom wie welke waar wanneer en voor met ik jij u hij zij van dat mijn "
    "je kun kunt "
),
    "sv": _words(
    "och är vad hur varför vem vilken var när att för med en ett jag du han hon det som på av "
),
}

_ENGLISH_TOO = frozenset({"a", "o", "in", "do", "no", "is", "die", "me", "son", "van", "per", "con", "la", "e", "i"})
for _language, _words_of in _STOPWORDS.items():
    if _language != "en":
        _STOPWORDS[_language] = [w for w in _words_of if w not in _ENGLISH_TOO]
"""Words that are also English ones do not vote for another language (a prompt with no stop word is English)."""

_COMMON_FIRST = frozenset(
    _words(
    "what how why who which where when whom whose is are was were do does did can could would should will "
    "shall may might must please tell give write explain list describe show summarize summarise translate "
    "convert make create find help compare define calculate compute name suggest recommend generate i my "
    "the a an in on at for to from of by with if is are it this that these those there here hi hello hey "
    "could let i'm i've im we you your our any some be have has had get got go and or but so yes no not "
    "also just now then why whats what's how's hows who's where's when's which one two three four five "
))

_QUOTED = re.compile(r'"([^"\n]{1,200})"|“([^”\n]{1,200})”|\u2018([^\u2019\n]{1,200})\u2019|«([^»\n]{1,200})»|'
                     r"(?<![\w])'([^'\n]{1,200})'(?![\w])")
_CODE = re.compile(r"```(.*?)```|`([^`\n]+)`", re.S)
_URL = re.compile(r"(?:https?://|ftp://|www\.)[^\s<>\"')\]]+|[\w.+-]+@[\w-]+\.[\w.-]+", re.I)
_TOKEN = re.compile(r"[€$£¥₹₩₽]|°[cCfF]?|%|\d+(?:[.,]\d+)*|[^\W\d_]+(?:['\u2019][^\W\d_]+)?|[\w]+|[+\-*/^=<>\u00d7÷]", re.U)
_CODEISH = re.compile(r"^(?=.*[A-Za-z])[A-Za-z_][\w]*(?:[.][A-Za-z_]\w*)+$|^\w*_\w+$|^[a-z]+[A-Z]\w*$|^\w+\(.*\)$")
_WORDISH = re.compile(r"\S+")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*)$")


def _script(char: str) -> str | None:
    if char.isascii() or not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    for script in ("LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "DEVANAGARI", "HANGUL", "HIRAGANA",
                   "KATAKANA", "CJK", "THAI", "BENGALI", "TAMIL", "GEORGIAN", "ARMENIAN", "ETHIOPIC"):
        if name.startswith(script):
            return script
    return "OTHER"


def signature(text: str) -> Signature:
    """Everything of ``text`` that must be equal for two prompts to share an answer (see the module doc)."""
    quoted: list[str] = []
    code: list[str] = []
    urls = [u.rstrip(".,;:!?").lower() for u in _URL.findall(text)]
    rest = _URL.sub(" ", text)
    for match in _CODE.finditer(rest):
        code.append(" ".join((match.group(1) or match.group(2) or "").split()))
    rest = _CODE.sub(" ", rest)
    for match in _QUOTED.finditer(rest):
        quoted.append(" ".join(next(g for g in match.groups() if g is not None).split()).lower())
    rest = _QUOTED.sub(" ", rest)
    for word in _WORDISH.findall(rest):
        stripped = word.strip(".,;:!?\"'()[]{}")
        if _CODEISH.match(stripped):
            code.append(stripped)
    numbers: list[str] = []
    units: list[str] = []
    currencies: list[str] = []
    entities: list[str] = []
    polar: list[str] = []
    negations = 0
    votes = dict.fromkeys(_STOPWORDS, 0)
    previous_number = False
    for match in _TOKEN.finditer(rest):
        token = match.group()
        lower = token.lower()
        if lower in _CURRENCIES and (lower not in ("real", "won", "rand", "franc", "ether", "peso") or previous_number):
            currencies.append(_CURRENCIES[lower])
            previous_number = False
            continue
        if token[0].isdigit():
            numbers.append(token.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", token) else token)
            previous_number = True
            continue
        if token in "+-*/^=<>\u00d7÷" and len(token) == 1:
            if numbers:
                numbers.append(token)
            continue
        if lower in _UNITS and (previous_number or lower not in _SHORT_UNITS):
            units.append(_UNITS[lower])
            previous_number = False
            continue
        previous_number = False
        if lower in _NUMBER_WORDS:
            numbers.append(_NUMBER_WORDS[lower])
            continue
        if lower in _NEGATIONS or lower.endswith(("n't", "n\u2019t")):
            negations += 1
        if lower in _POLAR:
            polar.append(lower)
        for language, words in _STOPWORDS.items():
            if lower in words:
                votes[language] += 1
        if token[0].isupper() or (len(token) > 1 and token.isupper()):
            at_start = _SENTENCE_START.search(rest, 0, match.start()) is not None
            if not (at_start and lower in _COMMON_FIRST) and lower not in _NEGATIONS and lower not in ("i", "i'm"):
                entities.append(lower)
    best = max(votes.values())
    language = "en" if votes["en"] == best else next(k for k, v in votes.items() if v == best)
    scripts = sorted({s for s in map(_script, text) if s is not None and s != "LATIN"})
    return (tuple(numbers), tuple(units), tuple(currencies), tuple(quoted), tuple(code), tuple(urls),
            tuple(entities), tuple(polar), (str(negations),), (language,), tuple(scripts))


def guard(a: str, b: str) -> bool:
    """Whether prompts ``a`` and ``b`` may share an answer as far as their facts go."""
    return signature(a) == signature(b)


def signature_key(sig: Signature) -> str:
    """A short stable name of a signature (part of the semantic index's scope)."""
    return hashlib.blake2b(repr(sig).encode(), digest_size=10).hexdigest()
