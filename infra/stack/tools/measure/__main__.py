from stack.tools.measure.cli import main

raise SystemExit(main())
