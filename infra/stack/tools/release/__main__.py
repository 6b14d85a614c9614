from stack.tools.release.cli import main

raise SystemExit(main())
