import sys

from tests.infra.snapshots import main

sys.exit(main(sys.argv[1:]))
