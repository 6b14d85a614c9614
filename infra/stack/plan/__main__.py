from stack.plan.cli import main

raise SystemExit(main())
