"""Neural-network estimators (MLP classifier and regressor) trained by the one training loop."""

from .mlp import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
