"""QLoRA building blocks: 4-bit storage (NF4 bit-compatible with bitsandbytes, FP4, Int4) with double quantization."""

from nips23jax.qlora.nf4 import FP4_CODE as FP4_CODE
from nips23jax.qlora.nf4 import INT4_CODE as INT4_CODE
from nips23jax.qlora.nf4 import NF4_CODE as NF4_CODE
from nips23jax.qlora.nf4 import QUANT_TYPES as QUANT_TYPES
from nips23jax.qlora.nf4 import NF4Tensor as NF4Tensor
from nips23jax.qlora.nf4 import bits_per_param as bits_per_param
from nips23jax.qlora.nf4 import block_scales as block_scales
from nips23jax.qlora.nf4 import codebook as codebook
from nips23jax.qlora.nf4 import dequantize_4bit as dequantize_4bit
from nips23jax.qlora.nf4 import dequantize_nf4 as dequantize_nf4
from nips23jax.qlora.nf4 import dynamic_map as dynamic_map
from nips23jax.qlora.nf4 import from_bitsandbytes as from_bitsandbytes
from nips23jax.qlora.nf4 import quantize_4bit as quantize_4bit
from nips23jax.qlora.nf4 import quantize_fp4 as quantize_fp4
from nips23jax.qlora.nf4 import quantize_int4 as quantize_int4
from nips23jax.qlora.nf4 import quantize_nf4 as quantize_nf4
from nips23jax.qlora.nf4 import to_bitsandbytes as to_bitsandbytes
