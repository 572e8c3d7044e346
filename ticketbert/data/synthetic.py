"""A deterministic, learnable synthetic version of the three tasks (tests, offline runs).

Its metrics say nothing about language: it exists so that pipelines run with no data.
"""

from __future__ import annotations

import random
import zlib

from ticketbert.data.examples import Example

SENTIMENT_WORDS = (
    ("awful", "dreadful", "terrible", "horrid"),
    ("dull", "weak", "flat", "bland"),
    ("average", "plain", "middling", "ordinary"),
    ("good", "nice", "pleasant", "solid"),
    ("brilliant", "superb", "wonderful", "stunning"),
)
NOUNS = ("film", "movie", "story", "plot", "cast", "script", "score", "ending", "scene", "actor")
TOPICS = ("cars", "music", "cooking", "travel", "money", "health", "sports", "history", "science",
          "movies", "phones", "books", "jobs", "games", "weather", "art")
SYNONYMS = {"how": "in what way", "best": "greatest", "learn": "study", "buy": "purchase",
            "start": "begin", "improve": "get better at"}
VERBS = ("learn", "buy", "start", "improve")
ANIMALS = ("dog", "cat", "horse", "bird", "child", "man", "woman", "boy", "girl", "chef")
ACTIONS = ("runs", "eats", "sleeps", "plays", "jumps", "sings", "reads", "swims", "cooks", "walks")
PLACES = ("park", "kitchen", "street", "beach", "garden", "field", "house", "river", "city", "forest")
COLORS = ("black", "white", "brown", "red", "small", "big", "young", "old", "happy", "tired")


def _rng(task: str, split: str, seed: int) -> random.Random:
    return random.Random(zlib.crc32(f"{task}/{split}/{seed}".encode()))


def _sentiment(rng: random.Random) -> Example:
    label = rng.randrange(5)
    words = [rng.choice(SENTIMENT_WORDS[label]) for _ in range(2)]
    noun = rng.choice(NOUNS)
    return Example((f"the {noun} is {words[0]} and {words[1]} .",), float(label))


def _question(rng: random.Random, topic: str, verb: str) -> str:
    return f"how can i {verb} {topic} best ?"


def _paraphrase(rng: random.Random) -> Example:
    topic, verb = rng.choice(TOPICS), rng.choice(VERBS)
    first = _question(rng, topic, verb)
    if rng.random() < 0.5:
        second = " ".join(SYNONYMS.get(word, word) for word in first.split())
        return Example((first, second), 1.0)
    other_topic = rng.choice([t for t in TOPICS if t != topic])
    return Example((first, _question(rng, other_topic, rng.choice(VERBS))), 0.0)


def _similarity(rng: random.Random) -> Example:
    slots = (COLORS, ANIMALS, ACTIONS, PLACES, COLORS)
    first = [rng.choice(options) for options in slots]
    shared = rng.randrange(6)
    keep = set(rng.sample(range(5), shared))
    second = [word if i in keep else rng.choice([w for w in slots[i] if w != word])
              for i, word in enumerate(first)]

    def sentence(w: list[str]) -> str:
        return f"a {w[0]} {w[1]} {w[2]} in the {w[4]} {w[3]} ."

    return Example((sentence(first), sentence(second)), float(shared))


GENERATORS = {"sst": _sentiment, "para": _paraphrase, "sts": _similarity}


def synthetic_split(task: str, split: str, size: int, seed: int = 0) -> list[Example]:
    """``size`` deterministic examples of ``task`` for ``split``."""
    rng = _rng(task, split, seed)
    return [GENERATORS[task](rng) for _ in range(size)]
