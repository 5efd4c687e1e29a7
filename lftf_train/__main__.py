import sys

from lftf_train.cli import main

sys.exit(main())
