"""gpt: a GPT-2 decoder (byte-level BPE), pretrained with causal LM; fine-tuned on prompt + label word
(transferflow/heads.py:PromptAnswerHead), or prompted with no training (the prompt strategy)."""

from __future__ import annotations

from transferflow.family import AdapterLayout, Family, register


def tokenizer(texts, p, model_max_length: int = 512):
    from transferflow.tokenizers import byte_level_bpe

    return byte_level_bpe(texts, p, model_max_length)


def build(p, tokenizer, dropout: float):
    from transformers import GPT2Config, GPT2LMHeadModel

    m = p.model
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=m.hidden_size, n_layer=m.num_layers, n_head=m.num_heads,
        n_inner=m.intermediate_size, n_positions=m.max_length, resid_pdrop=dropout, embd_pdrop=dropout,
        attn_pdrop=dropout, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, attn_implementation="sdpa",
    )
    return GPT2LMHeadModel(config)


def collator(p, tokenizer):
    from transformers import DataCollatorForLanguageModeling

    return DataCollatorForLanguageModeling(tokenizer, mlm=False)  # labels = inputs; the model shifts


def checkpoint_class():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM


register(Family(
    name="gpt", architecture="decoder", objective="causal-LM", tokenizer=tokenizer, build=build, collator=collator,
    checkpoint_class=checkpoint_class, prediction="shifted",  # any causal LM that Auto loads
    dropout_fields=("resid_pdrop", "embd_pdrop", "attn_pdrop"),
    # GPT-2's fused query/key/value projection, stored transposed (Conv1D)
    layout=AdapterLayout(lora_targets=("c_attn",), fan_in_fan_out=True),
    heads={"classification": "prompt_answer"},
))
