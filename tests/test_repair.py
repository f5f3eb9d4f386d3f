"""The repair stage on spinner-damaged text: own fixtures (a football club story), plus the real seeds."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from docclean.config import RepairConfig
from docclean.document import Document, Repair
from docclean.repair import RepairModel, main, repair

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO.parent / "shared" / "seeds"

# A story about a football club, spun the way seed 002 was: end -> conclude, tell -> inform and
# big -> huge inside words; need -> necessary and make -> build as whole words.
SPUN = (
    "Northfield United confirmed on Monday that the club intconcludes to rebuild its west stand before the "
    "new season. Club secretary Maren Kowalczyk said the attconcludeance figures of the last two years made "
    "the case, and that spconcludeing on the stadium would be financed without new debt.\n"
    "The hugegest obstacle is the planning permission, which the council is expected to grant in March. "
    "Supporters stressed the necessary for clear communication about temporary seating. \u201cIt doesn\u2019t "
    "build sense to rush this,\u201d Kowalczyk said, adding that ininformigent planning would keep 3,500 "
    "season-ticket holders on board. Details are at https://northfield-united.example/stand.\n"
)
EXPECTED = {
    "intconcludes": "intends",
    "attconcludeance": "attendance",
    "spconcludeing": "spending",
    "hugegest": "biggest",
    "necessary": "need",
    "build": "make",
    "ininformigent": "intelligent",
}

CLEAN = (
    "Northfield United confirmed on Monday that the club intends to rebuild its west stand. The biggest "
    "obstacle is planning permission; it doesn\u2019t make sense to rush, said Maren Kowalczyk, whose "
    "predecessor Tomasz Haddad-Loiseau led the club from 2014 to 2019. The French press called it "
    "\u00ab une autonomie strat\u00e9gique \u00bb du club. See https://northfield-united.example/stand?id=42 "
    "or run `stand.plan(rows=3500)` for the seating model.\n"
)


@pytest.fixture(scope="module")
def model() -> RepairModel:
    return RepairModel.load()


def _fresh_model() -> RepairModel:
    return RepairModel.load()


def test_repairs_every_spun_word_and_nothing_else(model):
    text, repairs = model.repair_text(SPUN, "fix")
    assert {r.original: r.replacement for r in repairs} == EXPECTED
    assert "Kowalczyk" in text and "3,500" in text and "https://northfield-united.example/stand" in text
    assert "intends to rebuild" in text and "the need for clear" in text and "make sense" in text


def test_offsets_point_into_the_text_before_repair(model):
    _, repairs = model.repair_text(SPUN, "fix")
    for r in repairs:
        assert SPUN[r.offset : r.offset + len(r.original)] == r.original
        assert 0.0 < r.confidence <= 1.0
    assert {r.rule for r in repairs} == {"spinner_inword", "spinner_phrase"}


def test_clean_text_with_names_urls_code_and_french_is_untouched(model):
    assert model.repair_text(CLEAN, "fix") == (CLEAN, [])


def test_other_language_hint_or_text_is_left_alone(model):
    assert model.repair_text(SPUN, "fix", language="fr") == (SPUN, [])
    french = "Le club intconcludes de reconstruire la tribune ouest avant la nouvelle saison, a dit la secrétaire."
    assert model.repair_text(french, "fix") == (french, [])


def test_whole_words_only_in_documents_with_inword_damage(model):
    sentence = "Supporters stressed the necessary for clear communication. It doesn\u2019t build sense to rush."
    assert model.repair_text(sentence, "fix") == (sentence, [])


def test_stage_modes():
    doc = Document(doc_id="d1", source_path="x.txt", source_sha256="0", text=SPUN)
    model = _fresh_model()
    off, edits = repair(doc, RepairConfig(mode="off"), model)
    assert off is doc and edits == []

    flagged, edits = repair(doc, RepairConfig(mode="flag"), model)
    assert flagged.text == SPUN and len(flagged.repairs) == len(EXPECTED) == len(edits)

    fixed, edits = repair(doc, RepairConfig(mode="fix"), model)
    assert "intends" in fixed.text and all(isinstance(e, Repair) for e in edits)
    assert fixed.repairs == tuple(edits) and doc.repairs == ()  # the input is never mutated

    strict, _ = repair(doc, RepairConfig(mode="fix", min_confidence=1.0), model)
    assert strict.text == SPUN


def test_learn_counts_distinct_damaged_words_and_save_round_trips(tmp_path):
    model = _fresh_model()
    model.learn([SPUN, "The report said the minister intconcludes to attconclude the summit."])
    evidence = model.pairs[("end", "conclude")]
    assert {"intconcludes", "attconcludeance", "spconcludeing", "attconclude"} <= evidence.words

    model.save_pairs(tmp_path)
    table = pq.read_table(tmp_path / "repair_pairs.parquet").to_pylist()
    row = next(r for r in table if (r["original"], r["substitute"]) == ("end", "conclude"))
    assert row["distinct_words"] >= 4 and row["status"] == "auto" and row["in_thesaurus"]
    assert not list(tmp_path.glob(".repair_pairs.*"))  # the temporary file is gone

    reloaded = RepairModel.load(tmp_path)
    assert reloaded.pairs[("end", "conclude")].words == evidence.words


def test_rejected_pair_is_never_used(tmp_path):
    model = _fresh_model()
    model.learn([SPUN])
    model.pairs[("end", "conclude")].status = "rejected"
    model.save_pairs(tmp_path)
    text, repairs = RepairModel.load(tmp_path).repair_text(SPUN, "fix")
    assert "intconcludes" in text and all(r.original != "intconcludes" for r in repairs)


def test_cli_repairs_line_for_line_and_explains(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(SPUN))
    assert main(["--explain"]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == SPUN.count("\n")
    assert "intends" in out and "intconcludes" not in out
    assert "intconcludes -> intends" in err and "spinner_inword" in err


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"real seeds not found at {SEEDS}")
def test_real_seeds():
    model = _fresh_model()
    seeds = sorted(SEEDS.glob("*.txt"))
    texts = [p.read_text(encoding="utf-8") for p in seeds]
    model.learn(texts)
    for path, text in zip(seeds, texts):
        repaired, repairs = model.repair_text(text, "fix")
        if path.name.startswith("002_"):
            assert {(r.original, r.replacement) for r in repairs} == {
                ("intconcludes", "intends"), ("indepconcludeent", "independent"), ("spconcludeing", "spending"),
                ("innotifyigence", "intelligence"), ("hugegest", "biggest"), ("build", "make"),
                ("necessary", "need"),
            }
            assert len(repairs) == 8  # "necessary" twice
            assert "stressed the need for" in repaired and "emphasize the need to avoid" in repaired
            assert "doesn\u2019t make sense" in repaired and "autonomie" not in repaired
        else:
            assert repairs == [] and repaired == text, path.name


def _batch_evidence(texts: list[str]):
    """What one pipeline batch hands on: a model loaded from the archive state learns its documents."""
    model = _fresh_model()
    model.learn(texts)
    return model.learned_evidence()


def test_learned_evidence_holds_only_what_learn_saw(tmp_path):
    first = _fresh_model()
    first.learn([SPUN])
    first.save_pairs(tmp_path)
    second = RepairModel.load(tmp_path)
    assert second.learned_evidence().num_rows == 0  # loaded pairs are not this model's evidence
    second.learn(["The minister intconcludes to attconclude the summit."])
    rows = {(r["original"], r["substitute"]): r for r in second.learned_evidence().to_pylist()}
    assert rows[("end", "conclude")]["examples"] == ["attconclude", "intconcludes"]
    assert rows[("end", "conclude")]["occurrences"] == 2
    assert second.learned_evidence().schema == pq.read_table(tmp_path / "repair_pairs.parquet").schema


def test_merge_pairs_adds_batches_and_keeps_review_status(tmp_path):
    from docclean.repair import merge_pairs

    state, out = tmp_path / "state", tmp_path / "out"
    # A person reviewed the archive's pairs: one approved (no thesaurus lists it), one rejected.
    merge_pairs(None, [_batch_evidence(["The club intconcludes to rebuild; hugegest crowds came."])], state)
    table = pq.read_table(state / "repair_pairs.parquet").to_pylist()
    for row in table:
        if (row["original"], row["substitute"]) == ("big", "huge"):
            row["status"] = "rejected"
    table.append({"original": "tell", "substitute": "blab", "distinct_words": 1, "occurrences": 1,
                  "in_thesaurus": False, "status": "approved", "examples": ["inblabigence"]})
    from docclean.repair import _write_pairs

    _write_pairs(table, state)

    batch_a = _batch_evidence(["The report said the minister attconcludeed the summit."])
    batch_b = _batch_evidence(["Officials were spconcludeing more; the club intconcludes to stay."])
    merge_pairs(state, [batch_a, batch_b], out)
    merged = {(r["original"], r["substitute"]): r for r in pq.read_table(out / "repair_pairs.parquet").to_pylist()}
    end = merged[("end", "conclude")]
    assert set(end["examples"]) == {"intconcludes", "attconcludeed", "spconcludeing"}
    assert end["distinct_words"] == 3 and end["occurrences"] == 4 and end["status"] == "auto"
    assert merged[("big", "huge")]["status"] == "rejected"
    assert merged[("tell", "blab")]["status"] == "approved"
    assert not list(out.glob(".repair_pairs.*"))

    # A later run loads the merged pairs: the approved pair repairs, the rejected one never does.
    text = "The agency admitted its inblabigence had failed, and the hugegest protest followed."
    assert all(r.original != "inblabigence" for r in _fresh_model().repair_text(text, "fix")[1])
    later = RepairModel.load(out)
    repaired, repairs = later.repair_text(text, "fix")
    assert "intelligence had failed" in repaired
    assert "hugegest" in repaired and all(r.original != "hugegest" for r in repairs)


@pytest.mark.slow
def test_pipeline_persists_evidence_of_every_batch(tmp_path):
    from docclean import pipeline
    from docclean.config import load_config

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.txt").write_text(SPUN, encoding="utf-8")
    (inputs / "b.txt").write_text("The minister attconcludeed the summit and said the plan intconcludes to "
                                  "cut costs by a third, though critics doubted it.\n", encoding="utf-8")
    out = tmp_path / "archive"
    pipeline.run(inputs, out, load_config(run={"batch_size": 1}))
    rows = {(r["original"], r["substitute"]): r
            for r in pq.read_table(out / "_state" / "repair_pairs.parquet").to_pylist()}
    assert {"intconcludes", "attconcludeance", "spconcludeing", "attconcludeed"} <= set(rows[("end", "conclude")]["examples"])


def test_corpus_evidence_picks_the_reading_other_damaged_words_share():
    # Alone, "prepareing" reads best as "building" (the commonest word); four damaged words that only
    # train -> prepare explains make "training" the reading.
    first = "The squad finished its prepareing session early."
    alone = _fresh_model().repair_text(first, "flag", min_confidence=0.0)[1]
    assert [r.replacement for r in alone] != ["training"]
    model = _fresh_model()
    model.learn([first, "Every coach was prepareed abroad before the season.",
                 "The prepareers met the players on Monday.", "Each prepareee received a new kit."])
    _, repairs = model.repair_text(first, "flag", min_confidence=0.0)
    assert [r.replacement for r in repairs] == ["training"]


# Technical pages, as scraped from a machine-learning blog and a distribution's wiki: words no thesaurus
# knows ("pretrained", "ebuild") that a thesaurus happens to explain (tend -> train, merge -> build).
TECH_PAGES = [
    "We fine-tuned a pretrained encoder on the new labels. Pretraining took four days on eight GPUs, and "
    "the training loss kept falling. Training with a smaller batch gave the same accuracy in half the time.",
    "The pretraining corpus holds 2 billion tokens. Our pretrained checkpoints are public; the training "
    "scripts follow next month, together with notes on training stability and evaluation.",
    "To package the tool, write an ebuild and test it locally before you submit it to the overlay.",
    "Each ebuild declares its dependencies; the ebuild for version 2.1 adds a USE flag for the docs.",
    "Maintainers review every ebuild by hand. An ebuild that fails the checks is sent back with notes.",
    "Old ebuild files are removed after a release. The ebuild format is documented in the handbook.",
]


def test_forms_of_one_technical_word_do_not_make_a_pair_and_a_recurring_term_stays():
    model = RepairModel.load(None)
    model.learn(TECH_PAGES)
    for page in TECH_PAGES:
        text, repairs = model.repair_text(page)
        assert repairs == [] and text == page  # no "tending", no "emerge"
    # the spun story still gets every repair once the technical pages are in the corpus too
    model.learn([SPUN])
    text, repairs = model.repair_text(SPUN)
    assert {r.original: r.replacement for r in repairs} == EXPECTED


# A heavily spun story: the spinner's "can -> sack" shows inside several words, so a whole "sack" where
# "can" fits the neighbours is its work too; a real sack (of potatoes) is not.
_SACK_STORIES = [
    "The sackdidate said the sackcellation was signifisackt, and that voters sack use the new ssackner.",
    "A second sackdidate promised that the ssackning of ballots would be signifisackt; you sack actually see it.",
    "Officials said the sackcellation of the vote was a significant blow to the sackdidate, "
    "who carried a sack of potatoes to the stage.",
]


def test_whole_word_swap_learned_from_inword_damage_is_repaired_where_context_fits():
    model = _fresh_model()
    model.learn(_SACK_STORIES)
    text, repairs = model.repair_text(_SACK_STORIES[1])
    assert "you can actually see it" in text
    assert ("sack", "can", "spinner_phrase") in {(r.original, r.replacement, r.rule) for r in repairs}
    text, repairs = model.repair_text(_SACK_STORIES[2])
    assert "a sack of potatoes" in text
    assert all(r.rule == "spinner_inword" for r in repairs)


def test_learned_swap_odds_follow_the_neighbours():
    from collections import Counter

    model = _fresh_model()
    model.learn(_SACK_STORIES)
    model.repair_text(_SACK_STORIES[0])  # estimates the pairs
    counts = Counter({"sack": 1})
    fits = model._learned_swap_logit("sack", "can", "you", "actually", counts, 4)
    misfits = model._learned_swap_logit("sack", "can", "a", "of", counts, 4)
    assert fits > 2.2 > misfits  # "you can actually" vs "a sack of"
    # The text's own counts: among many intact "sack"s and no "can", a swap is unlikely.
    assert model._learned_swap_logit("sack", "can", "you", "actually", Counter({"sack": 6}), 4) < fits - 2


def test_a_word_containing_the_original_is_no_substitute():
    # "works" for "work" would read "worksed" as "worked": a spinner swaps a word for another word.
    readings = _fresh_model()._inword_candidates("worksed")
    assert readings and all(c.original not in c.substitute and c.substitute not in c.original for c in readings)


# era -> epoch inside many different words: the corpus proves the pair, so a rarer restored word
# ("deliverables", below the usual frequency floor) is restored too; alone it is not.
_EPOCH_STORIES = [
    "The opepochtion was a success, said the genepochl manager of the libepochl party.",
    "Sevepochl delivepochbles were late, and the opepochtors blamed the genepochl strike.",
    "A litepochl reading of the contract puts the delivepochbles in March, the modepochtor said.",
]


def test_a_proven_pair_restores_a_rarer_word():
    alone = _fresh_model().repair_text("Two delivepochbles were late.", "flag")[1]
    assert alone == []
    model = _fresh_model()
    model.learn(_EPOCH_STORIES)
    _, repairs = model.repair_text(_EPOCH_STORIES[2], "flag")
    assert {r.original: r.replacement for r in repairs} == {
        "litepochl": "literal", "delivepochbles": "deliverables", "modepochtor": "moderator"}


def test_spun_text_odds_grow_with_the_evidence():
    from docclean.repair import _token_at

    model = _fresh_model()
    model.learn([SPUN])
    model._refresh()
    text = SPUN + "The mayor will adcurry the supporters.\n"
    tok = _token_at(text, text.index("adcurry"), "adcurry", False)
    cand = next(c for c in model._readings("adcurry") if c.repaired == "address")
    from docclean.repair import _Reading

    reading = _Reading(0.0, (cand.original, cand.substitute), cand, "adcurry")
    r = Repair("spinner_inword", "adcurry", "address", tok.start, 0.8)
    weak = model._spun_logit(tok, r, reading, 1, True, 1, [])
    assert model._spun_logit(tok, r, reading, 5, True, 1, []) > weak  # more other substitutions in the text
    assert model._spun_logit(tok, r, reading, 1, True, 4, []) < weak  # a word the text keeps repeating
    model._corpus_words["address"] += 50
    assert model._spun_logit(tok, r, reading, 1, True, 1, []) > weak  # the corpus uses the restored word


def test_the_reading_the_text_itself_uses_intact_wins():
    # plant -> works: "worksed" reads as the commoner "turned" on frequency alone, but a gardening text that
    # says "planted" elsewhere makes "planted" the reading (READING_LOGIT: the restored word's lift in the text).
    garden = ("Our garden has tomato plants along the fence. We worksed the seedlings in April, and planting "
              "more plants in May gave a second crop. Last year we planted beans there.")
    repairs = _fresh_model().repair_text(garden, "flag", min_confidence=0.0)[1]
    assert [r.replacement for r in repairs] == ["planted"]
    elsewhere = garden.replace("Last year we planted beans there.", "")
    assert [r.replacement for r in _fresh_model().repair_text(elsewhere, "flag", min_confidence=0.0)[1]] != ["planted"]


# rent -> split, proven inside several other words; "spliting" is in the vocabulary (a rare misspelling of
# "splitting"), so only a heavily spun text with a proven pair gets it repaired.
_RENT_STORIES = [
    "The cursplit splital market is diffesplit from last year, said the pasplits.",
    "Appasplitly the cursplit splital prices are diffesplit in every town.",
    "Renting a flat is popular. Many families say that spliting is cheaper than buying, and renting keeps them "
    "free; the splital agency intconcludes to say so, as spconcludeing on homes is the hugegest cost.",
]


def test_a_rare_vocabulary_word_is_repaired_through_a_proven_pair_in_a_spun_text():
    model = _fresh_model()
    model.learn(_RENT_STORIES)
    repairs = {r.original: r.replacement for r in model.repair_text(_RENT_STORIES[2], "flag")[1]}
    assert repairs["spliting"] == "renting" and repairs["splital"] == "rental"
    alone = {r.original for r in _fresh_model().repair_text(_RENT_STORIES[2], "flag")[1]}
    assert "spliting" not in alone  # no corpus proves rent -> split: a rare word stays as written
    clean = "Many families say that spliting the bill is fair."
    assert _fresh_model().repair_text(clean, "flag")[1] == []


# all -> every inside many words: in a heavily spun text the whole-word swap model also restores the function
# word where its neighbours want "all" ("every of the"), and leaves a genuine "every customer" alone.
_ALL_STORIES = [
    "The smevery shop will cevery its suppliers fineveryy, said the owner, who toteveryy agreed.",
    "It was a smevery price, and usueveryy the staff cevery back; fineveryy the shop reopened.",
    "We cevery every customer. Fineveryy, every of the smevery shops usueveryy close at six, toteveryy on time.",
]


def test_a_spun_function_word_is_restored_only_where_the_original_fits():
    model = _fresh_model()
    model.learn(_ALL_STORIES)
    text, repairs = model.repair_text(_ALL_STORIES[2])
    assert text == "We call every customer. Finally, all of the small shops usually close at six, totally on time."
    assert ("every", "all", "spinner_phrase") in {(r.original, r.replacement, r.rule) for r in repairs}
    # a text with no in-word damage is never touched, whatever its function words
    assert _fresh_model().repair_text("Every of the shops closed.") == ("Every of the shops closed.", [])
