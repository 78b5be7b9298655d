"""prepare: raw data -> clean, deduplicated, leak-checked splits and a data card.

    python -m tasks.prepare [--params params.yaml]

Task data (SST-2, or yours: a folder of split files, one file, or a hub id, with the columns the params
name): the test split is the one `prepare.test_split` names (GLUE's dev set: its test set has no
labels) or carved from train; validation is carved from train's whole texts with a seed, their phrases
dropped from train (`prepare.validation_whole_texts`), so selection never sees test and is not fooled
by memorising. NER task data (CoNLL-2003, task_type ner): its own train, validation and test splits,
kept as the benchmark fixes them. Auxiliary task (AG News, for the
multitask strategy): only its test split exists locally, so train, validation and test are all carved
from it with a seed. Corpus (WikiText-2): paragraphs for pretraining, headings and blank lines dropped.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import datasets
import mlflow

from transferflow.config import Params, PrepareParams
from transferflow.data import (DataError, clean_corpus_line, load_ag_news, load_conll, load_labelled_task,
                               load_text_corpus)
from transferflow.files import atomic_dir, save_prepared, write_json
from transferflow.stage import StageSpec, stage_cli
from transferflow.tracking import stage_run

OUT = Path("artifacts/prepare")
STAGE = StageSpec(
    name="prepare",
    params=("prepare",),
    # the data the params name, not fixed paths: new content at any source re-runs prepare
    deps=("${prepare.task_source}", "${prepare.corpus_source}", "${prepare.aux_task_source}"),
    outs=(str(OUT),),
    metrics=("metrics/prepare.json",),
)


class LeakageError(DataError):
    """A test text also appears in train: scores on test would overstate the model."""


def _normalise(example: dict) -> dict:
    return {"text": " ".join(str(example["text"]).split())}


def _dedupe(ds: datasets.Dataset) -> tuple[datasets.Dataset, int]:
    """Drop exact duplicate texts, keeping the first occurrence."""
    seen: set[str] = set()
    keep = [i for i, t in enumerate(ds["text"]) if not (t in seen or seen.add(t))]
    return ds.select(keep), len(ds) - len(keep)


def _content_hash(ds: datasets.Dataset) -> str:
    digest = hashlib.sha256()
    labels = ds["label"] if "label" in ds.column_names else [""] * len(ds)
    for text, label in zip(ds["text"], labels):
        digest.update(f"{text}\t{label}\n".encode())
    return digest.hexdigest()


def _card_entry(ds: datasets.Dataset, label_names: list[str] | None = None) -> dict:
    entry = {"rows": len(ds), "sha256": _content_hash(ds)}
    if label_names:
        counts = Counter(ds["label"])
        entry["labels"] = {label_names[k]: counts.get(k, 0) for k in range(len(label_names))}
    return entry


MIN_ROWS_PER_CLASS = 2
"""The fewest train rows a class may have: the stratified validation carve needs one for each side."""


def check_classes(raw: datasets.DatasetDict, p: PrepareParams) -> None:
    """Every name in prepare.label_names has train rows, and every split holds two classes or more:
    otherwise the model trains on (or is scored against) something other than what params promise."""
    for split, ds in raw.items():
        counts = Counter(ds["label"])
        if len(counts) < 2:
            only = ", ".join(p.label_names[k] for k in counts) or "none"
            raise DataError(f"{p.task_source} {split}: holds a single class ({only}); a classifier needs two or more")
        if split == "train":
            few = [f"{name} ({counts.get(k, 0)} rows)" for k, name in enumerate(p.label_names)
                   if counts.get(k, 0) < MIN_ROWS_PER_CLASS]
            if few:
                raise DataError(f"{p.task_source} train: prepare.label_names {p.label_names} do not match the data: "
                                f"{', '.join(few)}, need {MIN_ROWS_PER_CLASS} or more rows each")


TEXT_DTYPES = ("string", "large_string")
"""datasets' dtypes of a text column (its csv and json builders read large_string)."""


def check_label_ids(raw: datasets.DatasetDict, p: PrepareParams,
                    origins: dict[str, tuple[str, int | None]]) -> datasets.DatasetDict:
    """Every label a name of p.label_names or its integer id, then ids; an error names the first bad
    row (its file line where the format has lines)."""
    ids = {str(i): i for i in range(len(p.label_names))}
    valid = ids | {name: i for i, name in enumerate(p.label_names)}  # a name wins over an id it spells
    for split, ds in raw.items():
        bad = [(row, y) for row, y in enumerate(ds["label"]) if str(y) not in valid]
        if bad:
            (row, y), (origin, first_line) = bad[0], origins[split]
            where = f"{origin}:{row + first_line}" if first_line else f"{origin} row {row}"
            raise DataError(f"{where}: label {y!r} is neither a name nor an id of prepare.label_names "
                            f"{p.label_names} (0..{len(ids) - 1}); {len(bad)} such row(s) in {split}")
    # names, or a column with a bad value, were read as strings; once every value is valid, make them ids
    texts = any(ds.features["label"].dtype in TEXT_DTYPES for ds in raw.values())
    return raw.map(lambda e: {"label": valid[str(e["label"])]}) if texts else raw


MAX_PART_WORDS = 64
"""Longest run of words looked up as a part of another text (SST-2's longest sentence has 52 words)."""


def word_runs(text: str, max_words: int = MAX_PART_WORDS) -> Iterator[str]:
    """Every run of up to `max_words` consecutive words of `text`, the text itself included."""
    words = text.split()
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + max_words) + 1):
            yield " ".join(words[i:j])


def parts_of_other_texts(texts: list[str]) -> set[str]:
    """Texts that are a run of words inside another, longer text of the list. Hand-written: no
    library we use indexes phrases this way. Only runs that start with a short text's first word and
    have its length are looked up, so long documents cost little more than their words."""
    index = set(texts)
    lengths_by_first: dict[str, set[int]] = {}
    for text in index:
        if len(words := text.split()) <= MAX_PART_WORDS:
            lengths_by_first.setdefault(words[0], set()).add(len(words))
    found = set()
    for text in index:
        words = text.split()
        for i, first in enumerate(words):
            for n in lengths_by_first.get(first, ()):
                if n < len(words) and i + n <= len(words) and (run := " ".join(words[i:i + n])) in index:
                    found.add(run)
    return found


def carve(train: datasets.Dataset, size: int, p: PrepareParams,
          field: str) -> tuple[datasets.Dataset, datasets.Dataset, int]:
    """(train, carved, train texts dropped as parts of a carved text): `size` rows, stratified with
    `seed`; with validation_whole_texts, whole texts only (the field says why). `field` names the
    size's param in errors."""
    if size >= len(train):
        raise DataError(f"prepare.{field} ({size}) must be below the train rows ({len(train)})")
    if not p.validation_whole_texts:
        carved = train.train_test_split(test_size=size, seed=p.seed, stratify_by_column="label")
        return carved["train"], carved["test"], 0
    parts = parts_of_other_texts(train["text"])
    whole = train.select([i for i, t in enumerate(train["text"]) if t not in parts])
    if size >= len(whole):
        raise DataError(f"prepare.{field} ({size}) must be below the {len(whole)} train texts "
                        "that are no part of another; lower it, or set prepare.validation_whole_texts: false")
    carved = whole.train_test_split(test_size=size, seed=p.seed, stratify_by_column="label")["test"]
    inside = {run for text in carved["text"] for run in word_runs(text)}  # each text and its phrases
    keep = [i for i, t in enumerate(train["text"]) if t not in inside]
    return train.select(keep), carved, len(train) - len(keep) - len(carved)


def carve_description(size: int, dropped: int, p: PrepareParams) -> str:
    if p.validation_whole_texts:
        return (f"{size} whole texts carved from train, stratified, seed {p.seed}; "
                f"{dropped} train texts that are part of one dropped")
    return f"{size} rows carved from train, stratified, seed {p.seed}"


def names_from_data(raw: datasets.DatasetDict, p: PrepareParams) -> list[str]:
    """label_names null: train's distinct labels, sorted, when the data holds them as names."""
    if raw["train"].features["label"].dtype not in TEXT_DTYPES:
        raise DataError(f"{p.task_source}: its labels are numbers, so prepare.label_names must name them "
                        "(in id order); null takes names only from labels written as names")
    return sorted(set(raw["train"]["label"]))


def prepare_task(p: PrepareParams) -> tuple[datasets.DatasetDict, dict]:
    raw, origins = load_labelled_task(p.task_source, p.text_column, p.label_column, p.test_split)
    if p.label_names is None:
        p = p.model_copy(update={"label_names": names_from_data(raw, p)})
    raw = check_label_ids(raw, p, origins)
    labels = datasets.ClassLabel(names=p.label_names)
    raw = raw.map(_normalise).filter(lambda e: bool(e["text"])).cast_column("label", labels)
    check_classes(raw, p)
    train, train_dupes = _dedupe(raw["train"])
    if "test" in raw:
        test, test_dupes = _dedupe(raw["test"])
        test_split = origins["test"][0]
    else:  # one file, or test_split null: test is carved as validation is
        train, test, parts_dropped = carve(train, p.test_size, p, "test_size")
        test_dupes, test_split = 0, carve_description(p.test_size, parts_dropped, p)
    leaked = set(test["text"]) & set(train["text"])
    if leaked and p.leakage == "error":
        raise LeakageError(f"{len(leaked)} test texts also appear in train, e.g. {sorted(leaked)[0]!r}; "
                           "refusing to continue (test scores would be inflated); "
                           "prepare.leakage: drop_from_train drops them from train")
    if leaked:
        train = train.select([i for i, t in enumerate(train["text"]) if t not in leaked])
    if p.max_test_rows and len(test) > p.max_test_rows:
        test = test.shuffle(seed=p.seed).select(range(p.max_test_rows))
    train, validation, parts_dropped = carve(train, p.validation_size, p, "validation_size")
    if p.max_train_rows and len(train) > p.max_train_rows:
        train = train.shuffle(seed=p.seed).select(range(p.max_train_rows))
    splits = datasets.DatasetDict(train=train, validation=validation, test=test)
    card = {
        "source": p.task_source,
        "columns": {"text": p.text_column, "label": p.label_column},
        "test_split": test_split,
        "validation_split": carve_description(p.validation_size, parts_dropped, p),
        "duplicates_dropped": {"train": train_dupes, "test": test_dupes},
        "test_texts_dropped_from_train": len(leaked),
        "splits": {name: _card_entry(ds, p.label_names) for name, ds in splits.items()},
    }
    return splits, card


def _ner_card_entry(ds: datasets.Dataset, tag_names: list[str]) -> dict:
    """Sentences, words, entity mentions per type (read from the tags as seqeval reads them), content hash."""
    from seqeval.metrics.sequence_labeling import get_entities

    digest, entities = hashlib.sha256(), Counter()
    for words, tags in zip(ds["tokens"], ds["tags"]):
        names = [tag_names[t] for t in tags]
        digest.update(("\t".join(f"{w} {t}" for w, t in zip(words, names)) + "\n").encode())
        entities.update(kind for kind, _, _ in get_entities(names))
    return {"sentences": len(ds), "tokens": sum(map(len, ds["tokens"])),
            "entities": sum(entities.values()), "entities_by_type": dict(sorted(entities.items())),
            "sha256": digest.hexdigest()}


def prepare_ner_task(p: PrepareParams) -> tuple[datasets.DatasetDict, dict]:
    """CoNLL-style NER: the data's own train, validation and test splits, seeded subsamples where asked.

    Columns: `tokens` (words), `tags` (BIO tag ids, names from prepare.label_names) and `text` (the words
    joined by spaces, what a served model is sent). Sentences of test that also occur in train are
    counted in the card, not dropped: CoNLL-2003's test split is a fixed benchmark (published F1 is on
    all of it), and most repeats are short boilerplate (sports scores, datelines) that any newswire
    model meets in training.
    """
    raw = load_conll(p.task_source, p.label_names)
    raw = raw.map(lambda e: {"text": " ".join(e["tokens"])})
    in_train = set(raw["train"]["text"])
    repeated = [t for t in raw["test"]["text"] if t in in_train]
    limits = {"train": p.max_train_rows, "validation": p.validation_size, "test": p.max_test_rows}
    splits = datasets.DatasetDict({
        name: ds.shuffle(seed=p.seed).select(range(limits[name])) if limits[name] and len(ds) > limits[name] else ds
        for name, ds in raw.items()})
    card = {
        "source": p.task_source,
        "task_type": "ner",
        "test_split": "the data's own test split (CoNLL-2003: testb), as the benchmark fixes it",
        "validation_split": f"the data's own validation split (CoNLL-2003: testa), at most {p.validation_size} "
                            f"sentences, seed {p.seed}",
        "test_sentences_in_train": {
            "sentences": len(repeated), "share": len(repeated) / max(len(raw["test"]), 1),
            "distinct": len(set(repeated)), "examples": sorted(set(repeated), key=lambda t: (-len(t), t))[:5],
            "note": "kept: the benchmark's test split is fixed; counted before any subsampling"},
        "splits": {name: _ner_card_entry(ds, p.label_names) for name, ds in splits.items()},
    }
    return splits, card


def prepare_aux_task(p: PrepareParams) -> tuple[datasets.DatasetDict, dict]:
    """AG News split three ways from the one split we have (its upstream test split), stratified."""
    raw = load_ag_news(p.aux_task_source).map(_normalise).filter(lambda e: bool(e["text"]))
    rows, dupes = _dedupe(raw)
    if 3 * p.aux_holdout_rows > len(rows):
        raise DataError(f"prepare.aux_holdout_rows ({p.aux_holdout_rows}) leaves too little of {len(rows)} rows "
                        "for training (validation and test each take that many)")
    first = rows.train_test_split(test_size=p.aux_holdout_rows, seed=p.seed, stratify_by_column="label")
    second = first["train"].train_test_split(test_size=p.aux_holdout_rows, seed=p.seed, stratify_by_column="label")
    splits = datasets.DatasetDict(train=second["train"], validation=second["test"], test=first["test"])
    label_names = rows.features["label"].names
    card = {
        "source": p.aux_task_source,
        "caveat": (f"AG News' train split is not available locally (data/ag_news/README.md): train, validation "
                   f"and test are all carved from its {len(raw)}-row upstream test split, stratified, seed "
                   f"{p.seed}. Scores are not comparable with published AG News results."),
        "duplicates_dropped": dupes,
        "splits": {name: _card_entry(ds, label_names) for name, ds in splits.items()},
    }
    return splits, card


def prepare_corpus(p: PrepareParams) -> tuple[datasets.DatasetDict, dict]:
    raw = load_text_corpus(p.corpus_source)

    def clean(batch):
        lines = (clean_corpus_line(t) for t in batch["text"])
        return {"text": [t for t in lines if len(t) >= p.min_corpus_chars and not t.startswith("=")]}

    corpus = raw.map(clean, batched=True, remove_columns=raw["train"].column_names)
    for split, ds in corpus.items():
        if not len(ds):
            raise DataError(f"{p.corpus_source} {split}: the corpus has no line of {p.min_corpus_chars} or more "
                            "characters (prepare.min_corpus_chars) to pretrain on")
    if p.max_corpus_lines and len(corpus["train"]) > p.max_corpus_lines:
        corpus["train"] = corpus["train"].shuffle(seed=p.seed).select(range(p.max_corpus_lines))
    card = {
        "source": p.corpus_source,
        "splits": {
            name: {**_card_entry(ds), "words": sum(len(t.split()) for t in ds["text"])}
            for name, ds in corpus.items()
        },
    }
    return corpus, card


def mix_task_text(corpus: datasets.DatasetDict, task_train: datasets.Dataset, times: int,
                  seed: int) -> tuple[datasets.DatasetDict, dict]:
    """The corpus's train split with the task's train texts added `times` times, shuffled (TAPT);
    its validation split stays the corpus's own, so perplexity stays comparable across mixes."""
    texts = task_train.select_columns(["text"]).cast(corpus["train"].features)  # string and large_string differ
    mixed = datasets.concatenate_datasets([corpus["train"], *[texts] * times]).shuffle(seed=seed)
    card = {"task_train_texts": len(texts), "times": times, "corpus_lines": len(corpus["train"]),
            "task_share_of_lines": times * len(texts) / len(mixed)}
    return datasets.DatasetDict(train=mixed, validation=corpus["validation"]), card


def main(params: Params, parent_run_id: str | None = None) -> dict:
    """Prepare the task splits, the auxiliary task's splits and the pretraining corpus."""
    p = params.prepare
    with stage_run("prepare", p.model_dump(), parent_run_id):
        task, task_card = (prepare_ner_task if p.task_type == "ner" else prepare_task)(p)
        aux, aux_card = prepare_aux_task(p)
        corpus, corpus_card = prepare_corpus(p)
        if p.task_text_in_corpus:
            corpus, corpus_card["task_adaptive"] = mix_task_text(corpus, task["train"], p.task_text_in_corpus, p.seed)
        card = {"task": task_card, "aux_task": aux_card, "corpus": corpus_card}
        with atomic_dir(OUT) as tmp:
            save_prepared(task, tmp / "task")
            save_prepared(aux, tmp / "aux_task")
            save_prepared(corpus, tmp / "corpus")
            write_json(tmp / "data_card.json", card)
        figures = {f"{name}_{k}": s[k] for name, s in task_card["splits"].items()
                   for k in ("rows", "sentences", "tokens", "entities") if k in s}  # ner counts sentences
        figures |= {f"aux_{name}_rows": s["rows"] for name, s in aux_card["splits"].items()}
        figures["corpus_words"] = corpus_card["splits"]["train"]["words"]
        write_json(STAGE.metrics[0], figures)
        mlflow.log_metrics(figures)
        mlflow.log_dict(card, "data_card.json")
        for split in ("train", "validation", "test"):
            mlflow.log_input(
                mlflow.data.from_pandas(task[split].to_pandas(), source=p.task_source, name=f"task-{split}",
                                        targets="tags" if p.task_type == "ner" else "label"),
                context=split,
            )
    return card


if __name__ == "__main__":
    stage_cli(main)
