"""The Pulumi program: validate the stack config, build the stack, export its outputs."""

import pulumi

from stack.config.loader import load_stack_config
from stack.program import build

config = load_stack_config()
for key, value in build(config).items():
    pulumi.export(key, value)
