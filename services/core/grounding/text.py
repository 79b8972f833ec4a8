"""Light lexical tools shared by the answerability gate and the answer verifier (no models, no I/O).

Why lexical at all beside a cross-encoder: a fitz-gov-style near miss ("the Battle of Cannae" for a question
about Zama) is on topic, so a relevance model scores it high; the missing name or number is exactly what a
word-level check sees.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers him his how i if in into is it its itself just me more most my no nor not now of off on once
    only or other our ours out over own same she should so some such than that the their theirs them then there
    these they this those through to too under until up very was we were what when where which while who whom
    why will with would you your yours yes ok per via vs versus did specific specifically currently current""".split()  # noqa: SIM905 - a word list reads best as text
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.-]*[A-Za-z0-9]|[A-Za-z0-9]")
_CITATION = re.compile(r"\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")


def stem(word: str) -> str:
    """A deliberately crude stem (plural and a few suffixes) so "tactics" matches "tactic"."""
    w = word.lower().strip(".'’-")
    for suffix in ("ies", "es", "s"):
        if len(w) > 4 and w.endswith(suffix) and not w.endswith("ss"):
            return w[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return w


def words(text: str) -> list[str]:
    return _WORD.findall(_CITATION.sub(" ", text))


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning: stopwords and [n] markers removed."""
    return {stem(w) for w in words(text) if w.lower() not in STOPWORDS and len(w) > 1 or w.isdigit()}


def specific_words(text: str) -> set[str]:
    """Names and numbers: capitalised words past the first, and anything with a digit (years, amounts)."""
    out: set[str] = set()
    for i, w in enumerate(words(text)):
        if any(ch.isdigit() for ch in w) or (i > 0 and w[0].isupper() and w.lower() not in STOPWORDS):
            out.add(stem(w))
    return out


def coverage(needles: set[str], haystack: str | set[str]) -> float:
    """Share of ``needles`` found in ``haystack`` (its content words); 1.0 when there is nothing to find."""
    if not needles:
        return 1.0
    hay = haystack if isinstance(haystack, set) else content_words(haystack) | specific_words(haystack)
    return len(needles & hay) / len(needles)


# --- checkable specifics: the numbers and names a sentence claims -----------------------------------------------
#
# Why: a cross-encoder reads "X has 10,000 parameters" as on topic for any passage about X, and word overlap
# barely notices one number among ten words. A number or a name the source does not hold is not supported,
# whatever the scores say; ``missing_claims`` says which ones those are. It is built to avoid false alarms more
# than misses (the scorer still judges everything else): see ``claims`` and ``claim_index`` for what counts.

# Spelled-out numbers a source may use for a sentence's digits ("thirty seconds" backs "30 seconds", "first" backs
# "1st", "twenty-five" backs 25, "a dozen" 12): cardinals and ordinals to nineteen, the tens, a ten and a unit.
_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
_UNITS += " seventeen eighteen nineteen"
_UNIT_ORDINALS = "zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth"
_UNIT_ORDINALS += " fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety"
_TEN_ORDINALS = "twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth"
_NUMBER_WORDS = (
    {w: n for ws in (_UNITS, _UNIT_ORDINALS) for n, w in enumerate(ws.split())}
    | {w: 20 + 10 * n for ws in (_TENS, _TEN_ORDINALS) for n, w in enumerate(ws.split())}
    | {"dozen": 12, "hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
)
_TEN_AND_UNIT = (
    rf"(?P<tens>{'|'.join(_TENS.split())})[- ](?P<unit>{'|'.join(_UNITS.split()[1:10] + _UNIT_ORDINALS.split()[1:10])})"
)
_NUMBER_WORD = re.compile(rf"\b(?:{_TEN_AND_UNIT}|(?P<word>{'|'.join(_NUMBER_WORDS)}))\b", re.IGNORECASE)
# Powers of ten of the scales a number may carry ("10k", "1.5 million", "$2bn").
_SCALES = {"k": 3, "thousand": 3, "m": 6, "mn": 6, "million": 6, "b": 9, "bn": 9, "billion": 9}
_SCALES |= {"tn": 12, "trillion": 12}
# A number: digits with optional thousands groups ("10,000", "10 000" with a no-break or thin space), optional
# ".parts" (a decimal "3.50", a version "3.11.2", a date "03.03.2021"), then an optional scale ("10k", "1.5 million").
# Digits inside words count ("sha256" claims 256, "Python3" 3, "1st" 1); a plain space never groups in a sentence
# ("at 9 100 people" is two numbers), only in a source (``claim_index``).
_NUMBER = re.compile(
    r"(?<![0-9])(?P<int>[0-9]{1,3}(?:(?P<sep>[,\u00a0\u202f\u2009])[0-9]{3}(?![0-9]))(?:(?P=sep)[0-9]{3}(?![0-9]))*"
    r"|[0-9]+)(?P<frac>(?:\.[0-9]+)*)"
    r"(?:[ \u00a0]?(?P<scale>thousand|million|billion|trillion|bn|mn|tn|[kKmMbB])(?![A-Za-z]))?"
)
_SPACE_GROUPED = re.compile(r"(?<![0-9.,])[0-9]{1,3}(?: [0-9]{3})+(?![0-9]|[.,][0-9])")
_ISO_DATE = re.compile(r"(?<![0-9])[0-9]{4}-([0-9]{1,2})-[0-9]{1,2}(?![0-9])")
_NUMERIC_DATE = re.compile(r"(?<![0-9])([0-9]{1,2})[/.]([0-9]{1,2})[/.][0-9]{2,4}(?![0-9])")
_MONTH_NAMES = "january february march april may june july august september october november december".split()  # noqa: SIM905
_MONTHS = {m: m for m in _MONTH_NAMES} | {m[:3]: m for m in _MONTH_NAMES} | {"sept": "september"}
# Lines' layout prefixes (list bullets, "1." numbering, heading marks): not part of what a sentence claims.
_LAYOUT_PREFIX = re.compile(r"^[ \t]*(?:[-*+•–]|[0-9]{1,3}[.)]|#{1,6})[ \t]+", re.MULTILINE)
# Capitalised or upper-case words that are not names: units, currency codes, honorifics.
_NOT_NAMES = frozenset(
    "pm am kg km cm mm mg ml gb mb kb tb gib mib ghz mhz khz hz usd eur gbp mr mrs ms dr prof".split()  # noqa: SIM905
    # the words an answer uses about its own sources and layout, which a model capitalises: "according to Source
    # [1]", "Based on the Context", "NOTE:", "In Summary"
    + "source sources context document documents passage passages summary note important tip warning".split()  # noqa: SIM905
    + "answer question step steps example examples tl;dr".split()  # noqa: SIM905
)
# What opens a clause, so the capital after it is grammar rather than a name: a sentence end, a colon, an opening
# quote, a bullet or table bar (markdown emphasis "**" and spaces before the word are skipped first). Brackets and
# dashes do not: "the library (Pandas)", "the firm — Acme — said".
_OPENERS = frozenset(".!?:;\"'“‘«•|\n")
# After these a period is an abbreviation's, not a sentence end: "Dr. Smith", "J. Smith", "the U.S. Army".
_TITLES = frozenset("mr mrs ms dr prof st jr sr mt no vs e.g i.e cf".split())  # noqa: SIM905
_MARKDOWN = " \t*_`~#>"
_AFTER_NUMBER = re.compile(r"[0-9][ \u00a0]?°?[ \u00a0]?$")
_CONTRACTION = re.compile(r"(?:n't|'(?:s|ll|re|ve|d|m))$", re.IGNORECASE)
_DOTTED_ACRONYM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")
_NAME_PARTS = re.compile(r"[-./]")


@dataclass(frozen=True)
class Claims:
    """The checkable specifics of a text: ``numbers`` normalised ("10,000" -> "10000", "3.50" -> "3.5", "1.5
    million" -> "1500000") and ``names`` as ``name_key`` has them ("Acme's" -> "acme", "March" -> "march")."""

    numbers: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    # Each number's readings, any of which a source may hold in full: "10M" is ten million or 10 (metres), "10 000"
    # ten thousand or 10 and 0. Without them a number is read as itself.
    readings: tuple[tuple[str, tuple[frozenset[str], ...]], ...] = field(default=(), compare=False, repr=False)

    @property
    def all(self) -> frozenset[str]:
        return self.numbers | self.names

    def __bool__(self) -> bool:
        return bool(self.numbers or self.names)


@dataclass(frozen=True)
class ClaimIndex:
    """What a source can back, read generously (misses are cheaper than false alarms): every number in every
    form it may stand for, every word as a name key (hyphenated and dotted words also by their parts)."""

    numbers: frozenset[str]
    names: frozenset[str]
    # Initials of runs of 3 to 6 words, stopwords skipped ("National Aeronautics and Space Administration" backs
    # "NASA"), and of 2 capitalised words ("Human Resources" backs "HR").
    initials: frozenset[str] = frozenset()


def _decimal(whole: str, fraction: str = "", shift: int = 0) -> str:
    """Digits as one canonical number string, the point moved ``shift`` places right: no leading zeros, no trailing
    fractional zeros ("007", "" -> "7"; "3", "50" -> "3.5"; "1", "5", 6 -> "1500000"). Exact for any length."""
    digits = whole + fraction.ljust(shift, "0")
    point = len(whole) + shift
    whole, fraction = digits[:point].lstrip("0") or "0", digits[point:].rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


def _number_readings(match: re.Match[str]) -> tuple[str, tuple[frozenset[str], ...], list[str]]:
    """A ``_NUMBER`` match as (its canonical reading, the readings a sentence may mean, the further forms a source
    holding it backs: thousands groups, a dotted number's parts and prefixes, a dot read as thousands separator)."""
    groups = re.split(r"[^0-9]", match["int"])
    parts = ["".join(groups), *match["frac"].split(".")[1:]]
    extras = [_decimal(g) for g in groups] if len(groups) > 1 else []
    if len(parts) > 2:  # a version or a dotted date: compared as a whole, backed by its parts and prefixes
        parts = [_decimal(p) for p in parts]
        base = ".".join(parts)
        return base, (frozenset({base}),), extras + parts + [".".join(parts[:n]) for n in range(2, len(parts))]
    fraction = parts[1] if len(parts) == 2 else ""
    base = _decimal(parts[0], fraction)
    if len(fraction) == 3:
        extras.append(_decimal(parts[0] + fraction))  # "10.000" in a source may be ten thousand
    if not match["scale"]:
        return base, (frozenset({base}),), extras
    scaled = _decimal(parts[0], fraction, _SCALES[match["scale"].lower()])
    return scaled, (frozenset({scaled}), frozenset({base})), extras  # "10m": ten million, or 10 metres


def name_key(word: str) -> str:
    """How a name is compared: case-insensitive, possessive and contraction off, dotted acronym undotted, month
    abbreviations spelled out, then ``stem`` ("Acme's" -> "acme", "U.S" -> "us", "Sept" -> "september")."""
    w = _CONTRACTION.sub("", word.replace("’", "'"))
    if _DOTTED_ACRONYM.fullmatch(w):
        w = w.replace(".", "")
    if len(w) > 2 and w[-1] == "s" and w[:-1].isupper():
        w = w[:-1]  # a plural acronym: "APIs" is "API", "GPUs" "GPU"
    return _MONTHS.get(w.lower()) or stem(w)


def _opens_clause(text: str, start: int) -> bool:
    """Whether the word at ``start`` is the first of its sentence or clause (so its capital says nothing)."""
    i = start
    while i > 0 and text[i - 1] in _MARKDOWN:
        i -= 1
    if i == 0:
        return True
    if text[i - 1] != ".":
        return text[i - 1] in _OPENERS
    before = re.search(r"[\w.]*$", text[: i - 1]).group(0)  # type: ignore[union-attr]  # always matches
    return not (before.lower() in _TITLES or len(before) == 1 and before.isupper() or "." in before)


def claims(text: str, *, known_names: set[str] | frozenset[str] = frozenset()) -> Claims:
    """The checkable specifics of a sentence: its numbers and its names.

    - Numbers: every run of digits, thousands separators removed ("10,000" == "10000"; a plain space does not
      group), decimals without trailing zeros ("3.50" == "3.5"), versions and dotted dates kept whole ("3.11",
      "3.11.2"), scales applied ("10k" -> "10000"). Digits inside words count ("sha256", "H100", "1st", "COVID-19"),
      a date's numbers are numbers ("March 3, 2021" claims 3, 2021 and the name march). Units ("%", "kg") are not
      claims. "10 000" (plain space) is ten thousand or two numbers: a source with either backs it.
      Spelled-out numbers ("two", "first") are not claims either: a model writes them when it counts or
      paraphrases ("two options", "First, unplug ..."), which no source spells out; a source's spelled-out
      numbers do back a sentence's digits (``claim_index``).
    - Names: capitalised words that do not open the sentence or a clause (one opens after ":", a bullet, an opening
      quote, markdown "**", and after a period unless that ends an abbreviation: "Dr. Smith" is a name), and
      all-caps acronyms ("NASA", "U.S.") anywhere; as ``name_key`` has them, so they match case-insensitively.
      Not names: stopwords ("I", "The", "OK"), units and honorifics ("PM", "GB", "Dr"), words with digits (their
      numbers are the claim), and the capitalised words of a title-case line ("Key Points": no lower-case word to
      contrast with; one capitalised word is no title: "It is Acme."). ``known_names`` (keys, e.g. the
      question's names) make the first word a name too: "Acme's share price is ..." to "What is Acme's price?".

    Citation markers ``[n]`` and list prefixes ("- ", "1. ") are layout, not claims.

    >>> sorted(claims("The tokenizer of GPT-2 has 10,000 parameters, per OpenAI [1].").all)
    ['10000', '2', 'openai']
    """
    plain = _LAYOUT_PREFIX.sub("", _CITATION.sub(" ", text))
    readings = _number_claims(plain)
    return Claims(
        numbers=frozenset(base for base, _ in readings),
        names=frozenset(name_key(w) for w in _name_claims(plain, known_names)),
        readings=tuple(readings),
    )


def _number_claims(plain: str) -> list[tuple[str, tuple[frozenset[str], ...]]]:
    """Each number of ``plain`` with the readings a source may back it by (``claims``, numbers)."""
    readings: list[tuple[str, tuple[frozenset[str], ...]]] = []
    for match in _SPACE_GROUPED.finditer(plain):  # "10 000": ten thousand, or two numbers side by side
        groups = match.group(0).split(" ")
        merged = _decimal("".join(groups))
        readings.append((merged, (frozenset({merged}), frozenset(_decimal(g) for g in groups))))
    for match in _NUMBER.finditer(_SPACE_GROUPED.sub(lambda m: " " * len(m.group(0)), plain)):
        base, accepted, _ = _number_readings(match)
        readings.append((base, accepted))
    return readings


def _name_claims(plain: str, known_names: set[str] | frozenset[str]) -> list[str]:
    """The words of ``plain`` that are names (``claims``, names): acronyms and known first words on any line,
    capitalised words inside a clause unless the line is a title."""
    names: list[str] = []  # acronyms, and first words known as names: names on any line
    capitalised: list[str] = []  # capitalised words inside a clause: names unless the line is a title
    title_words = 0  # capitalised words, first ones included
    lowercase = False  # a lower-case content word: the line is a sentence, not a title
    heads = ""  # the initials of the words so far (stopwords skipped): "Human Resources (HR)" defines HR
    for match in _WORD.finditer(plain):
        word = match.group(0)
        core = _content_word(word)
        if core is None:
            continue
        letters = [ch for ch in core if ch.isalpha()]
        acronym = len(letters) >= 2 and all(ch.isupper() for ch in letters)
        defined = acronym and heads.endswith("".join(letters).lower())
        heads += core[0].lower()
        if defined:
            continue  # an acronym the sentence spells out: its words are the claim
        if not word[0].isupper():
            lowercase = True
            continue
        title_words += 1
        kind = _capitalised_kind(plain, match, len(letters), acronym, known_names)
        if kind == "name":
            names.append(word)
        elif kind == "inside":
            capitalised.append(word)
    if lowercase or title_words < 2:
        names += capitalised
    return names


def _content_word(word: str) -> str | None:
    """The word without its contraction, or None when it can name nothing: digits (their numbers are the
    claim), stopwords, units and honorifics."""
    if any(ch.isdigit() for ch in word):
        return None
    core = _CONTRACTION.sub("", word.replace("’", "'"))
    if not core or {core.lower(), word.lower()} & STOPWORDS or core.lower() in _NOT_NAMES:
        return None
    return core


def _capitalised_kind(
    plain: str, match: re.Match[str], letters: int, acronym: bool, known_names: set[str] | frozenset[str]
) -> str:
    """A capitalised word's part: "name" (an acronym, or a first word known as a name), "inside" (inside a
    clause: a name unless the line is a title), or "" (a unit, or a first word that is no known name)."""
    if letters <= 3 and _AFTER_NUMBER.search(plain, 0, match.start()):
        return ""  # a unit: "250 °C", "5 V", "3 TB"
    if acronym:
        return "name"
    if not _opens_clause(plain, match.start()):
        return "inside"
    return "name" if name_key(match.group(0)) in known_names else ""


def claim_index(source: str) -> ClaimIndex:
    """What ``source`` can back, for ``missing_claims`` (compute it once per source when checking many sentences).

    Numbers: each number as ``claims`` reads it, plus every other form it may stand for: its thousands groups and
    a plain-space grouping ("10 000" backs "10000"), scaled and unscaled ("10k", "1.5 million"), a dotted number's
    parts and prefixes ("3.11.2" backs "3.11", "03.03.2021" backs 3 and 2021), a dot as a thousands separator
    ("10.000"), spelled-out numbers ("two" -> 2, "first" -> 1, "thousand" -> 1000). Names: every word (not only
    capitalised ones) as ``name_key`` has it, hyphenated and dotted words also by their parts and joined
    ("Coca-Cola" backs "Coca Cola" and "CocaCola"), the month of a numeric date ("2021-03-03" backs March), and
    the initials of a run of words, for an acronym a sentence makes up ("Human Resources" backs "HR"; two-letter
    ones only from two capitalised words, as two lower-case words match too often by chance).
    """
    plain = _CITATION.sub(" ", source)
    numbers: set[str] = set()
    for match in _NUMBER.finditer(plain):
        _, accepted, extras = _number_readings(match)
        numbers.update(*accepted, extras)
    numbers.update(_decimal(m.group(0).replace(" ", "")) for m in _SPACE_GROUPED.finditer(plain))
    for m in _NUMBER_WORD.finditer(plain):
        if m["word"]:
            numbers.add(str(_NUMBER_WORDS[m["word"].lower()]))
        else:  # "twenty-five": 25, and its parts
            tens, unit = _NUMBER_WORDS[m["tens"].lower()], _NUMBER_WORDS[m["unit"].lower()]
            numbers.update((str(tens + unit), str(tens), str(unit)))
    names: set[str] = set()
    for word in words(plain):
        names.add(name_key(word))
        if _NAME_PARTS.search(word):
            names.add(name_key(_NAME_PARTS.sub("", word)))
            names.update(name_key(part) for part in _NAME_PARTS.split(word) if part)
    initials: set[str] = set()
    for line in plain.splitlines():
        found = words(line)
        heads = [w[0].lower() for w in found if w.lower() not in STOPWORDS and w[0].isalpha()]
        initials.update("".join(heads[i : i + n]) for n in range(3, 7) for i in range(len(heads) - n + 1))
        # two letters match too many word pairs by chance ("us", "eu"): only a pair of capitalised words backs one
        initials.update(
            a[0].lower() + b[0].lower() for a, b in itertools.pairwise(found) if a.istitle() and b.istitle()
        )
    months = [m.group(1) for m in _ISO_DATE.finditer(plain)]
    months += [g for m in _NUMERIC_DATE.finditer(plain) for g in m.groups()]
    names.update(_MONTH_NAMES[int(m) - 1] for m in months if 1 <= int(m) <= 12)
    return ClaimIndex(frozenset(numbers), frozenset(names), frozenset(initials))


def _name_found(word_key: str, index: ClaimIndex) -> bool:
    if word_key in index.names or word_key in index.initials:
        return True
    if not _NAME_PARTS.search(word_key):
        return False
    parts = [name_key(p) for p in _NAME_PARTS.split(word_key) if p]
    return name_key(_NAME_PARTS.sub("", word_key)) in index.names or all(p in index.names for p in parts)


def missing_claims(
    sentence: str | Claims, source: str | ClaimIndex, *, known_names: set[str] | frozenset[str] = frozenset()
) -> set[str]:
    """The specifics of ``sentence`` (``claims``) that ``source`` (``claim_index``) does not hold; empty when it
    holds them all. Numbers are compared normalised, names case-insensitively by ``name_key``. Nothing is excused
    for being in the question: a name the question used that the source lacks is missing like any other
    (``known_names``, the question's names, only make a sentence's first word count as a name).

    >>> sorted(missing_claims("Acme Corp's share price is $42.17 [1].", "The previous close was 42.17."))
    ['corp']
    >>> missing_claims("Python 3.11 added it in 10,000 projects.", "Since python 3.11.2, 10000 projects use it.")
    set()
    """
    said = claims(sentence, known_names=known_names) if isinstance(sentence, str) else sentence
    index = claim_index(source) if isinstance(source, str) else source
    missing = {name for name in said.names if not _name_found(name, index)}
    readings = said.readings or tuple((n, (frozenset({n}),)) for n in said.numbers)
    missing.update(base for base, accepted in readings if not any(a <= index.numbers for a in accepted))
    return missing
