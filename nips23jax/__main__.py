from nips23jax.cli import main
import sys
sys.exit(main())
