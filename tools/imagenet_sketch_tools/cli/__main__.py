"""`python -m imagenet_sketch_tools.cli`: the `imagenet-sketch` command."""

import sys

from imagenet_sketch_tools.cli.main import main

sys.exit(main())
