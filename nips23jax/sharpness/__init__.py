"""Sharpness from Hessian-vector products: trace (exact, Hutchinson, interpolation identity), top eigenvalue."""

from nips23jax.sharpness.hessian import TopEigen as TopEigen
from nips23jax.sharpness.hessian import hessian_trace as hessian_trace
from nips23jax.sharpness.hessian import hvp as hvp
from nips23jax.sharpness.hessian import interpolation_hessian_trace as interpolation_hessian_trace
from nips23jax.sharpness.hessian import top_hessian_eigenvalue as top_hessian_eigenvalue
