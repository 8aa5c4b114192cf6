"""An example team project under releasegate: a credit-default classifier (``roc_auc``, higher is better).

``data``: the team's data (generated portfolio-risk rows per business date: ``current_inputs`` and
``labels``, the entry points its manifest entry names); ``training``: fit and log a version through
``releasegate.evidence``; ``retrain_job``: the team's retrain deployment (``retrain-job``), which the
retrain gateway calls as a child run.
"""
