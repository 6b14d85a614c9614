"""The old path of `stack.platform.node_group_scaling`, for providers stored by reference.

Stacks whose node group bounds were last updated before the provider was stored by value (the
commit "Node group bounds: the stack's AWS settings, a read for refresh, stored by value") hold
it pickled by reference: dill stored the module path `stack.autoscaling.node_group_scaling` and
the names in it, and loads them from here when such a stack is refreshed, updated or destroyed.
Every `pulumi up` since stores the provider by value, so this module can go once every deployed
stack has run `pulumi up` with that commit or later (`pulumi stack export` then shows no
`stack.autoscaling` in the `__provider` of its NodeGroupScaling resources).
"""

from stack.platform import node_group_scaling as _moved

globals().update({name: value for name, value in vars(_moved).items() if not name.startswith("__")})
