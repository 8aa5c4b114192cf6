"""releasegate: the governance layer that decides when ML jobs run and whether a model may reach production.

Policy modules in this package (everything except ``adapters`` and ``cli``) are pure functions over
pydantic models with the clock passed in; they never import Prefect. Flows in ``flows/`` call them and
do the I/O.
"""

import os as _os

# Nothing may reach the internet at run time: telemetry of Prefect and MLflow is off unless the
# operator explicitly turns it on. Set before either library is imported anywhere in the process.
_os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
_os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
_os.environ.setdefault("DO_NOT_TRACK", "1")

__version__ = "0.1.0"
