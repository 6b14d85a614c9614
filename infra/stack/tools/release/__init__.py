"""Releasing the service: which image a stack runs, how CI builds it and where it pushes it.

`image.py` holds the pure rules (the platforms to build for and to emulate, an ECR
repository's parts, the digest a tag resolves to); `bootstrap.py` decides whether a deploy must
create the platform before it can push the image; `__main__.py` prints them for the deploy
workflow.
"""
