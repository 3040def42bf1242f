"""Speech sets made by the project for tests and benchmarks, and how to score what was heard.

- SHORT_UTTERANCES: what customers say in a word or two, where Whisper loops or guesses: numbers and
  digits read out, yes/no, spelled letters, names, one-word answers.
- FAQ_WORD_QUESTIONS: questions that contain a FAQ's own names ("Brompton", "SEPA"), each with the FAQ
  entries that name it, to measure the recogniser's bias towards the tenant's words.
They are spoken by the agent's shipped voices and by espeak-ng voices that sound like none of them.
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from agent.answer.faq import FaqEntry
from agent.speak.voices import make_voice
from models.audio import SPEECH_RATE, resample

SHORT_UTTERANCES: dict[str, tuple[str, ...]] = {
    "numbers": ("my order is four seven two nine", "nine nine nine", "five five", "ten of clubs", "my account number is three three one eight",
                "it costs twenty five dollars", "order number one two three four five", "two", "seven", "twelve", "a hundred",
                "eight eight", "call me on five five five one two three four", "about fifteen minutes ago", "zero"),
    "yes and no": ("yes", "no", "yes yes", "no no no", "yes please", "no thanks", "okay", "sure"),
    "letters": ("A B C", "it's spelled S M I T H", "P as in Peter"),
    "names": ("John Smith", "my name is Priya Patel", "Anna"),
    "one word": ("hello", "thanks", "refund", "shipping", "password", "cancel", "goodbye", "one"),
}
CUSTOMER_VOICES = ("espeak:en-us", "espeak:en-us+f3", "espeak:en-gb")  # like none of the avatar's voices
SHIPPED_VOICES = ("joe", "kokoro:af_heart", "kokoro:bm_george")


def _faq(*pairs: tuple[str, str]) -> tuple[FaqEntry, ...]:
    return tuple(FaqEntry(q, a) for q, a in pairs)


# FAQs a tenant might have, with names Whisper does not know, and questions a customer would ask with them.
FAQ_WORD_QUESTIONS: dict[str, tuple[tuple[FaqEntry, ...], tuple[tuple[str, str], ...]]] = {
    "bike shop": (
        _faq(("Do you service Brompton folding bikes?", "Yes, we service Brompton and Tern folding bikes in our workshop."),
             ("Which gears do you fit?", "We fit Shimano and SRAM gears, and Rohloff hubs on request."),
             ("Do you sell electric bikes?", "We sell Gazelle and Riese und Muller e-bikes.")),
        (("can you fix my brompton", "Brompton"), ("do you fit shimano gears", "Shimano"), ("is a rohloff hub expensive", "Rohloff"),
         ("do you have gazelle bikes in stock", "Gazelle"), ("i have a tern folding bike", "Tern")),
    ),
    "bank": (
        _faq(("How do I make a SEPA transfer?", "Choose transfer, then SEPA, and enter the IBAN of the person you pay."),
             ("Where do I find my IBAN?", "Your IBAN and BIC are under account details in the app."),
             ("Can I pay with Revolut?", "You can top up Revolut from your account like any other transfer.")),
        (("how long does a sepa transfer take", "SEPA"), ("where is my iban", "IBAN"), ("what is a bic code", "BIC"),
         ("can i send money to revolut", "Revolut")),
    ),
    "phone shop": (
        _faq(("My phone asks for a PUK code", "Your PUK code is on the card your SIM came on, or in the My Account app."),
             ("Can I get an eSIM?", "Yes, order an eSIM in the app and scan the QR code.")),
        (("my phone wants a puk code", "PUK"), ("can i switch to an esim", "eSIM")),
    ),
    "shop": (
        _faq(("Which payment methods do you accept?", "We take Visa, Mastercard, PayPal and Klarna."),),
        (("can i pay later with klarna", "Klarna"), ("do you take mastercard", "Mastercard")),
    ),
}


# A customer who pauses mid-sentence ("I want to ... change my delivery address"): the sentence is spoken whole, so its
# prosody stays that of a sentence not yet finished, and a pause goes in after its first `words` words.
HESITATIONS: tuple[tuple[str, int], ...] = (
    ("I want to change my delivery address", 3),
    ("My order number is four seven two nine", 4),
    ("Um, can I return an item I bought last week", 1),
    ("I would like to ask about shipping and also about returns", 8),
    ("Can you tell me how much the express delivery costs", 5),
    ("I need help with the password for my account", 4),
    ("So I was wondering if you ship to Canada", 4),
    ("The thing is that my parcel never arrived", 4),
    ("Could I speak to someone about my refund", 4),
    ("I ordered a jacket but it is too small", 5),
)
HESITATION_PAUSES_S = (0.4, 0.6, 0.8, 1.0)
COMPLETE_QUESTIONS = ("What are your opening hours?", "How do I reset my password?", "Where is my order?", "Can I return an item?",
                      "Do you ship internationally?", "Which payment methods do you accept?", "How much does shipping cost?",
                      "I want to change my delivery address.", "My order number is four seven two nine.", "Can I talk to a person?")


def hesitating(voice: str, text: str, words: int, pause_s: float) -> tuple[np.ndarray, int]:
    """(16 kHz turn audio, the sample where the customer speaks again): `text` with a pause after its first `words` words,
    cut where the forced alignment puts the gap between those words and the next."""
    from models.audio2face.data.align import Aligner

    audio = speaker(voice)(text)
    timings = _aligner(Aligner).words(audio, text)
    cut = int(0.5 * (timings[words - 1][2] + timings[words][1]) * SPEECH_RATE)
    resume = cut + int(pause_s * SPEECH_RATE)
    return np.concatenate([audio[:cut], np.zeros(resume - cut, np.float32), audio[cut:]]), resume


@lru_cache(maxsize=1)
def _aligner(cls):
    return cls()


def with_silence(audio16k: np.ndarray, lead_s: float = 0.3, tail_s: float = 0.5) -> np.ndarray:
    """A turn as the turn detector hands it over: a little quiet before the first word and after the last."""
    return np.concatenate([np.zeros(int(lead_s * SPEECH_RATE), np.float32), np.asarray(audio16k, np.float32),
                           np.zeros(int(tail_s * SPEECH_RATE), np.float32)])


def spoken(text: str, rate: int = SPEECH_RATE, voice: str = "espeak:en-us") -> np.ndarray:
    """`text` said by one of the agent's voices (espeak-ng en-us by default: a customer unlike the avatar), at `rate`."""
    made = make_voice(voice)
    return resample(made.synthesize(text), made.sample_rate, rate)


def speaker(voice: str):
    """`say(text) -> 16 kHz turn audio` in one of the agent's voices (joe, kokoro:<name>, espeak:<voice>)."""
    made = make_voice(voice)
    return lambda text: with_silence(resample(made.synthesize(text), made.sample_rate, SPEECH_RATE))


def comparable(text: str) -> str:
    """A transcript as it should be compared: Whisper's English normaliser ("ten" and "10" alike), digits of one
    number together ("4 7 2 9" = "4729"), spelled letters together ("s m i t h" = "smith")."""
    text = _english_normaliser()(text)
    text = re.sub(r"(?<=\d) (?=\d)", "", text)
    text = re.sub(r"\b([a-z]) (?=[a-z]\b)", r"\1", text)
    return text.strip()


@lru_cache(maxsize=1)
def _english_normaliser():
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()


def word_errors(reference: str, heard: str) -> tuple[int, int]:
    """(word errors, reference words) after `comparable`: summed over a set, their ratio is its WER."""
    import jiwer

    ref, hyp = comparable(reference), comparable(heard)
    words = len(ref.split())
    if not hyp:
        return words, words
    out = jiwer.process_words(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, words
