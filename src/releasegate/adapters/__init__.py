"""I/O adapters. The only place in ``src/releasegate`` that imports Prefect (and, later, MLflow).

Policy modules stay pure; a test checks that none of them imports Prefect.
"""
