"""QLoRA building blocks. So far: NF4 storage bit-compatible with bitsandbytes, with double quantization."""

from nips23jax.qlora.nf4 import NF4_CODE as NF4_CODE
from nips23jax.qlora.nf4 import NF4Tensor as NF4Tensor
from nips23jax.qlora.nf4 import bits_per_param as bits_per_param
from nips23jax.qlora.nf4 import dequantize_nf4 as dequantize_nf4
from nips23jax.qlora.nf4 import dynamic_map as dynamic_map
from nips23jax.qlora.nf4 import from_bitsandbytes as from_bitsandbytes
from nips23jax.qlora.nf4 import quantize_nf4 as quantize_nf4
from nips23jax.qlora.nf4 import to_bitsandbytes as to_bitsandbytes
