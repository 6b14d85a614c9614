from stack.release.cli import main

raise SystemExit(main())
