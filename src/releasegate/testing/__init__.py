"""Scaffolding for tests, demos and benchmarks, not governance: ``inprocess_worker`` (a Prefect worker
inside this process, serving deployments by name) and ``approval_driver`` (demo approvers that sign with
their own keys). Nothing in the library's use cases imports it; ``make demo``, the examples' demos, the
benchmarks and the tests do."""
