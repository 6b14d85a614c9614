"""``python -m django_eks_runtime <web|worker|beat|migrate> [extra args]``: see launch.py."""

import sys

from django_eks_runtime.launch import main

sys.exit(main())
