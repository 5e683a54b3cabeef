#!/usr/bin/env python3
"""Generated general questions for the replay of the personal-memory fine-tuning (bench/finetune_memory.py
--replay-gen N): many short questions of the kinds the memory facts leak into and the base answers weakly
(capitals, units of time, famous people and their birth dates, the largest things, sums and products, what
animals make, fruits and vegetables by colour, opposites, legs and wheels, what things are made of, short
definitions). The base model's greedy answers to them are the replay's targets, with KL to its whole next-token
distribution (finetune --kl-data), so the adapter learns to leave these kinds of answers alone.

The ten reported questions (general.CHECK) and the twelve held-out ones (general.SELECT) never occur, and
neither do their subjects (no question about Germany, Einstein, oceans, bicycles, water, ..., no sum of 7 and 8):
the checks stay questions the replay never asked.

    general_gen.py [N]   # print the first N questions (default: all)
"""
from __future__ import annotations

import random
import re
import sys

import general

# Subjects of the CHECK and SELECT questions (whole words, case-insensitive): no generated question names one.
EXCLUDED_WORDS = ["germany", "german", "berlin", "austria", "vienna", "norway", "oslo", "einstein", "newton",
                  "mozart", "ocean", "oceans", "desert", "deserts", "bicycle", "bicycles", "bike", "cat", "cats",
                  "bee", "bees", "honey", "cow", "cows", "water", "salt", "cold", "hot", "up", "down", "yellow", "red"]
# Subjects that take more than one word: hours in a day, days in a week.
EXCLUDED_PATTERNS = [r"\bhours?\b.*\bdays?\b", r"\bdays?\b.*\bweeks?\b"]
# Number pairs of the CHECK and SELECT sums, in any order and operation.
EXCLUDED_PAIRS = [{7, 8}, {9, 6}]

COUNTRIES = ["Japan", "Egypt", "Brazil", "Australia", "Kenya", "Sweden", "Finland", "Denmark", "Portugal", "Greece",
             "Turkey", "India", "China", "Mexico", "Argentina", "Peru", "Chile", "Ireland", "Belgium", "the Netherlands",
             "Switzerland", "Hungary", "the Czech Republic", "Russia", "South Korea", "Thailand", "Vietnam", "Nigeria",
             "Morocco", "Cuba", "New Zealand", "Iceland", "Scotland", "Ukraine", "Romania", "Indonesia", "Colombia"]
CAPITAL_FORMS = ["What is the capital of {}?", "Which city is the capital of {}?", "Name the capital of {}."]

TIME_UNITS = [("minutes", "an hour"), ("seconds", "an hour"), ("days", "a year"), ("months", "a year"),
              ("weeks", "a year"), ("years", "a decade"), ("years", "a century"), ("days", "a fortnight"),
              ("minutes", "half an hour"), ("days", "February"), ("days", "April"),
              ("months", "a season"), ("years", "a millennium"), ("days", "a month")]

PEOPLE = ["Marie Curie", "Charles Darwin", "Napoleon Bonaparte", "Leonardo da Vinci", "William Shakespeare",
          "Abraham Lincoln", "Galileo Galilei", "Nikola Tesla", "Ludwig van Beethoven", "Cleopatra", "Julius Caesar",
          "Mahatma Gandhi", "Thomas Edison", "Pablo Picasso", "Vincent van Gogh", "Johann Sebastian Bach",
          "Charles Dickens", "Jane Austen", "Queen Victoria", "George Washington", "Winston Churchill",
          "Nelson Mandela", "Ada Lovelace", "Alan Turing", "Sigmund Freud", "Aristotle", "Christopher Columbus",
          "Frida Kahlo", "Michelangelo", "Stephen Hawking"]
PEOPLE_FORMS = ["Who was {}?", "When was {} born?", "Where was {} born?", "What is {} famous for?"]

LARGEST = ["What is the largest continent?", "What is the largest country in the world?",
           "What is the largest animal on Earth?", "What is the largest island in the world?",
           "What is the largest lake in the world?", "What is the largest bird?", "What is the largest rainforest?",
           "What is the largest organ of the human body?", "What is the smallest planet in our solar system?",
           "What is the tallest animal?", "What is the fastest land animal?", "What is the highest waterfall?",
           "What is the largest moon of Saturn?", "What is the biggest city in Japan?",
           "What is the longest bone in the human body?", "What is the largest mammal on land?",
           "What is the coldest planet?", "What is the closest star to Earth?"]

ANIMALS_MAKE = [("spiders", "make"), ("silkworms", "make"), ("chickens", "lay"), ("beavers", "build"),
                ("birds", "build"), ("sheep", "give us"), ("goats", "produce"), ("ants", "build"),
                ("oysters", "make"), ("caterpillars", "turn into"), ("frogs", "eat"), ("squirrels", "eat"),
                ("horses", "eat"), ("wasps", "make"), ("hens", "produce")]
ANIMAL_FORMS = ["What do {} {}?"]

COLOURED = [("fruit", "green"), ("fruit", "orange"), ("fruit", "purple"), ("fruit", "blue"),
            ("vegetable", "green"), ("vegetable", "orange"), ("vegetable", "purple"), ("flower", "white"),
            ("flower", "blue"), ("animal", "black and white"), ("bird", "black"), ("animal", "grey"),
            ("fruit", "brown")]
COLOUR_FORMS = ["Name a {} that is {}."]

OPPOSITES = ["big", "fast", "light", "happy", "old", "wet", "open", "early", "left", "full", "high", "loud", "rich",
             "strong", "soft", "young", "thick", "dark", "near", "heavy", "day", "north", "win", "push", "begin",
             "love", "true", "inside", "sweet", "empty", "tall", "slow"]
OPPOSITE_FORMS = ["What is the opposite of {}?", "What is the opposite of '{}'?", "Give the opposite of {}."]

LEGS_WHEELS = [("wheels", "a car"), ("wheels", "a tricycle"), ("wheels", "a unicycle"), ("wheels", "a motorcycle"),
               ("wheels", "a skateboard"), ("legs", "a dog"), ("legs", "a bird"), ("legs", "an insect"),
               ("legs", "a horse"), ("legs", "a chicken"), ("arms", "an octopus"),
               ("legs", "an ant"), ("legs", "a table"), ("sides", "a triangle"), ("sides", "a square"),
               ("sides", "a hexagon"), ("strings", "a violin"), ("legs", "a crab"), ("legs", "a kangaroo")]
LEGS_FORMS = ["How many {} does {} have?"]

MADE_OF = ["glass", "paper", "steel", "bread", "cheese", "air", "sand", "ice", "bronze", "plastic", "butter",
           "chocolate", "wine", "concrete", "brass", "a pencil", "a candle", "soap", "rubber", "yogurt", "a diamond",
           "the Sun", "a cloud", "rain"]
MADE_FORMS = ["What is {} made of?", "What is {} made from?"]

DEFINE = ["a volcano", "a glacier", "a molecule", "an atom", "a planet", "a verb", "a mammal", "a triangle", "a library",
          "a thermometer", "a compass", "an island", "a peninsula", "a reptile", "a fraction", "a poem", "a museum",
          "an orchestra", "a telescope", "a bridge", "a virus", "a battery", "a calendar"]
DEFINE_FORMS = ["What is {}?", "Define {}.", "Explain what {} is."]


def _arith(rng):
    out = []
    ops = [("plus", "+"), ("minus", "-"), ("times", "*")]
    for a in range(2, 13):
        for b in range(2, 13):
            if {a, b} in EXCLUDED_PAIRS:
                continue
            for word, sym in ops:
                if word == "minus" and a < b:
                    continue
                out.append(rng.choice([f"What is {a} {word} {b}?", f"What is {a} {sym} {b}?",
                                       f"How much is {a} {word} {b}?"]))
    rng.shuffle(out)
    return out


def _kinds(rng):
    """Every kind's questions, each kind shuffled."""
    def forms(forms_, items, fmt=lambda f, x: f.format(x)):
        qs = [fmt(rng.choice(forms_), x) for x in items]
        rng.shuffle(qs)
        return qs

    people = [f.format(p) for p in PEOPLE for f in PEOPLE_FORMS]
    rng.shuffle(people)
    kinds = [
        forms(CAPITAL_FORMS, COUNTRIES),
        [f"How many {a} are in {b}?" for a, b in TIME_UNITS],
        people,
        list(LARGEST),
        _arith(rng),
        forms(ANIMAL_FORMS, ANIMALS_MAKE, lambda f, x: f.format(*x)),
        forms(COLOUR_FORMS, COLOURED, lambda f, x: f.format(*x)),
        forms(OPPOSITE_FORMS, OPPOSITES),
        forms(LEGS_FORMS, LEGS_WHEELS, lambda f, x: f.format(*x)),
        forms(MADE_FORMS, MADE_OF),
        forms(DEFINE_FORMS, DEFINE),
    ]
    for k in kinds[1:4]:
        rng.shuffle(k)
    return kinds


def excluded(q: str) -> str | None:
    """Why q may not be a generated question (it names a CHECK or SELECT subject), or None."""
    words = set(re.findall(r"[a-z]+", q.lower()))
    hit = sorted(words & set(EXCLUDED_WORDS))
    if hit:
        return f"names {hit[0]}"
    for pat in EXCLUDED_PATTERNS:
        if re.search(pat, q.lower()):
            return f"matches {pat}"
    nums = [int(n) for n in re.findall(r"\d+", q)]
    if len(nums) == 2 and set(nums) in EXCLUDED_PAIRS:
        return f"uses {nums[0]} and {nums[1]}"
    if q.lower() in {x.lower() for x in general.CHECK + general.SELECT + general.REPLAY}:
        return "is a CHECK, SELECT or REPLAY question"
    return None


def questions(n: int | None = None, seed: int = 7) -> list[str]:
    """The first n generated questions (all of them when n is None): the kinds taken in turn, so any prefix
    covers every kind. The same seed gives the same list."""
    kinds = _kinds(random.Random(seed))
    out, seen = [], set()
    while any(kinds):
        for k in kinds:
            if k:
                q = k.pop(0)
                if q.lower() not in seen and excluded(q) is None:
                    seen.add(q.lower())
                    out.append(q)
    if n is not None and n > len(out):
        raise ValueError(f"only {len(out)} generated questions, {n} asked")
    return out[:n] if n is not None else out


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else None
    for q in questions(n):
        print(q)


if __name__ == "__main__":
    main()
