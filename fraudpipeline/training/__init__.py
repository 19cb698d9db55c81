"""Training and evaluation of the fraud model (`fraudpipe train`).

Heavy libraries (xgboost, bentoml) are imported inside functions so that the CLI stays fast.
"""
