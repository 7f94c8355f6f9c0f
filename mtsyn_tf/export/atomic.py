"""Write-then-rename for export artifacts; the implementation lives in ``mtsyn_tf.io_utils``.

Kept so the export modules and ``scripts/export.py`` can import from their own package.
"""

from mtsyn_tf.io_utils import atomic_directory, atomic_file

__all__ = ["atomic_directory", "atomic_file"]
