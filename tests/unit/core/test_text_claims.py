"""The checkable specifics of a sentence (services/core/grounding/text.py: claims, claim_index, missing_claims,
name_key)."""

from __future__ import annotations

import pytest

from services.core.grounding.text import Claims, claim_index, claims, missing_claims, name_key

pytestmark = pytest.mark.unit


# --- numbers -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("It has 10,000 parameters.", {"10000"}),
        ("It costs 3.50 dollars, up 12%.", {"3.5", "12"}),
        ("Revenue was $1.5 million, 2bn and 10k.", {"1500000", "2000000000", "10000"}),
        ("It needs Python 3.11 and CUDA 12.1.105.", {"3.11", "12.1.105"}),
        ("The 1st run used sha256 on an H100.", {"1", "256", "100"}),
        ("It opened on March 3, 2021.", {"3", "2021"}),
        ("Rows: 1,000.50 and 007.", {"1000.5", "7"}),
        ("There are two options: first, restart it.", set()),  # spelled-out numbers are not claims
        ("Opens at 9 [1][2].", {"9"}),  # citation markers are not numbers
        ("1. Unplug it\n2. Wait", set()),  # nor is list numbering
    ],
)
def test_claims_reads_numbers_normalised(text: str, numbers: set[str]) -> None:
    assert claims(text).numbers == numbers


@pytest.mark.parametrize(
    ("sentence", "source"),
    [
        ("It has 10,000 parameters.", "It has 10000 parameters."),
        ("It has 10000 parameters.", "It has 10,000 parameters."),
        ("It has 10,000 parameters.", "It has 10 000 parameters."),  # a plain-space group in a source
        ("It has 10 000 parameters.", "It has 10000 parameters."),
        ("It has 10,000 parameters.", "It has 10k parameters."),
        ("It has 10,000 parameters.", "It has 10.000 parameters."),  # a dot as thousands separator
        ("It costs 3.5 dollars.", "It costs 3.50 dollars."),
        ("Revenue was $1,500,000.", "Revenue was $1.5 million."),
        ("Revenue was 1.5 million.", "Revenue was $1.5M."),
        ("It runs 10m deep.", "It runs 10 m deep."),  # "10m" may be metres as well as millions
        ("It takes 2 hours.", "It takes two hours."),  # a source's spelled-out number backs digits
        ("Wait 30 seconds, then 25 more.", "Wait thirty seconds, then twenty-five more."),
        ("The penalty is 5% a month.", "The penalty is five percent per month."),
        ("It won the 1st prize.", "It won the first prize."),
        ("It needs Python 3.11.", "Requires python 3.11 or later."),
        ("It needs Python 3.11.", "Tested on Python 3.11.4."),  # a version's prefix
        ("It uses sha256.", "Hashes are SHA-256."),
        ("It opened on March 3, 2021.", "Opened 2021-03-03."),
        ("It opened on 3 March 2021.", "It opened on March 3, 2021."),
    ],
)
def test_a_number_written_another_way_in_the_source_is_not_missing(sentence: str, source: str) -> None:
    assert missing_claims(sentence, source) == set()


@pytest.mark.parametrize(
    ("sentence", "source", "missing"),
    [
        ("The tokenizer has 10,000 parameters.", "The tokenizer splits text into subword units.", {"10000"}),
        ("It has 10,000 parameters.", "It has 1,000 parameters.", {"10000"}),
        ("It needs Python 3.11.", "It needs Python 3.10.", {"3.11"}),
        ("It opened on March 3, 2021.", "It opened on March 5, 2021.", {"3"}),
        ("It opened on March 3, 2021.", "It opened in 2021.", {"3", "march"}),
        ("It has 10 000 rows.", "It has 10 rows.", {"10000"}),  # neither ten thousand nor both 10 and 0
    ],
)
def test_a_number_the_source_lacks_is_missing(sentence: str, source: str, missing: set[str]) -> None:
    assert missing_claims(sentence, source) == missing


# --- names ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("The share price of Acme Corporation is high.", {"acme", "corporation"}),
        ("Acme's price went up, says Reuters.", {"reuter"}),  # the first word alone says nothing
        ("It runs on NASA hardware and U.S. networks.", {"nasa", "us"}),
        ("NASA runs it.", {"nasa"}),  # an acronym is a name even first
        ("Staff park in lot B.", {"b"}),
        ("Steps: Unplug the router and wait.", set()),  # a capital after a colon
        ("**Note:** Restart the router after that.", set()),  # markdown emphasis
        ('The sign says "Visitors only" at the gate.', set()),  # an opening quote
        ("I think I'm right and I'll check it OK.", set()),  # "I" and its contractions, stopwords
        ("The office opens at 9 AM and closes at 5 PM.", set()),  # units
        ("Bake it at 250 °C on a 5 V supply with 3 TB.", set()),  # a short word right after a number is a unit
        ("Send it to Human Resources (HR) today.", {"human", "resourc"}),  # an acronym the sentence spells out
        ("It was approved by Dr. Smith in the U.S. office.", {"smith", "us"}),  # a period after an abbreviation
        ("Key Points", set()),  # a title-case line
        ("Getting Started With The Router", set()),
        ("It is Acme.", {"acme"}),  # one capitalised word is no title
        ("Set MAX_RETRIES in config.yaml.", {"max", "retry"}),
        ("The firm (Acme) said so.", {"acme"}),
    ],
)
def test_claims_reads_names(text: str, names: set[str]) -> None:
    assert claims(text).names == names


def test_bullets_and_citation_markers_are_layout() -> None:
    assert claims("- Unplug the router [1].\n* Wait thirty seconds [2].\n## Restart it").all == frozenset()


def test_known_names_make_the_first_word_a_name() -> None:
    assert claims("Acme's share price is high.", known_names={"acme"}).names == {"acme"}
    assert claims("Visitors park here.", known_names={"acme"}).names == frozenset()


@pytest.mark.parametrize(
    ("word", "key"),
    [
        ("Acme's", "acme"),
        ("Acme’s", "acme"),
        ("NASA", "nasa"),
        ("U.S", "us"),
        ("Sept", "september"),
        ("Jan", "january"),
    ],
)
def test_name_key(word: str, key: str) -> None:
    assert name_key(word) == key


@pytest.mark.parametrize(
    ("sentence", "source"),
    [
        ("The report names Acme Corporation.", "acme corporation filed the report."),  # case-insensitive
        ("It is owned by Acme.", "Acme's owners met."),  # possessive
        ("It sells Coca-Cola.", "It sells Coca Cola."),
        ("It sells Coca Cola.", "It sells Coca-Cola."),
        ("It launched with NASA.", "It launched with Nasa."),
        ("It opened in the U.S. market.", "It opened in the US market."),
        ("It was founded in Sept 2020.", "Founded in September 2020."),
        ("It opened in March 2021.", "Opened 2021-03-15."),  # a numeric date's month
        ("It flew for NASA.", "It flew for the National Aeronautics and Space Administration."),  # initials
        ("Send it to HR.", "Send it to Human Resources."),
    ],
)
def test_a_name_the_source_holds_in_another_form_is_not_missing(sentence: str, source: str) -> None:
    assert missing_claims(sentence, source) == set()


def test_two_letter_initials_need_capitalised_words() -> None:
    # "each unit" would back "EU" by chance; two letters only count from a capitalised pair
    assert missing_claims("It ships to the EU.", "Each unit ships in a box.") == {"eu"}
    assert missing_claims("It ships to the EU.", "It ships to the European Union.") == set()


def test_a_name_the_source_lacks_is_missing_even_when_the_number_is_there() -> None:
    source = "Sample stock. The stock opened at $41.80 after a previous close of $42.17."
    assert missing_claims("The share price of Acme Corporation is $42.17 [1].", source) == {"acme", "corporation"}
    # the question's names make the answer's first word a name
    assert missing_claims("Acme's share price is $42.17.", source, known_names={"acme"}) == {"acme"}


def test_claim_index_and_claims_can_be_computed_once() -> None:
    said = claims("It has 10,000 parameters, says OpenAI.")
    index = claim_index("OpenAI: the model has 10000 parameters.")
    assert said and not Claims()
    assert said.all == {"10000", "openai"}
    assert missing_claims(said, index) == set()
    assert missing_claims(said, claim_index("The model is small.")) == {"10000", "openai"}


def test_every_sentence_holds_its_own_claims() -> None:
    text = (
        "Python 3.11 was released on October 24, 2022 [1]. It is 10-60% faster than 3.10, says the PSF. "
        "NumPy 1.26 and SHA-256 work; costs fell to $1.5M (about 1,500,000 USD) for the U.S. team.\n"
        "- Dr. Smith's team, e.g. Acme-Corp, used 10 000 GPUs.\n**Note:** The O'Neil Fund owns 3rd-party code."
    )
    index = claim_index(text)
    for sentence in text.replace("\n", ". ").split(". "):
        assert missing_claims(sentence, index) == set(), sentence
