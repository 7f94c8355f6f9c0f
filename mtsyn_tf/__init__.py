"""mtsyn_tf: cross-domain self-supervised multi-task feature learning from synthetic imagery.

Keras 3 / TensorFlow implementation of Ren & Lee, CVPR 2018 (arXiv 1711.09082).
"""

__version__ = "0.1.0"
