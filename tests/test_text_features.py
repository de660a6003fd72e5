"""Text features against hand counts on small handwritten strings and direct library calls."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.audits import features as tf
from workbench.audits.features import FEATURE_DESCRIPTIONS, extract_features


def one(text: str, **kw) -> pd.Series:
    return extract_features([text], **kw).iloc[0]


# --------------------------------------------------------------------------- basics


def test_columns_match_descriptions():
    f = extract_features(["a b"], prompts=["a"], link_allowlist=["python.org"])
    assert list(f.columns) == list(FEATURE_DESCRIPTIONS)
    f = extract_features(["a b"], prompts=["a"])  # unlisted_links only with an allow-list
    assert list(f.columns) == [c for c in FEATURE_DESCRIPTIONS if c != "unlisted_links"]
    f = extract_features(["a b"])
    assert list(f.columns) == [c for c in FEATURE_DESCRIPTIONS if c not in ("prompt_overlap", "unlisted_links")]


def test_counts_chars_words_sentences():
    text = "Hello there. It's a well-known fact!  Is it?\nNew line without stop"
    row = one(text)
    assert row["chars"] == len(text)
    # Hello there It's a well-known fact Is it New line without stop
    assert row["words"] == 12
    assert row["sentences"] == 4


def test_words_helper_lowercases_and_joins_apostrophes():
    assert tf.words("You’re RIGHT, well-known x_y 42.") == ["you're", "right", "well-known", "x_y", "42"]


def test_approx_tokens_hand_count():
    # Hello=1 ,=1 world=1 !=1 12345 -> ceil(5/3)=2 extraordinarily (15 letters) -> 1 + ceil(9/4) = 4
    assert tf.approx_token_count("Hello, world! 12345 extraordinarily") == 10
    assert one("Hello, world! 12345 extraordinarily")["tokens"] == 10


class FakeHFTokenizer:
    """Mimics the call signature of a Hugging Face tokenizer: one id per character pair."""

    def __init__(self):
        self.calls = []

    def __call__(self, texts, add_special_tokens=True):
        self.calls.append(add_special_tokens)
        return {
            "input_ids": [list(range(math.ceil(len(t) / 2))) + ([0, 0] if add_special_tokens else []) for t in texts]
        }


def test_tokens_use_the_tokenizer_without_special_tokens():
    tok = FakeHFTokenizer()
    f = extract_features(["abcde", "", "abcdefgh"], tokenizer=tok)
    assert f["tokens"].tolist() == [3, 0, 4]
    assert tok.calls == [False]


def test_tokenizer_must_be_callable():
    with pytest.raises(TypeError, match="tokenizer"):
        extract_features(["x"], tokenizer=42)


# --------------------------------------------------------------------------- lexicons


def test_hedges_hand_count_and_rate():
    text = "I think this might work, but maybe not. Perhaps."
    row = one(text)
    assert row["hedge_count"] == 4  # i think, might, maybe, perhaps
    assert row["hedge_rate"] == pytest.approx(100 * 4 / 9)


def test_hedges_word_boundaries_case_and_longest_match():
    assert tf.hedge_count("The mayor's mighty perhapsish couldron.") == 0
    assert tf.hedge_count("MAYBE. Possibly!") == 2
    assert tf.hedge_count("I'm not sure.") == 1  # not also "not sure"
    assert tf.hedge_count("I’m not sure.") == 1  # curly apostrophe


@pytest.mark.parametrize(
    "text, expected",
    [
        ("You're absolutely right! The sky is blue.", 1),
        ("Yes, exactly. You are right about that.", 2),  # opener chain: "yes, exactly" + "you are right"
        ("Absolutely! I agree with you, great point.", 3),  # absolutely + i agree (opener) + great point
        ("It is absolutely necessary to check.", 0),  # single words count only in the opener
        ("The correct answer is 4.", 0),
        ("Paris is the capital. I agree that it is beautiful.", 1),  # phrases count anywhere
        ("You’re right.", 1),
        ("", 0),
    ],
)
def test_agreement_hand_counts(text, expected):
    assert tf.agreement_count(text) == expected
    assert one(text)["agreement"] == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Certainly! I'd be happy to help. Paris.", 2),
        ("What a fascinating question! Here it is.", 1),  # longest match, not also "fascinating question"
        ("Sure, here it is.", 1),
        ("I am sure it works.", 0),
        ("Hi. That is a great question.", 1),
        ("Great question, great question.", 2),
        ("The answer is 4.", 0),
    ],
)
def test_flattery_hand_counts(text, expected):
    assert tf.flattery_count(text) == expected
    assert one(text)["flattery"] == expected


def test_count_phrases_generic():
    assert tf.count_phrases("Foo bar, FOO  bar; foobar", ("foo bar",)) == 2


# --------------------------------------------------------------------------- markdown


MARKDOWN = """# Title

Some **bold** and __also bold__ text.

## Steps
- first
* second
+ third
1. one
2) two
-not a list
#not a header

```python
# a comment, not a header
- not a list item **not bold**
```

~~~
unclosed block
"""


def test_markdown_hand_counts():
    row = one(MARKDOWN)
    assert row["headers"] == 2
    assert row["list_items"] == 5
    assert row["bold"] == 2
    assert row["code_blocks"] == 2  # one closed + one unclosed fence


def test_no_markdown():
    row = one("Plain text. Nothing else.")
    assert (row[["headers", "list_items", "bold", "code_blocks"]] == 0).all()


# --------------------------------------------------------------------------- diversity


def test_distinct_and_repeated_ngrams_hand_counts():
    row = one("the cat sat on the mat the cat sat")
    # unigrams: 9 total, distinct {the, cat, sat, on, mat} = 5
    assert row["distinct_1"] == pytest.approx(5 / 9)
    # bigrams: 8 total, "the cat" and "cat sat" repeat -> 6 distinct
    assert row["distinct_2"] == pytest.approx(6 / 8)
    # trigrams: 7 total, "the cat sat" repeats -> 6 distinct
    assert row["repeated_ngrams"] == pytest.approx(1 / 7)


def test_diversity_undefined_is_nan():
    empty = one("")
    assert math.isnan(empty["distinct_1"]) and math.isnan(empty["distinct_2"]) and math.isnan(empty["hedge_rate"])
    assert empty["repeated_ngrams"] == 0.0
    single = one("Hello")
    assert single["distinct_1"] == 1.0 and math.isnan(single["distinct_2"])


def test_no_repeats():
    assert one("one two three four")["repeated_ngrams"] == 0.0


# --------------------------------------------------------------------------- sentiment


def test_sentiment_matches_vader_directly():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    texts = ["I love this, it is wonderful!", "This is terrible and I hate it.", "The table has four legs.", ""]
    sia = SentimentIntensityAnalyzer()
    expected = [sia.polarity_scores(t)["compound"] for t in texts]
    got = extract_features(texts)["sentiment"].tolist()
    assert got == pytest.approx(expected, abs=1e-12)
    assert got[0] > 0.5 and got[1] < -0.5


# --------------------------------------------------------------------------- prompts, index, validation


def test_prompt_overlap_hand_count():
    f = extract_features(["Paris is the capital", ""], prompts=["What is the capital of France?", "x"])
    # response vocabulary {paris, is, the, capital}; in the prompt: is, the, capital
    assert f["prompt_overlap"].iloc[0] == pytest.approx(3 / 4)
    assert math.isnan(f["prompt_overlap"].iloc[1])


def test_series_index_is_kept_and_dtypes():
    s = pd.Series(["a b", "c"], index=[10, 20])
    f = extract_features(s)
    assert list(f.index) == [10, 20]
    assert f["words"].dtype == np.int64 and f["sentiment"].dtype == float


def test_validation_messages():
    with pytest.raises(TypeError, match="not a single string"):
        extract_features("just one string")
    with pytest.raises(TypeError, match=r"responses\[1\]"):
        extract_features(["ok", None])
    with pytest.raises(ValueError, match="prompts has 1 items"):
        extract_features(["a", "b"], prompts=["p"])


def test_lexicons_are_documented_lowercase_tuples():
    for lex in (
        tf.HEDGES,
        tf.AGREEMENT_PHRASES,
        tf.AGREEMENT_OPENER_WORDS,
        tf.FLATTERY_PHRASES,
        tf.FLATTERY_OPENER_WORDS,
    ):
        assert isinstance(lex, tuple) and lex
        assert all(p == p.lower() for p in lex)
