"""`python -m agent.cli`: the same as the `fal-persona` script."""
import sys

from agent.cli import main

sys.exit(main())
