import sys

from imagenet_sketch_tools.main import main

sys.exit(main())
