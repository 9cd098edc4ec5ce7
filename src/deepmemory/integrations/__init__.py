"""Integrations with other agent stacks, each behind its own optional extra.

The core never imports these modules; each imports its library at the top, so a
missing extra fails at import with the install command.
"""
