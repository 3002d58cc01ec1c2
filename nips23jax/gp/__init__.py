"""GP posterior sampling with SGD (Lin et al., NeurIPS 2023): kernels, random Fourier features,
pathwise conditioning, Cholesky / CG / SGD / inducing-point solvers, marginal-likelihood fitting.

Example::

    from nips23jax import gp
    params = gp.init_params(8, lengthscale=1.0, noise_variance=0.1)
    post = gp.posterior(x, y, params, kernel=gp.matern32, solver="sgd", key=key, num_samples=64)
    mu, var = post.predict(x_test)
"""

from nips23jax.gp.hyperparams import fit_hyperparameters as fit_hyperparameters
from nips23jax.gp.hyperparams import log_marginal_likelihood as log_marginal_likelihood
from nips23jax.gp.kernels import KERNELS as KERNELS
from nips23jax.gp.kernels import Kernel as Kernel
from nips23jax.gp.kernels import check_data as check_data
from nips23jax.gp.kernels import check_params as check_params
from nips23jax.gp.kernels import get_kernel as get_kernel
from nips23jax.gp.kernels import init_params as init_params
from nips23jax.gp.kernels import kernel_matrix as kernel_matrix
from nips23jax.gp.kernels import kernel_matvec as kernel_matvec
from nips23jax.gp.kernels import matern12 as matern12
from nips23jax.gp.kernels import matern32 as matern32
from nips23jax.gp.kernels import matern52 as matern52
from nips23jax.gp.kernels import rbf as rbf
from nips23jax.gp.posterior import SOLVERS as SOLVERS
from nips23jax.gp.posterior import GPPosterior as GPPosterior
from nips23jax.gp.posterior import posterior as posterior
from nips23jax.gp.rff import RandomFeatures as RandomFeatures
from nips23jax.gp.rff import prior_sample_fn as prior_sample_fn
from nips23jax.gp.rff import random_features as random_features
from nips23jax.gp.rff import rff_features as rff_features
from nips23jax.gp.solvers import SolverResult as SolverResult
from nips23jax.gp.solvers import cholesky as cholesky
from nips23jax.gp.solvers import conjugate_gradients as conjugate_gradients
from nips23jax.gp.solvers import inducing as inducing
from nips23jax.gp.solvers import pivoted_cholesky as pivoted_cholesky
from nips23jax.gp.solvers import preconditioned_cg as preconditioned_cg
from nips23jax.gp.solvers import sgd as sgd
