"""SceneNet RGB-D → mtsyn_tf samples (convert.py) and a tfds builder."""
