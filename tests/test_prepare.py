"""The validation carve: whole texts only, and none of their phrases left in train (SST-2's layout)."""

from __future__ import annotations

import datasets
import pytest

from tasks.prepare import LeakageError, carve, parts_of_other_texts, prepare_task, word_runs
from transferflow.config import PrepareParams
from transferflow.data import DataError

WORDS = "a good bad film plot cast score".split()


def phrase_treebank(sentences: int = 40) -> datasets.Dataset:
    """Rows as SST-2 lays them out: each sentence, and beside it some of its phrases, same label."""
    texts, labels = [], []
    for i in range(sentences):
        words = [f"{WORDS[k]}{i}" for k in range(7)]  # no phrase shared between sentences
        for phrase in (words, words[:3], words[2:5], words[4:]):
            texts.append(" ".join(phrase))
            labels.append(i % 2)
    return datasets.Dataset.from_dict({"text": texts, "label": labels},
                                      features=datasets.Features(text=datasets.Value("string"),
                                                                 label=datasets.ClassLabel(names=["neg", "pos"])))


def params(**fields) -> PrepareParams:
    return PrepareParams(**{"label_names": ["neg", "pos"], "validation_size": 10} | fields)


def test_parts_are_word_runs_of_a_longer_text():
    assert list(word_runs("a b c")) == ["a", "a b", "a b c", "b", "b c", "c"]
    assert parts_of_other_texts(["a film", "a film numbered 10", "numbered 1", "film numbered"]) == \
        {"a film", "film numbered"}  # "numbered 1" is no run of words of "numbered 10"


def test_validation_holds_whole_texts_and_train_none_of_their_phrases():
    rows = phrase_treebank()
    train, validation, dropped = carve(rows, 10, params(), "validation_size")
    whole = {t for t in rows["text"] if t not in parts_of_other_texts(rows["text"])}
    assert len(validation) == 10 and set(validation["text"]) <= whole
    assert sorted(validation["label"]).count(0) == 5  # stratified
    inside = {run for text in validation["text"] for run in word_runs(text)}
    assert not inside & set(train["text"])
    assert dropped == 30 and len(train) + len(validation) + dropped == len(rows)  # 3 phrases per sentence


def test_the_plain_carve_on_request_and_on_data_without_parts():
    rows = phrase_treebank()
    train, validation, dropped = carve(rows, 10, params(validation_whole_texts=False), "validation_size")
    assert (len(train), len(validation), dropped) == (150, 10, 0)
    sentences = rows.filter(lambda r: len(r["text"].split()) == 7)
    (train, validation, _), (plain_train, plain_validation, _) = (
        carve(sentences, 10, params(validation_whole_texts=whole), "validation_size") for whole in (True, False))
    assert validation["text"] == plain_validation["text"] and set(train["text"]) == set(plain_train["text"])


def test_too_few_whole_texts_is_one_named_error():
    with pytest.raises(DataError, match=r"validation_size \(50\) must be below the 40 train texts"):
        carve(phrase_treebank(), 50, params(), "validation_size")


def glue_folder(path, train_rows: list[str], test_rows: list[str]):
    path.mkdir()
    for name, rows in (("train.tsv", train_rows), ("dev.tsv", test_rows)):
        (path / name).write_text("sentence\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(rows)))
    return str(path)


def test_leaked_test_texts_stop_prepare_or_leave_train_on_request(tmp_path):
    train = [f"train film {i}" for i in range(60)] + ["seen in both", "also in both"]
    source = glue_folder(tmp_path / "task", train, [f"test film {i}" for i in range(20)] + ["seen in both", "also in both"])
    with pytest.raises(LeakageError, match=r"^2 test texts also appear in train.*prepare.leakage: drop_from_train"):
        prepare_task(params(task_source=source))
    splits, card = prepare_task(params(task_source=source, leakage="drop_from_train"))
    assert card["test_texts_dropped_from_train"] == 2
    assert not {"seen in both", "also in both"} & (set(splits["train"]["text"]) | set(splits["validation"]["text"]))
    assert {"seen in both", "also in both"} <= set(splits["test"]["text"])


def your_rows(n: int = 80) -> dict[str, list]:
    """A user's table: their column names, string labels."""
    return {"question": [f"what is thing {i} ?" for i in range(n)],
            "category": ["neg" if i % 2 else "pos" for i in range(n)]}


def write_split(path, rows: dict[str, list]) -> None:
    ds = datasets.Dataset.from_dict(rows)
    {".csv": ds.to_csv, ".jsonl": ds.to_json, ".parquet": ds.to_parquet}[path.suffix](str(path))


YOURS = dict(text_column="question", label_column="category")


@pytest.mark.parametrize("ending", [".csv", ".jsonl", ".parquet"])
def test_a_folder_of_split_files_in_any_format_with_your_columns_and_label_names(tmp_path, ending):
    (tmp_path / "task").mkdir()
    write_split(tmp_path / "task" / f"train{ending}", your_rows(80))
    test = your_rows(100)
    write_split(tmp_path / "task" / f"test{ending}", {k: v[80:] for k, v in test.items()})
    splits, card = prepare_task(params(task_source=str(tmp_path / "task"), test_split="test", **YOURS))
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (70, 10, 20)
    assert splits["train"].features["label"].names == ["neg", "pos"]
    assert splits["test"][0] == {"text": "what is thing 80 ?", "label": 1}  # "pos" is name 1
    assert card["test_split"].endswith(f"test{ending}") and card["columns"] == {"text": "question", "label": "category"}


def test_one_file_has_its_test_split_carved_from_it(tmp_path):
    write_split(tmp_path / "all.csv", your_rows(100))
    splits, card = prepare_task(params(task_source=str(tmp_path / "all.csv"), test_size=20, **YOURS))
    assert (len(splits["train"]), len(splits["validation"]), len(splits["test"])) == (70, 10, 20)
    assert sorted(splits["test"]["label"]).count(0) == 10  # stratified
    assert not set(splits["test"]["text"]) & set(splits["train"]["text"])
    assert card["test_split"].startswith("20 whole texts carved from train")


@pytest.mark.parametrize("rows, fields, error", [
    ({"text": ["a"] * 40, "category": ["pos"] * 40}, {}, r"all.csv: expected columns question, category "
                                                        r"\(prepare.text_column, prepare.label_column\); found"),
    (your_rows(40) | {"category": ["pos"] * 39 + ["meh"]}, {}, r"all.csv:41: label 'meh' is neither a name nor an id"),
    ({"question": [], "category": []}, {}, r"all.csv holds no rows"),
    (your_rows(40) | {"category": ["pos"] * 40}, {}, r"all.csv train: holds a single class \(pos\)"),
], ids=["missing column", "unknown label", "empty file", "single class"])
def test_a_bad_shape_is_one_error_naming_the_file(tmp_path, rows, fields, error):
    write_split(tmp_path / "all.csv", rows)
    with pytest.raises(DataError, match=error):
        prepare_task(params(task_source=str(tmp_path / "all.csv"), test_size=10, **YOURS, **fields))


def test_a_hub_id_takes_the_named_splits_and_columns(monkeypatch):
    """The hub path with the hub faked by local rows (no network here): GLUE's layout on the hub."""
    rows = your_rows(100)
    hub = datasets.DatasetDict(train=datasets.Dataset.from_dict({k: v[:80] for k, v in rows.items()}),
                               validation=datasets.Dataset.from_dict({k: v[80:] for k, v in rows.items()}))
    asked = []
    monkeypatch.setattr(datasets, "load_dataset", lambda name, config: asked.append((name, config)) or hub)
    splits, card = prepare_task(params(task_source="glue/sst2", test_split="validation", **YOURS))
    assert asked == [("glue", "sst2")] and len(splits["test"]) == 20 and card["test_split"] == "glue/sst2 validation"
    with pytest.raises(DataError, match=r"glue/sst2 has no split dev \(it has train, validation\): set prepare.test_split"):
        prepare_task(params(task_source="glue/sst2", **YOURS))


def test_label_names_null_takes_the_names_the_data_holds(tmp_path):
    write_split(tmp_path / "all.csv", your_rows(60) | {"category": ["b-side", "a-side", "c-side"] * 20})
    splits, _ = prepare_task(params(task_source=str(tmp_path / "all.csv"), test_size=12, label_names=None, **YOURS))
    assert splits["train"].features["label"].names == ["a-side", "b-side", "c-side"]
    write_split(tmp_path / "ids.csv", your_rows(60) | {"category": [0, 1] * 30})
    with pytest.raises(DataError, match=r"ids.csv: its labels are numbers, so prepare.label_names must name them"):
        prepare_task(params(task_source=str(tmp_path / "ids.csv"), test_size=12, label_names=None, **YOURS))
