"""mtsyn_tf: cross-domain self-supervised multi-task feature learning from synthetic imagery."""

from setuptools import find_packages, setup

setup(
    name="mtsyn_tf",
    version="0.1.0",
    description=(
        "Keras 3 / TensorFlow implementation of Ren & Lee (CVPR 2018): multi-task "
        "feature learning on rendered scenes with adversarial adaptation to real photos."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mtsyn_tf", "mtsyn_tf.*", "datasets", "datasets.*"]),
    install_requires=[
        # `tensorflow` (not tensorflow-cpu): the Linux wheel is GPU-capable and runs on CPU.
        "tensorflow>=2.18,<2.22",
        "keras>=3.6,<4",
        "tensorflow-datasets>=4.9,<5",
        "numpy>=1.26,<3",
        "opencv-python-headless>=4.9",
        "absl-py>=2.0",
        # The embedded real-photo domain: photos that ship inside these two packages.
        "scikit-image>=0.22",
        "scikit-learn>=1.4",
        "h5py>=3.10",
        # BSDS edge matching uses scipy.sparse.csgraph.maximum_flow(method="dinic").
        "scipy>=1.8",
        # tensorflow-datasets builders need it at download_and_prepare time.
        "importlib_resources>=6",
        # TF 2.21 no longer pulls TensorBoard in; tf.summary needs it for scalars/images.
        "tensorboard>=2.18",
    ],
    extras_require={
        "render": ["mitsuba>=3.5,<4", "pyoidn>=2.5,<3"],
        "beam": ["apache-beam[tfrecord]>=2.55", "google-crc32c>=1.5"],
        "onnx": ["tf2onnx>=1.16", "onnx>=1.15", "onnxruntime>=1.17"],
        "serving": ["tensorflow-serving-api>=2.18"],
        "dev": ["pytest>=8", "pytest-xdist>=3.5", "pytest-timeout>=2.2", "ruff>=0.6"],
    },
)
