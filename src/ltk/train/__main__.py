"""``python -m ltk.train RECIPE ...`` = ``ltk train RECIPE ...``, for launchers that take a module:
``torchrun --nproc_per_node 2 -m ltk.train recipes/ny.yml`` or ``accelerate launch -m ltk.train ...``."""

import sys

from ltk.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]], prog_name="ltk")
