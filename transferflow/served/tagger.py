"""The registered ner tagger as MLflow models-from-code: MLflow stores this file (not a pickle) and
runs it at load time; the model folder is the `model` artifact (transferflow/serving.py)."""

import mlflow.models

from transferflow.serving import EntityTagger

mlflow.models.set_model(EntityTagger())
