import gc

# Running the program imports thousands of generated pulumi_aws and pulumi_kubernetes classes;
# the cyclic collector would walk that growing heap again and again while they load (about a
# quarter of a plan's CPU time). A plan is a short-lived process whose heap stays under 200 MB
# with the collector off (measured with STACK=all), so it runs without it.
gc.disable()

from stack.tools.plan.cli import main  # noqa: E402

raise SystemExit(main())
