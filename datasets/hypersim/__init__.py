"""Hypersim → mtsyn_tf samples (convert.py) and a tfds builder (hypersim_dataset_builder.py)."""
