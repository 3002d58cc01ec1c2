"""Effective parameters and the double-descent "U-turn" (Curth, Jeffares & van der Schaar, NeurIPS 2023).

Linear smoothers ``ŷ(x) = ŝ(x)ᵀ y`` for RFF regression (min-norm and ridge), kernel ridge,
PCA-then-OLS (the unfolded RFF model), regression trees, forests and L2 boosting, and the
generalized effective number of parameters ``p̂⁰ = n/|I₀| Σ_j ‖ŝ(x_j)‖²`` on any set of inputs.
"""

from nips23jax.double_descent.effective_params import effective_parameters as effective_parameters
from nips23jax.double_descent.effective_params import smoother_predict as smoother_predict
from nips23jax.double_descent.rff import RandomFourierFeatures as RandomFourierFeatures
from nips23jax.double_descent.rff import init_rff as init_rff
from nips23jax.double_descent.rff import rff_features as rff_features
from nips23jax.double_descent.rff import rff_regression_smoother as rff_regression_smoother
from nips23jax.double_descent.rff import unfolded_rff_smoother as unfolded_rff_smoother
from nips23jax.double_descent.smoothers import gaussian_kernel as gaussian_kernel
from nips23jax.double_descent.smoothers import kernel_pca_ols_smoother as kernel_pca_ols_smoother
from nips23jax.double_descent.smoothers import kernel_ridge_smoother as kernel_ridge_smoother
from nips23jax.double_descent.smoothers import least_squares_smoother as least_squares_smoother
from nips23jax.double_descent.smoothers import pca_ols_smoother as pca_ols_smoother
from nips23jax.double_descent.trees import BoostedTrees as BoostedTrees
from nips23jax.double_descent.trees import boosting_smoother as boosting_smoother
from nips23jax.double_descent.trees import boosting_update as boosting_update
from nips23jax.double_descent.trees import fit_l2_boosting as fit_l2_boosting
from nips23jax.double_descent.trees import forest_smoother as forest_smoother
from nips23jax.double_descent.trees import leaf_boosting_smoother as leaf_boosting_smoother
from nips23jax.double_descent.trees import leaf_smoother as leaf_smoother
from nips23jax.double_descent.trees import tree_leaves as tree_leaves
from nips23jax.double_descent.trees import tree_smoother as tree_smoother
