"""Prefect flows: thin shells that call the policy in ``releasegate`` and do the I/O."""
