"""Reading raw datasets: local files (what `dvc pull` restores into data/) or hub ids.

Hub ids need a network and are kept for users who have one; every default and every test reads the
local copies, through the same `datasets` builders.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import datasets

from transferflow.files import DataError  # noqa: F401 (raised here; callers import it from here too)


def _is_local(source: str) -> bool:
    return source.startswith((".", "/")) or Path(source).exists() or source.startswith("data/")


def _require_files(folder: Path, names: list[str]) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder} is missing: run `dvc pull` to restore data/ from the DVC remote")
    paths = [folder / n for n in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"missing data file(s) {', '.join(missing)}: run `dvc pull` (or `dvc checkout`) to restore them")
    return paths


def read_text_file(path: Path) -> str:
    """A file's text, or a DataError naming the file (and the line) when it is binary or not UTF-8."""
    data = path.read_bytes()
    if b"\0" in data:
        raise DataError(f"{path} is binary (it holds NUL bytes), not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte {data[err.start]:#04x} at offset {err.start}); "
                        "save the file as UTF-8") from None


def check_tsv(path: Path, columns: tuple[str, ...]) -> None:
    """Refuse an empty, binary, non-UTF-8 or ragged tab-separated file with its path and line.

    Hand-written: datasets' csv builder reports each of these as a pandas error naming neither the file
    nor the line (and a row with no tab comes back as a row with an empty label).
    """
    text = read_text_file(path)
    if not text.strip():
        raise DataError(f"{path} is empty: expected a header line ({'<TAB>'.join(columns)}) and rows")
    lines = text.rstrip("\n").split("\n")
    header = lines[0].rstrip("\r").split("\t")
    if not set(columns) <= set(header):
        raise DataError(f"{path}: expected columns {', '.join(columns)} (prepare.text_column, prepare.label_column); "
                        f"found {header}")
    if len(lines) < 2:
        raise DataError(f"{path} has a header and no rows")
    for number, line in enumerate(lines[1:], start=2):
        if (fields := line.count("\t") + 1) != len(header):
            raise DataError(f"{path}:{number}: expected {len(header)} tab-separated fields "
                            f"({'<TAB>'.join(header)}), found {fields}: {line[:80]!r}")


TASK_FORMATS = {".tsv": "csv", ".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
"""File endings a labelled task may come in, and the `datasets` builder that reads each."""


def _split_file(folder: Path, split: str) -> Path:
    """The one file `<split>.<ending>` of a task folder."""
    found = [folder / f"{split}{ending}" for ending in TASK_FORMATS if (folder / f"{split}{ending}").is_file()]
    if not found:
        hint = "" if split == "train" else ", or set prepare.test_split (null carves test from train)"
        raise DataError(f"missing data file(s) {folder / split}.tsv (or {', '.join(list(TASK_FORMATS)[1:])}): "
                        f"run `dvc pull` (or `dvc checkout`) to restore them{hint}")
    if len(found) > 1:
        raise DataError(f"{folder} holds {' and '.join(f.name for f in found)}: keep one file per split")
    return found[0]


def _read_split_file(path: Path, columns: tuple[str, str]) -> datasets.Dataset:
    """One split file as a Dataset; its text is checked first so that an error names the file and line."""
    if path.suffix == ".tsv":
        check_tsv(path, columns)
        options = dict(delimiter="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)
    elif path.suffix in (".csv", ".jsonl"):
        header = 1 if path.suffix == ".csv" else 0
        if len([line for line in read_text_file(path).splitlines() if line.strip()]) <= header:
            raise DataError(f"{path} holds no rows")
        options = dict(keep_default_na=False) if path.suffix == ".csv" else {}  # a text "NA" stays a text
    else:
        options = {}
    try:
        ds = datasets.load_dataset(TASK_FORMATS[path.suffix], data_files=str(path), split="train", **options)
    except Exception as err:
        raise DataError(f"cannot parse {path} as {path.suffix[1:].upper()}: {err}") from err
    if not len(ds):
        raise DataError(f"{path} holds no rows")
    return ds


def load_labelled_task(source: str, text_column: str, label_column: str,
                       test_split: str | None) -> tuple[datasets.DatasetDict, dict[str, tuple[str, int | None]]]:
    """A labelled text-classification task as {train[, test]} with columns `text`, `label`, and where
    each split came from: (file or hub split, the file line of its first row, or None).

    `source` is a folder of split files (`train.<ending>`, and `<test_split>.<ending>` when a test
    split is named), a single file (train only: test is carved from it later), or a hub id
    (`name/config`, e.g. `glue/sst2`). Endings: TASK_FORMATS.
    """
    columns = (text_column, label_column)
    if _is_local(source):
        path = Path(source)
        if not path.exists():
            raise DataError(f"{path} is missing: run `dvc pull` to restore data/ from the DVC remote")
        files = {"train": path} if path.is_file() else \
            {"train": _split_file(path, "train")} | ({"test": _split_file(path, test_split)} if test_split else {})
        if path.is_file() and path.suffix not in TASK_FORMATS:
            raise DataError(f"{path}: a task file ends in one of {', '.join(TASK_FORMATS)}")
        raw = datasets.DatasetDict({split: _read_split_file(f, columns) for split, f in files.items()})
        # the file line of a split's first row: after a header line (tsv, csv), or the first (jsonl)
        first_line = {".tsv": 2, ".csv": 2, ".jsonl": 1}
        origins = {split: (str(f), first_line.get(f.suffix)) for split, f in files.items()}
    else:
        name, _, config = source.partition("/")
        hub = datasets.load_dataset(name, config or None)
        wanted = ["train"] + ([test_split] if test_split else [])
        if missing := [s for s in wanted if s not in hub]:
            raise DataError(f"{source} has no split {', '.join(missing)} (it has {', '.join(hub)}): set prepare.test_split")
        raw = datasets.DatasetDict({"train": hub["train"]} | ({"test": hub[test_split]} if test_split else {}))
        origins = {split: (f"{source} {s}", None) for split, s in zip(raw, wanted)}
    for split, ds in raw.items():
        if not set(columns) <= set(ds.column_names):
            raise DataError(f"{origins[split][0]}: expected columns {', '.join(columns)} (prepare.text_column, "
                            f"prepare.label_column); found {ds.column_names}")
    raw = raw.select_columns(list(columns))
    return raw.rename_columns({c: n for c, n in zip(columns, ("text", "label")) if c != n}), origins


CONLL_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}
"""CoNLL-2003's standard splits as files (valid = testa, test = testb)."""


def _read_conll(path: Path, tag_id: dict[str, int]) -> dict[str, list]:
    """Sentences of one CoNLL file: the first column is the word, the last the tag.

    Hand-written: `datasets` has no CoNLL builder (the hub's conll2003 is a loading script, which
    datasets 3+ no longer runs). Every line of a file must have as many columns as its first one, so a
    truncated or merged line is an error rather than a silently shifted tag.
    """
    tokens, tags, words, labels, width = [], [], [], [], None
    lines = path.read_text().splitlines()
    for number, line in enumerate([*lines, ""], start=1):
        columns = line.split()
        width = width or len(columns)  # the first line sets the width (a -DOCSTART- line has it too)
        if not columns or columns[0] == "-DOCSTART-":  # sentence or document boundary
            if words:
                tokens.append(words)
                tags.append(labels)
            words, labels = [], []
            continue
        if len(columns) != width or width < 2:
            raise DataError(f"{path}:{number}: expected {max(width, 2)} columns (word ... tag), found "
                            f"{len(columns)}: {line!r}")
        if columns[-1] not in tag_id:
            raise DataError(f"{path}:{number}: unknown tag {columns[-1]!r}; prepare.label_names has {list(tag_id)}")
        words.append(columns[0])
        labels.append(tag_id[columns[-1]])
    return {"tokens": tokens, "tags": tags}


def load_conll(source: str, tag_names: list[str]) -> datasets.DatasetDict:
    """A CoNLL-format NER task as {train, validation, test} with columns `tokens` (words) and `tags`
    (one BIO tag per word, a Sequence of ClassLabel with `tag_names` in that id order).

    Local: a folder with train.txt, valid.txt, test.txt (`word ... tag` per line, blank line between
    sentences, `-DOCSTART-` lines dropped). Otherwise a hub id such as `conll2003` (needs a network),
    whose `ner_tags` are mapped to `tag_names` by name.
    """
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "tags": datasets.Sequence(datasets.ClassLabel(names=tag_names))})
    tag_id = {name: i for i, name in enumerate(tag_names)}
    if _is_local(source):
        paths = _require_files(Path(source), list(CONLL_FILES.values()))
        return datasets.DatasetDict({split: datasets.Dataset.from_dict(_read_conll(path, tag_id), features=features)
                                     for split, path in zip(CONLL_FILES, paths)})
    raw = datasets.load_dataset(source)
    hub_names = raw["train"].features["ner_tags"].feature.names
    unknown = sorted(set(hub_names) - set(tag_id))
    if unknown:
        raise DataError(f"{source} has tags {unknown} that prepare.label_names ({tag_names}) lacks")
    remap = [tag_id[name] for name in hub_names]
    raw = raw.map(lambda e: {"tags": [remap[t] for t in e["ner_tags"]]},
                  remove_columns=[c for c in raw["train"].column_names if c != "tokens"])
    return datasets.DatasetDict({split: raw[split].cast(features) for split in CONLL_FILES})


def load_ag_news(source: str) -> datasets.Dataset:
    """AG News as one labelled split: `text` (title and description), `label` (World, Sports, ...).

    Only upstream's test split is read: it is the only one stored locally (data/ag_news/README.md);
    the prepare stage carves train, validation and test from it.
    """
    if _is_local(source):
        test, classes = _require_files(Path(source), ["test.csv", "classes.txt"])
        names = [line.strip() for line in classes.read_text().splitlines() if line.strip()]
        try:
            raw = datasets.load_dataset("csv", data_files={"test": str(test)}, split="test",
                                        column_names=["label", "title", "description"], keep_default_na=False)
        except Exception as err:
            raise DataError(f"cannot parse {test} as AG News CSV (class, title, description): {err}") from err
        bad = sorted(set(raw["label"]) - set(range(1, len(names) + 1)))
        if bad:
            raise DataError(f"{test}: class indexes {bad} are outside 1..{len(names)} ({classes})")
        # Upstream writes line breaks inside descriptions as a backslash; labels are 1-based.
        ds = raw.map(lambda e: {"text": f"{e['title']} {e['description']}".replace("\\", " "),
                                "label": e["label"] - 1}, remove_columns=["title", "description"])
    else:
        ds = datasets.load_dataset(source, split="test")
        names = ds.features["label"].names
    return ds.select_columns(["text", "label"]).cast_column("label", datasets.ClassLabel(names=names))


# WikiText's tokenized variant splits numbers and hyphens ("3 @.@ 5", "role @-@ playing") and writes
# rare words as <unk>; undo the splits and map <unk> to the tokenizer's [UNK].
_WIKITEXT_JOINS = [(re.compile(r" @(.)@ "), r"\1"), (re.compile(r"<unk>"), "[UNK]")]


def clean_corpus_line(line: str) -> str:
    line = line.strip()
    for pattern, repl in _WIKITEXT_JOINS:
        line = pattern.sub(repl, line)
    return line


def load_text_corpus(source: str) -> datasets.DatasetDict:
    """Unlabelled text as {train, validation} with one column `text` (one paragraph per row)."""
    if _is_local(source):
        train, valid = _require_files(Path(source), ["train.txt", "valid.txt"])
        for path in (train, valid):  # datasets' text builder fails on an empty file without naming it
            if not read_text_file(path).strip():
                raise DataError(f"{path} is empty: the corpus needs one paragraph of text per line")
        raw = datasets.load_dataset("text", data_files={"train": str(train), "validation": str(valid)})
    else:
        name, _, config = source.partition("/")
        raw = datasets.load_dataset(name, config or None)
        raw = datasets.DatasetDict(train=raw["train"], validation=raw["validation"])
    return raw
