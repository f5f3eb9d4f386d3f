"""Language: deterministic langdetect on a bounded prefix; keep-list filtering to rejects."""

from docclean.config import LanguageConfig
from docclean.document import Document
from docclean.language import detect, detect_language

EN = "The council approved the new budget on Thursday after a long debate about school repairs and roads. " * 3
FR = "Le conseil municipal a approuvé jeudi le nouveau budget après un long débat sur les écoles et les routes. " * 3


def test_detects_and_is_deterministic():
    cfg = LanguageConfig()
    results = {detect_language(FR, cfg) for _ in range(20)}
    assert len(results) == 1 and next(iter(results))[0] == "fr"
    assert detect_language(EN, cfg)[0] == "en"


def test_only_a_bounded_prefix_is_read():
    cfg = LanguageConfig(prefix_chars=300)
    assert detect_language(EN + FR * 50, cfg)[0] == "en"


def test_too_little_text_is_undetermined():
    assert detect_language("12 34 !!", LanguageConfig()) == ("und", 0.0)


def test_keep_list_rejects_other_languages_with_reason():
    doc = Document(doc_id="d", source_path="d.txt", source_sha256="", text=FR)
    out, _ = detect(doc, LanguageConfig(keep=["en"]))
    assert out.rejected and out.reject_reason == "language_filtered" and out.language == "fr"
    kept, _ = detect(doc, LanguageConfig(keep=["fr", "en"]))
    assert not kept.rejected and kept.language_score > 0.9


def test_inlined_ngram_extraction_gives_langdetects_own_ngrams():
    """The seeded sampling picks n-grams by position: the list must be langdetect's, item for item."""
    import random

    from langdetect.detector import Detector

    from docclean import language

    factory = language._factory()
    rnd = random.Random(11)
    alphabet = "aAbBzZ éÉñÑßœÀÁ\u0219\u021b ДдЖж 中文字 ひらがな カタカナ 한국어 عربي ’“”—-.,!?0123456789\n\t ABC"
    texts = ["The Town Council met on Tuesday. NATO and the EU said so.", "Le Conseil européen s’est réuni à Bruxelles."]
    texts += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 300))) for _ in range(300)]
    for text in texts:
        theirs, ours = Detector(factory), language._Detector(factory)
        theirs.append(text)
        ours.append(text)
        assert ours._extract_ngrams() == Detector._extract_ngrams(theirs)


def test_the_profile_table_cache_gives_the_same_table_and_never_breaks_a_run(tmp_path, monkeypatch):
    # The table built from langdetect's JSON profiles is cached on disk for the next process. The cached
    # one must be the same table, and a damaged or unwritable cache must only cost the slow path.
    import numpy as np

    from docclean import language

    monkeypatch.setenv("DOCCLEAN_CACHE_DIR", str(tmp_path / "cache"))
    paths = language._profile_files()
    built_languages, built = language._load_table(paths)
    (cached_file,) = (tmp_path / "cache").glob("langdetect-profiles-*.npz")
    languages, cached = language._load_table(paths)
    assert languages == built_languages and len(languages) == 55
    assert list(cached) == list(built) and np.array_equal(cached.matrix, built.matrix)
    assert cached["the"] == built["the"] and cached.numbers(["the", "a"]) == built.numbers(["the", "a"])

    for damaged in (b"not a numpy archive", cached_file.read_bytes()[:1000]):  # another format; cut short
        cached_file.write_bytes(damaged)
        assert np.array_equal(language._load_table(paths)[1].matrix, built.matrix)  # rebuilt, and re-cached
        assert np.array_equal(language._load_table(paths)[1].matrix, built.matrix)

    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    monkeypatch.setenv("DOCCLEAN_CACHE_DIR", str(blocked))  # can't create a folder there
    assert np.array_equal(language._load_table(paths)[1].matrix, built.matrix)
