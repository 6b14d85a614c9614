"""The stack's configuration: the validated model (`model`), the rules that span sections
(`rules`), the data those rules check against (`catalog`: the instance types that exist;
`memory`: what the pods' uploads and images cost), the one reader of stack files and of the
Pulumi runtime config (`loader`), and the JSON schema of stack files (`schema`,
`python -m stack.config.schema`)."""
