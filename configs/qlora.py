"""qlora: Dettmers et al. (NeurIPS 2023) -- 4-bit data types, fine-tuning memory, QLoRA vs full fine-tuning.

Run:
  nips23jax reproduce qlora --quick   # a few minutes on 2 CPU cores
  nips23jax reproduce qlora           # wider model (LoRA < 1% of parameters), longer fine-tuning

Setup: a tiny Transformer is pretrained on 2-digit addition (answers least-significant digit
first), then fine-tuned on a new task, the same sums written most-significant digit first, by full
fine-tuning (fp32 stands in for the paper's 16 bits on CPU), by LoRA over the fp32 base and by
QLoRA (NF4 + double quantization base, LoRA on every linear layer but the head). The pretrained
model's linear layers are also quantized with NF4, NF4+DQ, FP4 and Int4 to compare errors and
perplexity, and fine-tuning memory of LLaMA-shaped 7B-65B models is counted byte by byte.

Expected (measured 2026-11-29 on 2 CPU cores; full run 936 s, quick ~4 min): NF4 has the lowest
quantization error (normal weights: NF4 0.092, Int4 0.108, FP4 0.122 relative RMS); 4.5 -> 4.127
bits/param with DQ; 65B: 783 GB (16-bit full) vs 44.1 GB (QLoRA); QLoRA's exact match on the new
task within 0.05 of full fine-tuning (full: QLoRA 0.973, LoRA 0.998, full 1.000) while training
0.92% of the parameters (quick: 4.3%, the quick model is narrow). NOT reproduced at this scale:
NF4's perplexity edge over Int4 -- FP4 is worst, but Int4 ties or slightly beats NF4 (full:
NF4+DQ 2.51468, Int4 2.51442, FP4 2.51485, unquantized 2.51411).
"""

import ml_collections


def get_config(arg=None):
    quick = arg == "quick"
    c = ml_collections.ConfigDict()
    c.reproduction = "qlora"
    c.seed = 0

    c.task = ml_collections.ConfigDict()
    c.task.num_digits = 2

    c.model = ml_collections.ConfigDict()
    c.model.d_model = 64 if quick else 160
    c.model.num_heads = 4
    c.model.num_layers = 2
    c.model.d_ff = 4 * c.model.d_model
    c.model.tied_head = True

    c.pretrain = ml_collections.ConfigDict()
    c.pretrain.num_steps = 1000
    c.pretrain.batch_size = 64
    c.pretrain.lr = 3e-3
    c.pretrain.warmup_steps = 100
    c.pretrain.eval_every = 250
    c.pretrain.seed_offset = 0

    c.quant = ml_collections.ConfigDict()
    c.quant.block_size = 64
    c.quant.normal_shape = (512, 512) if quick else (2048, 1024)

    c.finetune = ml_collections.ConfigDict()
    c.finetune.methods = ("full", "qlora") if quick else ("full", "lora", "qlora")
    c.finetune.num_steps = 600 if quick else 1500
    c.finetune.batch_size = 64
    c.finetune.warmup_steps = 50
    c.finetune.lr_full = 1e-3
    c.finetune.lr_lora = 1e-2
    c.finetune.rank = 2 if quick else 1
    c.finetune.alpha = 2.0 * c.finetune.rank
    c.finetune.dropout = 0.0
    c.finetune.quant_type = "nf4"
    c.finetune.double_quant = True
    c.finetune.eval_every = 150 if quick else 250
    c.finetune.seed_offset = 1
    c.finetune.tolerance = 0.1 if quick else 0.05
    c.finetune.max_trainable_fraction = 0.05 if quick else 0.01

    c.memory = ml_collections.ConfigDict()
    c.memory.rank = 64  # QLoRA's recipe

    c.eval = ml_collections.ConfigDict()
    c.eval.num_examples = 500
    c.eval.num_test = 1000
    return c
