"""The stack's configuration: the validated model (`model`), the rules that span sections
(`rules`), the one reader of stack files and of the Pulumi runtime config (`loader`), and the
JSON schema of stack files (`schema`, `python -m stack.config.schema`)."""
