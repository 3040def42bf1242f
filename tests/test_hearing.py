"""What the transcriber hears: short answers without loops, numbers as digits, and the FAQ's own words.

The short-utterance set is the project's own (`benchmarks/speech_sets.py`), spoken by the agent's voices and by
espeak-ng voices unlike them; `avatar-agent benchmark asr` gives the WER and time table for the same set.
"""
from __future__ import annotations

import numpy as np
import pytest

from agent.hear.transcriber import cut_repeats, looks_looped, repeated_phrase
from agent.hear.vocabulary import faq_vocabulary
from agent.messages import Heard
from agent.numbers import numbers_as_digits
from benchmarks.speech_sets import FAQ_WORD_QUESTIONS, SHORT_UTTERANCES, comparable, speaker, word_errors

UTTERANCES = [text for texts in SHORT_UTTERANCES.values() for text in texts]


def test_numbers_read_the_same_in_words_and_in_digits():
    assert numbers_as_digits("my order is four seven two nine") == "my order is 4729"
    assert numbers_as_digits("My order is 4, 7, 2, 9.") == "My order is 4729."
    assert numbers_as_digits("my account number is 33 one 8") == "my account number is 3318"
    assert numbers_as_digits("do you ship to ten countries") == numbers_as_digits("do you ship to 10 countries")
    assert numbers_as_digits("it costs twenty five dollars") == "it costs 25 dollars"
    # not everything that sounds like a number is one
    for text in ("the first one please", "one of my items", "5, 5", "10 30", "it costs $4.99", "oh no"):
        assert numbers_as_digits(text) == text
    # read out as people do, the customer's grouping kept where the words show it
    assert numbers_as_digits("double five one two") == "5512" and numbers_as_digits("triple seven") == "777"
    assert numbers_as_digits("forty-seven nineteen") == "47 19"
    assert numbers_as_digits("my number is five five five, one two three four") == "my number is 555 1234"


def test_what_the_agent_asked_says_what_it_expects_to_hear():
    from agent.hear.expect import check_question, expectation_after, yes_or_no

    assert expectation_after("I can check that. What is your order number?").kind == "number"
    assert expectation_after("Could you read me the code on the card?").kind == "number"
    assert expectation_after("Is there anything else I can help with?").kind == "yes_no"
    assert expectation_after("Sorry, was that 5?").kind == "yes_no"
    assert expectation_after("Would you like delivery or collection?").options[-1] == "collection"
    assert expectation_after("We open at nine. Our number is on the site.").kind == "open", "no question, nothing expected"
    assert [yes_or_no(t) for t in ("Yeah.", "Yes, please.", "nope", "No, thanks.", "Bye!", "no yes")] == [True, True, False, False, None, None]
    assert check_question("4719") == "Sorry, was that 4 7 1 9?" and check_question("Yes.") == "Sorry, was that a yes?"


def test_a_loop_is_told_from_a_customer_who_repeats_himself():
    for said in ("yes yes", "no no no", "nine nine nine", "thank you thank you", "5, 5, 5"):
        assert repeated_phrase(said.replace(",", "").split()) is None, said
    for looped in ("9, 9, 9, 9, 9, 9, 9, 9", "10 of clubs 10 of clubs 10 of clubs", "password password password password password"):
        assert looks_looped(looped), looped
    assert cut_repeats("10 of clubs 10 of clubs 10 of clubs") == "10 of clubs"
    assert cut_repeats("5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5") == "5, 5, 5, 5"


@pytest.mark.slow
def test_a_digit_said_down_a_phone_line_after_a_question_for_a_number_is_heard_as_one(engines):
    from agent.messages import Expectation
    from benchmarks.short_answers import telephone

    digits = "zero one two three four five six seven eight nine".split()
    number = Expectation("number")
    heard = {voice: [engines.transcriber.transcribe(telephone(speaker(voice)(word)), number) for word in digits]
             for voice in ("joe", "espeak:en-us")}
    right = sum(said == str(d) for said_by_voice in heard.values() for d, said in enumerate(said_by_voice))
    assert right >= 19, heard
    say = speaker("espeak:en-us")
    assert numbers_as_digits("four seven one nine") in engines.transcriber.transcribe(telephone(say("four seven one nine")), number)
    for words in ("no", "I don't have one"):  # what a customer says instead stays as said
        assert comparable(engines.transcriber.transcribe(telephone(say(words)), number)) == comparable(words)


@pytest.mark.slow
@pytest.mark.parametrize("voice,least_right", [("joe", 0.7), ("kokoro:af_heart", 0.8), ("espeak:en-us", 0.5), ("espeak:en-gb", 0.5)])
def test_short_utterances_come_back_without_loops(engines, voice, least_right):
    say = speaker(voice)
    heard = [engines.transcriber.transcribe(say(text)) for text in UTTERANCES]
    loops = [(text, out) for text, out in zip(UTTERANCES, heard) if looks_looped(out)]
    assert loops == [], "the decoder ran away"
    errors, words = map(sum, zip(*(word_errors(text, out) for text, out in zip(UTTERANCES, heard))))
    right = np.mean([comparable(out) == comparable(text) for text, out in zip(UTTERANCES, heard)])
    print(f"{voice}: {right:.0%} of {len(UTTERANCES)} short utterances heard exactly, WER {errors / words:.1%}")
    assert 1 - errors / words >= least_right, list(zip(UTTERANCES, heard))


def test_a_spoken_order_number_reaches_the_conversation_as_digits(engines):
    # espeak-ng says it the same way every run (Piper's voice is sampled: "479" came back once in a fresh clone's run).
    heard = engines.transcriber.transcribe(speaker("espeak:en-us")("my order number is four seven two nine"))
    assert "4729" in heard, heard


def test_the_faqs_own_names_are_heard_and_silence_stays_silent(engines):
    entries, questions = FAQ_WORD_QUESTIONS["bike shop"]
    words = faq_vocabulary((t for e in entries for t in e.texts), engines.transcriber.whisper.tokenizer)
    assert {"Brompton", "Shimano", "Rohloff"} <= set(words)
    biased = engines.transcriber.with_vocabulary(lambda: words)
    say = speaker("espeak:en-us")  # the same audio every run (Piper's voice is sampled)
    spoken_questions = [(say(question), word) for question, word in questions]
    heard = [biased.transcribe(audio) for audio, _ in spoken_questions]
    found = sum(word.lower() in text.lower() for (_, word), text in zip(spoken_questions, heard))
    unbiased = sum(word.lower() in engines.transcriber.transcribe(audio).lower() for audio, word in spoken_questions)
    print(f"bike-shop names heard in {found} of {len(questions)} questions with the FAQ's words, {unbiased} without")
    assert found >= 3 and found > unbiased, heard
    assert biased.transcribe(np.zeros(32000, np.float32)) == "", "the prompt's words must not be heard in silence"


def test_numbers_in_words_or_digits_match_the_same_entry(engines):
    from agent.answer.answerer import FaqAnswerer
    from agent.answer.faq import FaqEntry

    faq = [FaqEntry("Do you ship internationally?", "Yes, we ship to over forty countries."),
           FaqEntry("How much does shipping cost?", "Standard shipping costs 4.99 dollars, free over 50 dollars.")]
    answerer = FaqAnswerer(faq, engines.answerers.base.encoders, 0.3)
    assert np.array_equal(answerer.scores("do you ship to forty countries"), answerer.scores("do you ship to 40 countries"))
    assert answerer.answer("is shipping free over fifty dollars").matched_question == "How much does shipping cost?"


@pytest.mark.slow
async def test_a_customer_who_hesitates_is_not_cut_off_and_one_who_is_done_is_answered_at_once(engines, config):
    from agent import metrics
    from agent.conversation import Conversation
    from benchmarks.speech_sets import hesitating

    async def feed(conversation, audio: np.ndarray) -> None:
        """In real time, as a call hears it: the model must have its say before a long silence would end the turn anyway."""
        import asyncio
        import time

        start = time.perf_counter()
        for i in range(0, len(audio), 320):
            conversation.hear(audio[i : i + 320])
            await asyncio.sleep(max(0.0, start + (i + 320) / 16000 - time.perf_counter()))

    def ended(by: str) -> float:
        return metrics.REGISTRY.get_sample_value("avatar_turns_ended_total", {"by": by}) or 0.0

    assert engines.end_of_turn is not None, "the shipped config ends turns with the model"
    audio, resume = hesitating("kokoro:af_heart", "My order number is four seven two nine", 4, 0.8)
    events = []
    conversation = Conversation("hesitant", engines.stages_for(config.tenant("demo")), config.hear, events.append)
    await feed(conversation, np.concatenate([audio, np.zeros(32000, np.float32)]))
    await conversation.settled()
    said = [e.text for e in events if e.type == "user"]
    assert len(said) == 1 and "4729" in said[0], f"one turn, the whole of it: {said}"
    await conversation.close()

    by_model = ended("model")
    events.clear()
    conversation = Conversation("done", engines.stages_for(config.tenant("demo")), config.hear, events.append)
    question = speaker("kokoro:af_heart")("What are your opening hours?")
    await feed(conversation, np.concatenate([question, np.zeros(32000, np.float32)]))
    await conversation.settled()
    assert [e.text for e in events if e.type == "user"] == ["What are your opening hours?"]
    assert ended("model") == by_model + 1, "the model ended the finished question, not the long silence"
    await conversation.close()


def test_words_that_go_on_keep_the_turn_open():
    from agent.hear.turn_model import sounds_unfinished, turn_is_done

    for text in ("I want to", "My order number is", "Um,", "Could I speak to", "and also", "I would like to ask about shipping and"):
        assert sounds_unfinished(text), text
    for text in ("What are your opening hours?", "Can I return it?", "Thank you", "My order number is 4729."):
        assert not sounds_unfinished(text), text
    assert not turn_is_done(0.9, Heard("I want to"), "en") and turn_is_done(0.9, Heard("I want to"), "de"), "the words are read in English only"
    assert not turn_is_done(0.2, Heard("Where is my order?"), "en") and turn_is_done(0.9, Heard("Where is my order?"), "en")
    assert not turn_is_done(0.9, Heard("I want to kill.", ending=0.1), "en"), "an ending Whisper is unsure of waits"


def test_whisper_is_unsure_of_a_clipped_last_word(engines):
    """A sentence cut just after "to" is heard as something else, closed with a stop Whisper is unsure of (or as words
    that plainly go on); a whole question ends surely."""
    from agent.hear.turn_model import SURE_ENDING, sounds_unfinished
    from benchmarks.speech_sets import hesitating

    audio, resume = hesitating("espeak:en-us", "I want to change my delivery address", 3, 0.4)
    cut = resume - int(0.4 * 16000)
    clipped = engines.transcriber.hear_so_far(np.concatenate([audio[:cut], np.zeros(4800, np.float32)]))
    whole = engines.transcriber.hear_so_far(np.concatenate([speaker("espeak:en-us")("Where is my order?"), np.zeros(4800, np.float32)]))
    assert whole.text and whole.ending >= SURE_ENDING, whole
    assert clipped.ending < SURE_ENDING or sounds_unfinished(clipped.text), clipped
