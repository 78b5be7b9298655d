"""The one validated schema over params.yaml.

Each top-level section belongs to the stage of the same name (`dvc.yaml` stage = `tasks/<stage>.py` =
params key), except `flow`, which only the Prefect flow reads. Every field carries a docstring, which
pydantic turns into its description, so `transferflow params --schema` documents the file. Unknown keys
are errors that name the key.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, model_validator

from transferflow.errors import ParamsError  # noqa: F401 (raised here; callers import it from here too)
from transferflow.schema import NoBoolNumbers
from transferflow.family import family_names, get_family
from transferflow.heads import HEADS
from transferflow.strategy import get_strategy


class NestedKeyError(ValueError):
    """A validator's error about a key below its own field (finetune.options.<strategy>.<key>), so
    load_params reports the whole path rather than the field's."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


class Section(NoBoolNumbers):
    """Base of every section: unknown keys and wrong types are rejected, docstrings are descriptions."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=True)


class PrepareParams(Section):
    task_type: Literal["classification", "ner"] = "classification"
    """Shape of the labelled task: `classification` (one label per text, e.g. SST-2) or `ner` (one BIO
    tag per word, e.g. CoNLL-2003 in `data/conll2003`)."""
    task_source: str = "data/sst2"
    """Labelled task data. classification: a local folder of split files (`train.<ending>` and
    `<test_split>.<ending>`, ending .tsv, .csv, .jsonl, .json or .parquet; SST-2's is train.tsv and
    dev.tsv), one such file (test is then carved from it, as with test_split null), or a hub id such as
    `glue/sst2` (needs a network; its labelled split is `validation`). ner: a local CoNLL folder
    (train.txt, valid.txt, test.txt, e.g. `data/conll2003`) or the hub id `conll2003` (needs a
    network); its own validation and test splits are used."""
    text_column: str = "sentence"
    """classification: the column holding each text (GLUE's is `sentence`)."""
    label_column: str = "label"
    """classification: the column holding each label: a name of label_names, or its id (0, 1, ...)."""
    test_split: str | None = "dev"
    """classification: the split that is the test split, a file of that name in a task folder or a
    split of a hub dataset. GLUE ships no labelled test set, so its dev set is the default. null:
    test_size whole texts are carved from train, as validation is (stratified, with `seed`)."""
    test_size: int = Field(1000, gt=0)
    """classification: rows carved from train for test when test_split is null or task_source is one file."""
    corpus_source: str = "data/wikitext2"
    """Unlabelled pretraining text: a local folder with train.txt and valid.txt, or a hub id such as
    `wikitext/wikitext-2-v1` (needs a network)."""
    label_names: list[str] | None = ["negative", "positive"]
    """Name of each class id of the task, in id order; the served model answers with these. null
    (classification): the distinct labels of train, sorted, when the data holds them as names. For
    ner, the BIO tags in id order (`O`, then `B-X` and `I-X` for every entity type X); a tag in the
    data that is not listed is an error, so the ids stay fixed whatever the data holds."""
    aux_task_source: str = "data/ag_news"
    """Second labelled task, for the multitask strategy: AG News (4 news topics) as a local folder with
    test.csv (class 1-4, title, description; no header) and classes.txt, or the hub id `ag_news`
    (needs a network). Only AG News' 7,600-row test split exists locally, so its train, validation and
    test splits are all carved from that one split with `seed` (the data card says so)."""
    aux_holdout_rows: int = Field(1000, gt=0)
    """Rows of the auxiliary task carved (stratified, with `seed`) for each of its validation and test
    splits; the remaining rows are its training split."""
    leakage: Literal["error", "drop_from_train"] = "error"
    """classification: what to do when a test text also appears in train (test scores would overstate
    the model). `error` stops with the count and an example; `drop_from_train` drops those texts from
    train and counts them in the data card, for benchmarks whose train file really repeats test rows."""
    validation_size: int = Field(872, gt=0)
    """classification: rows carved from the task's train split, with `seed`, to form the validation
    split. ner: the data's own validation split is kept, subsampled with `seed` to at most this many
    sentences."""
    validation_whole_texts: bool = True
    """classification: carve validation from whole texts only (those no part of another train text)
    and drop from train every text that is a part of one. SST-2's train lists each phrase of a
    sentence's parse tree beside the sentence (60k of its 67k texts are such parts), so a random carve
    puts a validation text's phrases in train: tfidf then scored .92-.94 on validation and .81 on
    test, and selection favoured memorising. With whole texts both read .81-.82. On data whose texts
    are not parts of each other this is the plain carve. False: any rows, as before."""
    max_train_rows: int | None = Field(None, gt=0)
    """Keep at most this many task training rows (seeded sample); null keeps them all."""
    max_test_rows: int | None = Field(None, gt=0)
    """Keep at most this many test rows (seeded sample); null keeps them all. Only the smoke profile sets it."""
    max_corpus_lines: int | None = Field(None, gt=0)
    """Keep at most this many non-empty corpus lines for pretraining; null keeps them all."""
    min_corpus_chars: int = Field(20, ge=0)
    """Corpus lines shorter than this (headings, blank lines) are dropped."""
    task_text_in_corpus: int = Field(0, ge=0, strict=True)
    """Task-adaptive pretraining (TAPT, Gururangan et al. 2020): the task's train texts, never its
    validation or test texts, are added this many times to the pretraining corpus (and so to the
    tokenizer's training text); the data card records the mix. 0 pretrains on the corpus alone."""
    seed: int = 42
    """Seed of the validation split and of every subsample."""

    @model_validator(mode="after")
    def _labels_fit_task_type(self) -> PrepareParams:
        if self.label_names is None:
            if self.task_type == "ner":
                raise ValueError("with task_type ner, label_names must list the BIO tags (the tag ids stay fixed)")
            return self
        if len(set(self.label_names)) != len(self.label_names) or len(self.label_names) < 2:
            raise ValueError(f"label_names must be two or more distinct names: {self.label_names}")
        if self.task_type == "ner":
            # Spans are read from B-/I- prefixes (seqeval), so every name must be O or BIO-shaped.
            bad = [n for n in self.label_names if n != "O" and not re.fullmatch(r"[BI]-\S+", n)]
            types = {n[2:] for n in self.label_names if n != "O"}
            unpaired = sorted(t for t in types if not {f"B-{t}", f"I-{t}"} <= set(self.label_names))
            if "O" not in self.label_names or bad or unpaired:
                raise ValueError(
                    "with task_type ner, label_names are BIO tags: O plus B-X and I-X for each entity type "
                    f"X (e.g. [O, B-PER, I-PER, B-LOC, I-LOC]); got {self.label_names}")
        return self


class TokenizerParams(Section):
    vocab_size: int = Field(8000, ge=100)
    """WordPiece vocabulary size, special tokens included."""
    min_frequency: int = Field(2, ge=1)
    """A pair must occur this often in the corpus to be merged into the vocabulary."""
    lowercase: bool = True
    """Lower-case text before tokenizing (SST-2 is lower-cased already)."""


class ModelParams(Section):
    """Size of the transformer of any family (BERT, GPT-2 or T5 configuration)."""

    hidden_size: int = Field(128, gt=0)
    """Width of every transformer layer."""
    num_layers: int = Field(4, gt=0)
    """Number of transformer layers."""
    num_heads: int = Field(4, gt=0)
    """Attention heads per layer; must divide hidden_size."""
    intermediate_size: int = Field(512, gt=0)
    """Width of the feed-forward block."""
    max_length: int = Field(128, ge=8)
    """Longest sequence the model sees: position embeddings (bert, gpt), training length (t5). For gpt,
    few-shot prompts must fit it, so it is larger there."""
    dropout: float = Field(0.1, ge=0, lt=1)
    """Dropout on hidden states and attention probabilities while fine-tuning (pretraining uses
    pretrain.pretraining_dropout)."""

    @model_validator(mode="after")
    def _heads_divide_width(self) -> ModelParams:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must divide hidden_size ({self.hidden_size})")
        return self


class TrainingParams(Section):
    """Optimisation hyperparameters shared by pretraining and fine-tuning."""

    learning_rate: float = Field(5e-4, gt=0)
    """Peak learning rate of AdamW."""
    weight_decay: float = Field(0.01, ge=0)
    """AdamW weight decay (not applied to biases and LayerNorm weights)."""
    warmup_ratio: float = Field(0.06, ge=0, lt=1)
    """Fraction of steps spent warming the learning rate up linearly from 0."""
    max_grad_norm: float = Field(1.0, gt=0)
    """Gradients are clipped to this global norm."""
    batch_size: int = Field(32, gt=0)
    """Examples per optimizer step."""
    max_steps: int = Field(1000, gt=0)
    """Optimizer steps to train for (an upper bound when early stopping is on)."""
    eval_steps: int = Field(200, gt=0)
    """Evaluate on validation (and checkpoint) every this many steps."""
    seed: int = 42
    """Seed of initialisation, masking and data order."""


class PretrainParams(TrainingParams):
    family: str = "bert"
    """Model family, each with its own tokenizer and pretraining objective: `bert` (WordPiece, masked LM,
    post-LN BERT encoder), `modernbert` (WordPiece, masked LM, ModernBERT: pre-norm, gated feed-forward,
    rotary positions, no biases; it learns faster per step than bert here, but prefix and multitask
    need bert), `gpt` (byte-level BPE, causal LM, decoder), `t5` (unigram with sentinels, span corruption,
    encoder-decoder): the files of transferflow/families/. Fine-tuning strategies declare the
    architectures they apply to."""
    model: ModelParams = Field(default_factory=ModelParams)
    """Architecture of the model built from scratch (no hub weights exist offline); for t5, the encoder
    and the decoder each get `num_layers` layers."""
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    """bert, modernbert: fraction of tokens selected for masked-LM prediction."""
    mask_replace_prob: float = Field(0.8, ge=0, le=1)
    """bert, modernbert: of the selected tokens, the fraction replaced by [MASK]; the rest are split evenly between
    a random token and the token itself (BERT's 80/10/10 at 0.8; 1.0 masks them all, as Wettig et
    al. 2022 found works as well)."""
    pretraining_dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout while pretraining. 0 as in Cramming (Geiping & Goldstein 2023): a model that sees its
    data about once has nothing to regularise, and dropout slows learning. The saved model carries
    model.dropout, which fine-tuning then uses."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """Arithmetic of pretraining: `bf16` autocast, `fp32`, or `auto`: bf16 on a GPU that has it, or on a
    CPU where a short matmul probe shows bf16 faster than fp32 (machines differ: some CPUs have bf16
    units, on others bf16 is emulated and slower)."""
    noise_density: float = Field(0.15, gt=0, lt=1)
    """t5: fraction of tokens hidden by span corruption."""
    mean_span_length: float = Field(3.0, ge=1)
    """t5: mean length of a corrupted span, in tokens (T5 uses 3)."""
    max_eval_lines: int | None = Field(2000, gt=0)
    """Validation lines used for perplexity; null uses the whole validation corpus."""
    init_from: str | None = None
    """A checkpoint to start from instead of random weights: a local transformers folder (an earlier
    run's artifacts/pretrain, another team's model) or a hub id such as `bert-base-uncased` (needs a
    network), holding a model of `family` and its tokenizer, which the tokenizer stage then takes
    instead of training one. `model` is read from the checkpoint rather than built; model.max_length
    is still the block length and must fit its positions. With max_steps 0 the stage only imports it;
    with steps it continues pretraining on the prepared corpus, which task_text_in_corpus can make the
    task's own text (domain- and task-adaptive pretraining, Gururangan et al. 2020). `previous`: the
    model this workspace's last successful pretrain stage wrote (checkpoints/pretrain-previous), so a
    nightly schedule accumulates pretraining; random weights while there is none. null: random init."""
    max_steps: int = Field(1000, ge=0)
    """Optimizer steps to pretrain for; 0 (with init_from) imports the checkpoint without training."""

    @model_validator(mode="after")
    def _known_family(self) -> PretrainParams:
        if self.family not in family_names():
            raise NestedKeyError("family", f"unknown family {self.family!r}; registered: {', '.join(family_names())}")
        return self

    @model_validator(mode="after")
    def _steps_or_checkpoint(self) -> PretrainParams:
        if self.max_steps == 0 and self.init_from is None:
            raise ValueError("max_steps 0 trains nothing: it needs init_from, a checkpoint to import")
        return self


class PromptParams(Section):
    """How a classification task is put into words for the gpt and t5 families (prompting, SFT,
    text-to-text): the input is `template` filled with the text, the answer is the label's word."""

    template: str = "Review: {text}\nSentiment:"
    """Input text around `{text}` (the only placeholder). gpt scores each label word as its continuation;
    t5 reads it and generates the word."""
    label_words: list[str] = ["negative", "positive"]
    """Verbalizer: the word that stands for each label id, in the order of prepare.label_names."""

    @model_validator(mode="after")
    def _one_text_slot(self) -> PromptParams:
        try:
            filled = self.template.format(text="")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"template may only hold the placeholder {{text}}: {err}") from None
        if filled == self.template:
            raise ValueError("template has no {text} placeholder")
        if len(set(self.label_words)) != len(self.label_words) or not all(w.strip() for w in self.label_words):
            raise ValueError(f"label_words must be distinct, non-empty words: {self.label_words}")
        return self


class FinetuneParams(TrainingParams):
    strategies: list[str] = Field(["scratch", "full", "lora"], min_length=1)
    """Fine-tuning strategies to run and compare (at least one); each is a file under tasks/strategies/."""
    max_length: int = Field(64, ge=8)
    """Task inputs are truncated to this many tokens."""
    pooling: Literal["cls", "mean"] | None = None
    """How a sequence classifier pools the encoder's states for its head: `cls` (the first token's)
    or `mean` (over the tokens). modernbert takes either (its config's classifier_pooling) and
    defaults to mean: masked-LM pretraining never trains the [CLS] state, so a frozen encoder's
    [CLS] says little. bert has [CLS] only (BertForSequenceClassification's pooler); null: the
    family's default."""
    early_stopping_patience: int = Field(3, ge=1)
    """Stop after this many evaluations without a better validation score."""
    metric: Literal["accuracy", "f1"] = "accuracy"
    """Validation metric for early stopping and for keeping the best checkpoint. For a ner task,
    accuracy is token accuracy and f1 entity-level micro F1 (seqeval), here and in every later stage."""
    prompt: PromptParams = Field(default_factory=PromptParams)
    """Template and label words where the task is put in words: gpt's prompt and its prompt + label word
    fine-tuning, t5's text-to-text."""
    options: dict[str, dict[str, Any]] = {}
    """Per-strategy options, keyed by strategy name; each strategy validates its own (see
    `transferflow strategies`). Example: `lora: {r: 8, learning_rate: 1e-3}`."""

    @model_validator(mode="after")
    def _known_strategies(self) -> FinetuneParams:
        # Validated through the registry: a new strategy file needs no edit to this schema.
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies lists a name twice: {self.strategies}")
        for name in {*self.strategies, *self.options}:
            get_strategy(name)  # raises, listing the registered names
        for name, opts in self.options.items():
            try:
                get_strategy(name).Options.model_validate(opts)
            except ValidationError as err:
                first = err.errors()[0]
                raise NestedKeyError(".".join(str(k) for k in ("options", name, *first["loc"])),
                                     first["msg"].removeprefix("Value error, ")) from None
        return self


class EvaluateParams(Section):
    batch_size: int = Field(128, gt=0)
    """Examples per forward pass when scoring validation and test."""


class RegisterParams(Section):
    model_name: str = "transferflow-sst2"
    """Name of the registered model in the MLflow model registry."""
    metric: Literal["accuracy", "f1"] = "accuracy"
    """Validation metric that picks the model to register (test is reported, never used to pick)."""


class PromoteParams(Section):
    """The gate between @challenger and @champion (tasks/promote.py); every check must pass."""

    metric: Literal["accuracy", "f1"] = "accuracy"
    """Test metric the challenger must beat the champion on, by at least `margin`."""
    margin: float = Field(0.0, ge=0, lt=1)
    """Smallest gain over the champion on `metric` that counts, absolute (0.01 = one point). Any gain
    must also be above zero: an equal challenger never replaces the champion."""
    min_scores: dict[Literal["accuracy", "f1"], Annotated[float, Field(ge=0, le=1)]] = {}
    """Floors on the challenger's own test scores, e.g. `{accuracy: 0.8}`; each must hold."""
    beat_majority: bool = True
    """The challenger must score above always answering the train split's most frequent label (a
    classification task): a model that learned nothing never becomes champion. Off only for toy runs
    (the smoke profile), whose models sit at chance by design."""
    test: Literal["mcnemar", "bootstrap"] = "mcnemar"
    """Paired significance test on the two models' test predictions: McNemar's test on the rows where
    exactly one model is right, or a paired bootstrap of the `metric` difference."""
    alpha: float = Field(0.05, gt=0, lt=1)
    """Significance level: the difference must have a two-sided p-value below it."""
    bootstrap_resamples: int = Field(1000, ge=100)
    """Resamples of the test rows for the paired bootstrap and every reported 95% interval."""
    seed: int = 42
    """Seed of the bootstrap resampling."""


class DataEfficiencyParams(Section):
    """The data-efficiency experiment (tasks/data_efficiency.py): how each strategy's accuracy holds up as
    labelled training data shrinks. Training uses the finetune section's hyperparameters and options."""

    fractions: list[Annotated[float, Field(gt=0, le=1)]] = Field([0.01, 0.1, 1.0], min_length=1)
    """Fractions of the labelled training split to train on: seeded, stratified subsets, each smaller
    one inside the larger ones; validation and test stay whole."""
    strategies: list[str] = ["scratch", "full", "lora"]
    """Strategies trained at every fraction (names of tasks/strategies/ files)."""
    seed: int = 42
    """Seed of the training subsets."""

    @model_validator(mode="after")
    def _known_strategies(self) -> DataEfficiencyParams:
        for name in self.strategies:
            get_strategy(name)
        if len(set(self.strategies)) != len(self.strategies) or len(set(self.fractions)) != len(self.fractions):
            raise ValueError(f"a strategy or fraction is listed twice: {self.strategies}, {self.fractions}")
        return self


# `register` (a stage name) shadows ABCMeta.register on the model class; harmless for a data field.
warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)


class FlowParams(Section):
    """How the Prefect flow runs the stages (flows/pipeline.py). No stage reads it, so `dvc repro` ignores
    it and changing it re-runs nothing."""

    parallel_finetunes: int = Field(1, ge=1)
    """Fine-tunes the flow runs at once, each in its own process (task_runner), sharing this machine's
    cores between them. 1 (the default, for 2 cores) runs them one after another in the flow's process."""
    task_runner: Literal["process", "dask"] = "process"
    """What runs the parallel fine-tunes (parallel_finetunes above 1): `process`, Prefect's
    ProcessPoolTaskRunner on this machine; `dask`, prefect-dask's DaskTaskRunner, on a Dask LocalCluster
    of parallel_finetunes worker processes here, or on the cluster at dask_address."""
    dask_address: str | None = Field(None, min_length=1)
    """Scheduler address of a running Dask cluster for task_runner dask, e.g. `tcp://host:8786`; its
    workers then decide how many fine-tunes run at once. Every worker needs the project installed, the
    workspace at the flow's path on a shared file system, and to reach the flow's MLflow tracking store
    (see flows/pipeline.py, finetune_runner). null starts a LocalCluster on this machine for the run."""

    @model_validator(mode="after")
    def _dask_settings_need_dask(self) -> FlowParams:
        # Either setting would be ignored silently otherwise: the flow only reads dask_address for dask,
        # and runs fine-tunes one after another in its own process when parallel_finetunes is 1.
        if self.dask_address is not None and self.task_runner != "dask":
            raise NestedKeyError("dask_address", f"needs task_runner: dask, not {self.task_runner!r}")
        if self.task_runner == "dask" and self.parallel_finetunes < 2:
            raise NestedKeyError("task_runner", "dask needs parallel_finetunes of 2 or more (with 1, "
                                 "fine-tunes run one after another in the flow's process)")
        return self


class Params(Section):
    """params.yaml: one section per pipeline stage."""

    prepare: PrepareParams = Field(default_factory=PrepareParams)
    """Data preparation: sources, splits, subsampling."""
    tokenizer: TokenizerParams = Field(default_factory=TokenizerParams)
    """Tokenizer training on the pretraining corpus (the family's kind: WordPiece, byte-level BPE, Unigram)."""
    pretrain: PretrainParams = Field(default_factory=PretrainParams)
    """Pretraining of the family's model with its objective (masked LM, causal LM, span corruption)."""
    finetune: FinetuneParams = Field(default_factory=FinetuneParams)
    """Fine-tuning on the labelled task, one run per strategy."""
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    """Scoring every fine-tuned model on validation and test."""
    register: RegisterParams = Field(default_factory=RegisterParams)
    """Registration of the best model in the MLflow registry."""
    promote: PromoteParams = Field(default_factory=PromoteParams)
    """The promotion gate: the challenger replaces the champion only when it is really better."""
    data_efficiency: DataEfficiencyParams = Field(default_factory=DataEfficiencyParams)
    """The data-efficiency experiment: strategies retrained on fractions of the labelled data."""
    flow: FlowParams = Field(default_factory=FlowParams)
    """The Prefect flow's own settings (not a stage): how many fine-tunes run at once."""

    @model_validator(mode="after")
    def _strategies_fit_family_and_task(self) -> Params:
        # Across sections: a strategy applies to some architectures and task types; the family record says what its model is.
        family, task_type = get_family(self.pretrain.family), self.prepare.task_type
        # Whether each strategy applies at all comes first: a strategy that does not, has no positions to count.
        for key, names in (("finetune.strategies", self.finetune.strategies),
                           ("data_efficiency.strategies", self.data_efficiency.strategies)):
            for name in names:
                strategy = get_strategy(name)
                if reason := strategy.why_not(family, task_type):
                    raise ValueError(f"{key}: {name!r} {reason}")
                if reason := strategy.unavailable(family.name):
                    raise ValueError(f"{key}: {name!r} cannot run with the installed libraries: {reason}")
        positions, length = self.pretrain.model.max_length, self.finetune.max_length
        for name in self.finetune.strategies if not family.relative_positions else ():
            extra = get_strategy(name).Options.model_validate(self.finetune.options.get(name, {})).extra_positions()
            if length + extra > positions:
                raise ValueError(f"finetune.max_length ({length})" + (f" + {name}'s {extra} positions" if extra else "")
                                 + f" exceeds the {positions} positions of the pretrained {family.name} model "
                                 "(pretrain.model.max_length)")
        if self.finetune.pooling and self.finetune.pooling not in family.poolings:
            takes = f"takes {' or '.join(family.poolings)}" if family.poolings else "has no pooling to choose (null)"
            raise ValueError(f"finetune.pooling: {self.finetune.pooling}: family {family.name}'s sequence classifier {takes}")
        words, names = self.finetune.prompt.label_words, self.prepare.label_names
        in_words = any(HEADS[head].served_scoring for head in family.heads.values())  # labels said as words
        if in_words and task_type == "classification" and names and len(words) != len(names):
            raise ValueError(f"finetune.prompt.label_words {words} must give one word per label of "
                             f"prepare.label_names {names}")
        return self


def _key_and_problem(error: dict) -> tuple[str, str]:
    key, problem = ".".join(str(p) for p in error["loc"]), error["msg"].removeprefix("Value error, ")
    if isinstance(nested := error.get("ctx", {}).get("error"), NestedKeyError):
        key, problem = ".".join(part for part in (key, nested.key) if part), nested.problem
    return key, problem


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file; every problem is reported with its dotted key."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    try:
        params = Params.model_validate(raw)
    except ValidationError as err:
        # A check across sections has no key of its own (its message names the keys): no "<root>: ".
        problems = "; ".join(": ".join(part for part in _key_and_problem(e) if part) for e in err.errors())
        raise ParamsError(f"{path}: {problems}") from None
    return params

