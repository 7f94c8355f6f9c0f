"""mtsyn_tf: cross-domain self-supervised multi-task feature learning from synthetic imagery.

Keras 3 / TensorFlow implementation of Ren & Lee, CVPR 2018 (arXiv 1711.09082).
"""

from mtsyn_tf import runtime as _runtime

# Before anything imports TensorFlow: oneDNN kernels on AVX2 CPUs too (TF turns them on
# only with AVX-512 VNNI/BF16/AMX); TF_ENABLE_ONEDNN_OPTS=0 in the environment still wins.
_runtime.prefer_onednn()

__version__ = "0.1.0"
