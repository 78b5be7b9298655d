"""The bad-input table: every input or fault a user can cause, the one line they must see, and where
the run stops. tests/test_bad_input.py runs each row through the `transferflow` command; set
TRANSFERFLOW_BAD_INPUT_REPORT=table.md to also get the rows with the seconds each took.

A row's `setup` edits a fresh smoke workspace (params.yaml, data folders) and returns the command's
arguments; `stops_in` is the first stage that must not leave outputs (`params`: none may).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tests.helpers import set_params

GOOD_DEV = b"sentence\tlabel\nfine film \t0\ngood film \t1\nawful film \t0\n"


@dataclass(frozen=True)
class Case:
    id: str
    what: str
    """The input or fault, in words (the report's second column)."""
    setup: Callable[[Path], list[str]]
    line: str
    """Regex the single `error:` line must match (searched after `error: `)."""
    code: int = 1
    stops_in: str = "prepare"
    env: dict[str, str] = field(default_factory=dict)
    """Environment for the command; `{ws}` is replaced by the workspace."""
    needs: str | None = None
    """A fixture the row needs beyond the shared registry: `mount` (root and tmpfs)."""


def params(**sections) -> Callable[[Path], list[str]]:
    def setup(ws: Path) -> list[str]:
        set_params(ws / "params.yaml", **sections)
        return ["run"]
    return setup


def params_text(text: str) -> Callable[[Path], list[str]]:
    def setup(ws: Path) -> list[str]:
        (ws / "params.yaml").write_text(text)
        return ["run"]
    return setup


def task_files(train: bytes | None, dev: bytes | None = GOOD_DEV, **prepare) -> Callable[[Path], list[str]]:
    """A task folder with these train.tsv / dev.tsv bytes (None: no such file) as prepare.task_source."""
    def setup(ws: Path) -> list[str]:
        folder = ws / "task"
        folder.mkdir()
        for name, data in (("train.tsv", train), ("dev.tsv", dev)):
            if data is not None:
                (folder / name).write_bytes(data)
        set_params(ws / "params.yaml", prepare={"task_source": str(folder), "validation_size": 4, **prepare})
        return ["run"]
    return setup


def rows(n: int, label=lambda i: i % 2, text=lambda i: f"a film numbered {i}") -> bytes:
    return ("sentence\tlabel\n" + "".join(f"{text(i)} \t{label(i)}\n" for i in range(n))).encode()


def no_data(ws: Path) -> list[str]:
    (ws / "data").unlink()
    return ["run"]


def corpus(text: str) -> Callable[[Path], list[str]]:
    """A corpus folder whose train.txt and valid.txt hold `text`, as prepare.corpus_source."""
    def setup(ws: Path) -> list[str]:
        (ws / "corpus").mkdir()
        for name in ("train.txt", "valid.txt"):
            (ws / "corpus" / name).write_text(text)
        set_params(ws / "params.yaml", prepare={"corpus_source": str(ws / "corpus")})
        return ["run"]
    return setup


def command(*args: str, before: Callable[[Path], None] | None = None) -> Callable[[Path], list[str]]:
    def setup(ws: Path) -> list[str]:
        if before:
            before(ws)
        return [str(a).format(ws=ws) for a in args]
    return setup


def write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda ws: (ws / name).write_bytes(data)


LATIN1_ROW = "sentence\tlabel\ngood\t1\nun caf\xe9 froid\t0\n".encode("latin-1")
NAMES = r"\['negative', 'positive'\]"

CASES = [
    # params: refused before any work (exit 2, a usage error)
    Case("params-missing", "--params names a file that does not exist",
         command("run", "--params", "nope.yaml"), r"^params file not found: nope.yaml$", 2, "params"),
    Case("params-yaml", "params.yaml is not valid YAML", params_text("pretrain: {max_steps: 3\n"),
         r"^params.yaml is not valid YAML", 2, "params"),
    Case("params-not-mapping", "params.yaml is a list, not sections", params_text("- prepare\n- pretrain\n"),
         r"^params.yaml: Input should be a valid dictionary", 2, "params"),
    Case("params-unknown-section", "a misspelt section", params_text("pretrian: {max_steps: 3}\n"),
         r"^params.yaml: pretrian: Extra inputs are not permitted$", 2, "params"),
    Case("params-unknown-key", "a misspelt key", params(pretrain={"max_stepz": 3}),
         r"^params.yaml: pretrain.max_stepz: Extra inputs are not permitted$", 2, "params"),
    Case("params-wrong-type", "a word where a number goes", params(pretrain={"max_steps": "many"}),
         r"^params.yaml: pretrain.max_steps: Input should be a valid integer", 2, "params"),
    Case("params-bool-as-int", "`max_steps: true`", params(pretrain={"max_steps": True}),
         r"^params.yaml: pretrain.max_steps: expected a number, got true$", 2, "params"),
    Case("params-negative-lr", "a negative learning rate", params(finetune={"learning_rate": -1.0}),
         r"^params.yaml: finetune.learning_rate: Input should be greater than 0$", 2, "params"),
    Case("params-no-strategies", "`finetune.strategies: []`", params(finetune={"strategies": []}),
         r"^params.yaml: finetune.strategies: List should have at least 1 item", 2, "params"),
    Case("params-unknown-strategy", "a strategy that does not exist", params(finetune={"strategies": ["nope"]}),
         r"^params.yaml: finetune: unknown strategy 'nope'; registered: .*lora", 2, "params"),
    Case("params-option-key", "a wrong key under finetune.options.lora",
         params(finetune={"options": {"lora": {"rank": 4}}}),
         r"^params.yaml: finetune.options.lora.rank: Extra inputs are not permitted$", 2, "params"),
    Case("params-task-runner", "a task runner that does not exist", params(flow={"task_runner": "ray"}),
         r"^params.yaml: flow.task_runner: Input should be 'process' or 'dask'$", 2, "params"),
    # data: refused by prepare, naming the file, the row or the label
    Case("data-missing", "data/ was never pulled", no_data, r"data/sst2 is missing: run `dvc pull`"),
    Case("data-task-folder", "task_source names no folder", params(prepare={"task_source": "data/nope"}),
         r"^data/nope is missing: run `dvc pull`"),
    Case("data-no-dev", "the task folder lacks dev.tsv", task_files(rows(20), None),
         r"missing data file\(s\) .*task/dev.tsv"),
    Case("data-empty", "train.tsv is empty (0 bytes)", task_files(b""), r"task/train.tsv is empty"),
    Case("data-header-only", "train.tsv has a header and no rows", task_files(b"sentence\tlabel\n"),
         r"task/train.tsv has a header and no rows$"),
    Case("data-binary", "train.tsv is binary", task_files(b"\x00\x01PK\x03\x04" * 50),
         r"task/train.tsv is binary \(it holds NUL bytes\), not text$"),
    Case("data-not-utf8", "train.tsv saved as Latin-1", task_files(LATIN1_ROW),
         r"task/train.tsv:3: not UTF-8 \(byte 0xe9"),
    Case("data-no-tab", "a row with no tab", task_files(b"sentence\tlabel\ngood film 1\nbad film\t0\n"),
         r"task/train.tsv:2: expected 2 tab-separated fields .*found 1: 'good film 1'$"),
    Case("data-columns", "other column names", task_files(b"text\tstars\nok\t1\n"),
         r"task/train.tsv: expected columns sentence, label \(prepare.text_column, prepare.label_column\); "
         r"found \['text', 'stars'\]$"),
    Case("data-label-word", "a label that is a word", task_files(rows(20, label=lambda i: "pos" if i == 5 else i % 2)),
         rf"task/train.tsv:7: label 'pos' is neither a name nor an id of prepare.label_names {NAMES}"),
    Case("data-label-range", "a label out of range", task_files(rows(20, label=lambda i: 7 if i == 3 else i % 2)),
         rf"task/train.tsv:5: label 7 is neither a name nor an id of prepare.label_names {NAMES}"),
    Case("data-single-class", "every train row has one label", task_files(rows(40, label=lambda i: 1)),
         r"task train: holds a single class \(positive\)"),
    Case("data-label-names", "3 label_names for 2-label data",
         task_files(rows(40), label_names=["negative", "positive", "neutral"]),
         r"prepare.label_names .* do not match the data: neutral \(0 rows\)"),
    Case("data-leak", "a test text also in train", task_files(rows(40), b"sentence\tlabel\na film numbered 7 \t1\nnew \t0\n"),
         r"^1 test texts also appear in train"),
    Case("data-validation-size", "validation_size above the train rows", task_files(rows(20), validation_size=50),
         r"prepare.validation_size \(50\) must be below the train rows"),
    Case("data-corpus-missing", "corpus_source names no folder", params(prepare={"corpus_source": "data/nocorpus"}),
         r"^data/nocorpus is missing"),
    Case("data-corpus-empty", "an empty pretraining corpus", corpus(""), r"corpus/train.txt is empty: the corpus needs one paragraph of text per line$"),
    Case("data-corpus-short", "a corpus of headings and short lines only", corpus("too short\n= Heading =\n"),
         r"corpus train: the corpus has no line of 20 or more characters \(prepare.min_corpus_chars\)"),
    Case("params-init-from-missing", "pretrain.init_from names no folder", params(pretrain={"init_from": "./no/model"}),
         r"^pretrain.init_from ./no/model: no transformers checkpoint there", 2, "tokenizer"),
    Case("params-init-from-offline", "pretrain.init_from is a hub id, offline",
         params(pretrain={"init_from": "bert-base-uncased"}),
         r"^pretrain.init_from bert-base-uncased: cannot load it \(.+\); offline, name a local checkpoint folder$",
         2, "tokenizer"),
    # training: a loss that goes to nan/inf stops at once, nothing is written or registered
    Case("train-pretrain-nan", "pretrain.learning_rate: 1e6", params(pretrain={"learning_rate": 1e6}),
         r"is (nan|inf) at step \d+ \(learning rate .*\): training diverged", stops_in="pretrain"),
    Case("train-finetune-nan", "finetune.learning_rate: 1e6",
         params(finetune={"learning_rate": 1e6, "strategies": ["full"]}),
         r"is (nan|inf) at step \d+ \(learning rate .*\): training diverged", stops_in="finetune"),
    # environment: servers, disks, the registry
    Case("env-tracking-down", "MLFLOW_TRACKING_URI points at nothing", command("run"),
         r"^MLflow tracking at http://127.0.0.1:9 is unreachable", stops_in="params",
         env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}),
    Case("env-read-only", "artifacts/ is a read-only mount", command("run"),
         r"^Read-only file system: .*artifacts", needs="read-only"),
    Case("env-disk-full", "artifacts/ is a 64 KiB tmpfs (a full disk)", command("run"),
         r"^No space left on device: artifacts/\w+: free some space", needs="full"),
    Case("registry-no-challenger", "`promote` with an empty registry", command("promote"),
         r"has no @challenger: run the pipeline first", stops_in="params",
         env={"MLFLOW_TRACKING_URI": "sqlite:///{ws}/empty.db"}),
    Case("registry-first-champion", "`rollback` with one champion ever", command("rollback"),
         r"is the first champion of 'transferflow-sst2': no previous champion", stops_in="params"),
    Case("serve-unknown-alias", "`serve --alias` no version holds", command("serve", "--alias", "nope"),
         r"no version of 'transferflow-sst2' holds @nope", stops_in="params"),
    Case("serve-corrupt-model", "@champion's files deleted from the artifact store", command("serve", "--port", "5977"),
         r"models:/transferflow-sst2@champion cannot be loaded", stops_in="params", needs="corrupt"),
    Case("predict-corrupt-model", "`predict` with @champion's files deleted",
         command("predict", "{ws}/texts.txt", before=write("texts.txt", b"a fine film\n")),
         r"models:/transferflow-sst2@champion cannot be loaded", stops_in="params", needs="corrupt"),
    Case("predict-no-file", "`predict` a file that does not exist", command("predict", "nope.txt"),
         r"^nope.txt not found$", stops_in="params"),
    Case("predict-not-utf8", "`predict` a Latin-1 file",
         command("predict", "{ws}/texts.txt", before=write("texts.txt", "un caf\xe9\n".encode("latin-1"))),
         r"texts.txt:1: not UTF-8 \(byte 0xe9", stops_in="params"),
]
