"""Ask cues: does the instruction use a verb or phrase that names a task, in any of eight languages?

One pattern per kind of ask (summarize, classify, extract, translate, code, math, creative, greeting,
question), written by hand for English, German, French, Spanish, Portuguese, Italian, Japanese and
Chinese. :func:`cue_vector` tests them on the prompt's *ask lines* (its first and last non-empty line,
where the instruction sits; pasted material in between is not looked at) and returns one 0/1 feature per
pattern. They are features, not rules: the head learns how much each one counts, together with the rest.
They carry knowledge that few examples can teach, such as "要約" and "riassumi" meaning the same. The
commonest misspellings of the English verbs ("sumarize", "summerize", "clasify", "extact") count too.
"""

from __future__ import annotations

import re

import numpy as np
import numpy.typing as npt

__all__ = ["CUES", "ask_lines", "cue_vector"]

CUES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(pattern)) for name, pattern in (
    ("summarize",
     r"summar|\bsu+m+[ae]ri[sz]|\bsum+ary|\btl;? ?dr|\bgist\b|key (?:points|takeaways)|main (?:points|ideas)|"
     r"\brecap|\bcondense|boil (?:it |this )?down|"
     r"in a nutshell|short version|\bbriefly\b|\boverview\b|zusammenfass|fass\w* .{0,40}zusammen|kernaussage|"
     r"wichtigsten? (?:punkte|aussagen|infos)|das wichtigste|kurzfassung|\bkurz und knapp|\br[eé]s[uú]m|l'essentiel|"
     r"points? (?:clés|essentiels|principaux|importants)|en bref|synth[èé]s|ideas? (?:principales|clave)|"
     r"puntos? (?:clave|principales)|lo esencial|lo más importante|pontos? (?:principais|chave)|o essencial|"
     r"\briassum|sintesi|sintetizz|punti (?:chiave|principali|salienti)|in breve|要約|まとめ|あらすじ|要点|概要|かいつまんで|"
     r"总结|總結|概括|摘要|归纳|歸納|大意|简述|簡述|简要说明|主要内容"),
    ("classify",
     r"clas+if|categori[sz]|\bcategor(?:y|ies)\b|\blabel(?:s|l?ed)?\b|\btag (?:each|these|them|it)|sentiment|"
     r"positive(?:,| or) (?:negative|neutral)|which (?:category|type|bucket|class|genre)|\bspam\b|\bsort (?:these|them|each)|"
     r"group (?:these|them) (?:by|into)|\bbucket|is (?:this|it) (?:a |an )?(?:positive|negative|urgent|complaint|question)|"
     r"klassifizier|kategorisier|einordnen|ordne\w* .{0,30}zu\b|zuordnen|kategorie|stimmung|positiv oder negativ|"
     r"\bclass(?:er|e|ez)\b|catégor|étiquet|positif ou négatif|clasific|categoriz|etiquet|sentimiento|positivo o negativo|"
     r"classifi|rotul|categorizz|etichett|positivo o negativo|tipo di|分類|分类|カテゴリ|ラベル|仕分け|ポジティブ|ネガティブ|"
     r"类别|類別|归类|歸類|情感|情绪|正面|负面|积极还是消极|属于哪|どの種類|どれに当て"),
    ("extract",
     r"extract|\bextr?ac?t|pull (?:out|the)|\blist (?:all|every|the|each|only)|find (?:all|every|the)|(?:as|in|into|en|em) json|"
     r"just the (?:\w+ )?(?:values?|names?|dates?|numbers?|emails?|addresses|fields?)|only the|which (?:dates|names|numbers)|"
     r"\bget (?:me )?(?:all|every|the) \w+ (?:from|in|out)|extrahier|herausziehen|herausschreiben|\bzieh\w* .{0,30}raus|"
     r"auflisten|nur die|als json|\bextrai|relève|\bliste (?:les|tous|toutes|moi)|uniquement les|\bextrae|\bsaca\b|"
     r"enumera|solo (?:los|las) |\bextraia|\btire (?:os|as|todos)|liste (?:apenas|só|todos|todas)|só (?:os|as) |\bestrai|"
     r"\belenca|solo (?:i|gli|le) |抽出|抜き出|取り出|リストアップ|書き出して|提取|抽取|列出|找出|挑出|摘出"),
    ("translate",
     r"translat|übersetz|uebersetz|\btradu|\bperev|in (?:english|german|french|spanish|japanese|chinese)\b|"
     r"翻訳|訳して|に訳|翻译|翻譯|译成|譯成|怎么说|怎麼說|で何と言"),
    ("code",
     r"\bcode\b|\bcoding|function|\bscript|\bbug|\bdebug|\bfix\b|\berror|exception|\bregex|\bsql\b|python|javascript|"
     r"typescript|\bjava\b|\bc\+\+|\brust\b|\bgolang|\bcompile|refactor|unit tests?|\bapi\b|\bgit\b|docker|\bclass\b|"
     r"funktion|fehler|código|codice|erreur|fonction|função|funzione|コード|関数|バグ|エラー|プログラム|代码|代碼|函数|报错|錯誤|错误|程序"),
    ("math",
     r"\bsolve|calculat|\d\s*%|\bcompute|how (?:much|many|long)|equation|integral|derivative|\bprove|probabilit|percent|"
     r"\d\s*[-+*/\u00d7÷^=]\s*\d|\bberechne|\blös|\brechne|wie viel|\bcalcul|résous|combien|\bresuelve|cuánt|\bresolva|"
     r"\bquant[oia]|\bcalcol|\brisolv|計算|解いて|解きなさい|求め|いくつ|何人|何円|计算|計算|求解|解方程|多少|几"),
    ("create",
     r"\bpoem|\bstory|lyrics|\bsong\b|haiku|limerick|\btoast\b|slogan|tagline|\bjoke|name ideas|\bwrite (?:a|me a|an) "
     r"(?:poem|story|song|rap|speech|letter)|gedicht|geschichte|\breim|\bwitz|poème|histoire|chanson|blague|poema|cuento|"
     r"canción|chiste|\bconto\b|poesia|piada|racconto|canzone|barzelletta|詩|物語|俳句|小説|短歌|キャッチコピー|诗|故事|歌词|口号|笑话|段子"),
    ("greet",
     r"^(?:hi|hello|hey|thanks|thank you|thx|lol|haha|good (?:morning|night)|how are you|bye)\b|\bdanke|\bhallo\b|wie geht|"
     r"\bmerci\b|\bsalut\b|ça va|\bgracias\b|\bhola\b|qué tal|obrigad|tudo bem|\bgrazie\b|come stai|ありがとう|こんにちは|"
     r"おはよう|元気|谢谢|謝謝|你好|哈哈|早上好|晚安"),
    ("question",
     r"^(?:what|who|why|when|where|which|how|is|are|does|do|can|should)\b|\?$|\uff1f$|\bwas ist|\bwarum|\bwieso|\bwer\b|"
     r"qu'est-ce|pourquoi|\bqué es|\bpor qué|\bo que é|\bpor que|\bcos'è|\bperché|"
     r"とは|なぜ|どうして|ですか|什么是|为什么|為什麼|吗|嗎"),
))


def ask_lines(text: str, cap: int = 200) -> str:
    """The first and the last non-empty line (each cut to ``cap`` characters); one line if there is only one."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    if len(lines) == 1:
        return lines[0][:cap]
    return f"{lines[0][:cap]}\n{lines[-1][-cap:]}"


def cue_vector(lines: str) -> npt.NDArray[np.float32]:
    """One 0/1 per entry of :data:`CUES`: does that pattern occur in ``lines`` (lower case, one ask line per
    text line)? About 0.2 ms for two lines of 200 characters."""
    parts = lines.splitlines() or [""]
    return np.array([any(p.search(part) for part in parts) for _, p in CUES], dtype=np.float32)
