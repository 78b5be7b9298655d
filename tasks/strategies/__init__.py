"""Fine-tuning strategies, one file each: a file registers its strategy (transferflow/strategy.py) when
transferflow.strategy.get_strategy first asks for it by name. Importing this package imports none of them."""
