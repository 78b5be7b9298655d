"""multitask: one encoder, a head per task (SST-2 and AG News), trained jointly.

    pytest tests/test_multitask.py

The prepare stage carves AG News' three splits from its one local split (disjoint, stratified, said
in the data card); the hand-written module learns both tasks and exports each head as a plain
transformers classifier with identical outputs; the strategy runs through the finetune stage and
reports the auxiliary task against single-task `full`.
"""

from __future__ import annotations

import json

import torch
from transformers import BertConfig, BertModel

from tasks.strategies.multitask import MultitaskModel, export
from transferflow.models import load_classifier


def test_prepare_carves_ag_news_from_its_test_split(in_pretrained):
    from transferflow.config import load_params
    from transferflow.files import load_prepared

    holdout = load_params("params.yaml").prepare.aux_holdout_rows
    aux = load_prepared("artifacts/prepare/aux_task")
    assert aux["train"].features["label"].names == ["World", "Sports", "Business", "Sci/Tech"]
    assert (len(aux["validation"]), len(aux["test"]), len(aux["train"])) == (holdout, holdout, 7600 - 2 * holdout)
    texts = [set(aux[split]["text"]) for split in ("train", "validation", "test")]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert sorted(set(aux["test"]["label"])) == [0, 1, 2, 3]
    card = json.loads((in_pretrained / "artifacts/prepare/data_card.json").read_text())["aux_task"]
    assert "test split" in card["caveat"] and card["splits"]["test"]["labels"]["Sports"] == holdout // 4


def _tiny(tmp_path):
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    config.save_pretrained(tmp_path)  # export() reads the encoder's config from the pretrained folder
    torch.manual_seed(0)
    return MultitaskModel(BertModel(config), [2, 4], aux_weight=1.0)


def test_module_learns_both_tasks_and_exports_identical_heads(tmp_path):
    model = _tiny(tmp_path)
    ids = torch.randint(5, 40, (8, 6), generator=torch.Generator().manual_seed(1))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "task": torch.tensor([0, 1] * 4),
             "labels": torch.tensor([0, 3, 1, 2, 0, 1, 1, 0])}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.eval()  # no dropout: the loss must fall on the batch itself
    first = model(**batch)["loss"].item()
    for _ in range(30):
        optimizer.zero_grad()
        model(**batch)["loss"].backward()
        optimizer.step()
    out = model(**batch)
    assert out["loss"].item() < 0.5 * first
    assert (out["logits"][batch["task"] == 0, 2:] < -1e3).all()  # the 2-label task never predicts 2 or 3

    with torch.no_grad():
        for t, names in ((0, ["negative", "positive"]), (1, ["World", "Sports", "Business", "Sci/Tech"])):
            rows = batch["task"] == t
            plain = export(model, t, names, tmp_path)
            expected = out["logits"][rows, :len(names)]
            got = plain(input_ids=ids[rows], attention_mask=batch["attention_mask"][rows]).logits
            torch.testing.assert_close(got, expected)
            assert plain.config.id2label[len(names) - 1] == names[-1]


def test_runs_through_the_finetune_stage(in_pretrained):
    from tasks import finetune
    from transferflow.config import load_params

    params = load_params("params.yaml")
    short = params.finetune.model_copy(update={"max_steps": 4, "eval_steps": 2,
                                               "options": {"multitask": {"compare_single_task": True}}})
    summary = finetune.main(params.model_copy(update={"finetune": short}), "multitask")

    assert summary["strategy"] == "multitask" and summary["steps"] == 4
    aux = summary["aux_task"]
    assert aux["source"] == "data/ag_news" and set(aux["test"]) >= {"accuracy", "f1"}
    assert aux["single_task_full"]["test"]["accuracy"] == summary["aux_single_task_full_test_accuracy"]
    assert "single-task full" in summary["notes"][0]
    figures = json.loads((in_pretrained / "metrics/finetune/multitask.json").read_text())
    assert {"aux_test_accuracy", "aux_single_task_full_test_accuracy", "validation_accuracy"} <= set(figures)

    texts = ["a gripping , funny film", "stocks fell as oil prices rose"]
    main = load_classifier(in_pretrained / "artifacts/finetune/multitask/model")  # the leaderboard row
    assert main.label_names == ["negative", "positive"] and set(main.predict(texts).tolist()) <= {0, 1}
    assert len(load_classifier(in_pretrained / "artifacts/finetune/multitask/aux_model").label_names) == 4
