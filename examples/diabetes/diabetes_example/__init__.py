"""An example team project under releasegate: scikit-learn's diabetes regression (``rmse``, lower is better).

``data``: the team's data step, one Parquet file of inputs and one of labels per business date;
``training``: fit a Ridge regression and log it through ``releasegate.evidence`` (reference profile,
DataFrame ``input_example`` so the signature names the columns, pinned requirements); ``retrain_job``:
its own Prefect flow ``diabetes-retrain``, governed by ``releasegate.governed``. Uses only releasegate's
public contract: the manifest entry (``models.yaml``), ``releasegate.evidence`` and ``releasegate.governed``.
"""

MODEL = "diabetes"
