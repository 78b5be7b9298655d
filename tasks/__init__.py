"""Pipeline stages: one module per stage, each run by `dvc repro` (`python -m tasks.<stage>`) and by
the Prefect flow in flows/pipeline.py. The stage name, the module and the params.yaml key agree."""
