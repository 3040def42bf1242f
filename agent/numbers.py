"""Numbers as digits: one reading for what the agent hears and for what it matches against the FAQ.

"ten countries" and "10 countries" are the same question, and an order number read out digit by digit
("four seven two nine", which Whisper may write "4, 7, 2, 9" or "47 two 9") is one number. Number words
become digits with text2num; then runs of digit groups separated only by spaces, commas or hyphens are joined when there are three or
more, or two with a single digit among four or more ("one 2345"). Other pairs stay apart ("5 5",
"10 30"): they are as often two numbers as one.
A lone "one" is left alone ("the first one", "one of my items"). "double five" is 55 and "triple seven" 777, as
people read numbers out. The customer's own grouping is kept where the text shows it: "five five five, one two three
four" is "555 1234" (a comma between groups of digits said one by one), while Whisper's "4, 7, 2, 9" (a comma after
every digit) is one group, 4729.
"""
from __future__ import annotations

import re

from text_to_num import alpha2digit

_DIGIT_WORDS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                "seven": "7", "eight": "8", "nine": "9"}
# A digit word touching a digit group: "33 one 8", "one 2345".
_WORD_BESIDE_DIGITS = re.compile(r"\b(zero|oh|one|two|three|four|five|six|seven|eight|nine)\b(?=[ ,-]+\d)|(?<=\d)([ ,-]+)(zero|oh|one|two|three|four|five|six|seven|eight|nine)\b",
                                 re.IGNORECASE)
_GROUP = r"\d+"
_SEPARATOR = r"(?:,? |-)"
_RUN = re.compile(rf"(?<!\d)(?<!\d\.){_GROUP}(?:{_SEPARATOR}{_GROUP})+(?!\d|\.\d)")
_REPEATED_DIGIT = re.compile(r"\b(double|triple)[ -](\d)\b", re.IGNORECASE)


def numbers_as_digits(text: str) -> str:
    if not text:
        return text
    text = alpha2digit(text, "en")
    for _ in range(3):  # a word may stand between two others: "3 one one 8"
        replaced = _WORD_BESIDE_DIGITS.sub(_digit_word, text)
        if replaced == text:
            break
        text = replaced
    text = _REPEATED_DIGIT.sub(lambda m: m.group(2) * (2 if m.group(1).lower() == "double" else 3), text)
    return _RUN.sub(_joined, text)


def _joined(match: re.Match) -> str:
    groups = re.findall(r"\d+", match.group(0))
    one_number = len(groups) >= 3 or (min(map(len, groups)) == 1 and sum(map(len, groups)) >= 4)
    if not one_number:
        return match.group(0)
    said = re.split(r", ", match.group(0))
    if len(said) > 1 and any(re.search(r"\d[ -]\d", part) for part in said):  # digits said in groups, a comma between
        return " ".join(re.sub(r"\D", "", part) for part in said)
    return "".join(groups)


def _digit_word(match: re.Match) -> str:
    if match.group(1):
        return _DIGIT_WORDS[match.group(1).lower()]
    return match.group(2) + _DIGIT_WORDS[match.group(3).lower()]
