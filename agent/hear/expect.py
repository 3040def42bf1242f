"""What the agent expects to hear next, from what it just asked.

A customer answers "five", "yes" or "four seven one nine" far more often than a sentence, and a word or two
is too little sound for Whisper to be sure of: "five" comes out "Bye!". What the agent just asked says what the
answer is likely to be (a question asking for a number, a yes/no question, "delivery or collection?"), and
the transcriber weighs its hypotheses by that (`transcriber.py`).
"""
from __future__ import annotations

import re

from ..messages import Expectation
from ..speak.sentences import split_sentences

# A question that asks for a number: "What is your order number?", "Can you read me the code?", "How many ...?"
_ASKS_FOR_NUMBER = re.compile(r"\b(numbers?|digits?|codes?|pin|postcode|post code|zip|how many|phone|account|reference|"
                              r"last four|iban)\b", re.IGNORECASE)
# A question a person answers with yes or no starts with an auxiliary: "Is that right?", "Would you like ...?"
_YES_NO_START = re.compile(r"^(is|are|was|were|do|does|did|can|could|would|will|shall|should|have|has|had|may|might|"
                           r"is there|anything else)\b", re.IGNORECASE)
_OPTIONS = re.compile(r"\b([\w'-]+(?: [\w'-]+)?),? or ([\w'-]+(?: [\w'-]+)?)\?$", re.IGNORECASE)


OPEN = Expectation()

_YES = {"yes", "yeah", "yep", "yup", "sure", "correct", "right", "ok", "okay", "exactly", "absolutely", "certainly"}
_NO = {"no", "nope", "nah", "not", "don't", "dont", "isn't", "wasn't", "incorrect", "wrong", "never"}


def yes_or_no(text: str) -> bool | None:
    """True for a short yes ("Yes, please.", "yeah"), False for a short no ("No, thanks.", "nope"), else None."""
    words = re.sub(r"[^\w' ]", " ", text.lower()).split()
    if not words or len(words) > 4:
        return None
    said = {w for w in words if w in _YES} , {w for w in words if w in _NO}
    if bool(said[0]) == bool(said[1]):
        return None
    return bool(said[0])


def expectation_after(reply: str) -> Expectation:
    """What a customer is likely to say after the agent said `reply`: its last sentence, if a question, decides."""
    sentences = split_sentences(reply.strip())
    question = sentences[-1].strip() if sentences else ""
    if not question.endswith("?"):
        return OPEN
    options = _OPTIONS.search(question)
    words = tuple(options.groups()) if options else ()
    if _ASKS_FOR_NUMBER.search(question):
        return Expectation("number", words)
    if not words and _YES_NO_START.match(re.sub(r"^sorry,? ", "", question, flags=re.IGNORECASE)):
        return Expectation("yes_no")
    return Expectation("open", words)


def check_question(heard: str) -> str:
    """What the agent asks back when it is unsure of a short turn: the words it thinks it heard, as a yes/no question.
    Digits are read out one by one ("4 7 1 9"), as the customer said them."""
    words = heard.strip().rstrip(".!?,")
    digits = re.sub(r"\D", "", words)
    if digits and len(digits) >= len(re.sub(r"\W", "", words)) / 2:
        return f"Sorry, was that {' '.join(digits)}?"
    said = yes_or_no(words)
    if said is not None:
        return f"Sorry, was that a {'yes' if said else 'no'}?"
    return f"Sorry, did you say {words.lower() if not words.isupper() else words}?"
