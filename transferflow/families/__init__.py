"""Model families, one file each: a file registers its record (transferflow/family.py) when
transferflow.family.get_family first asks for it by name. Importing this package imports none of them.
A family file imports torch and transformers inside its functions only: params validation reads the
records without them."""
