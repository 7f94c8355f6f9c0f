"""One module per evaluation protocol, each an ``Evaluator`` (``mtsyn_tf.evaluation.evaluator``).

A module here holds the protocol's typed settings and turns its library's numbers
(``mtsyn_tf.evaluation.<library>``) into results and report sections; heavy imports
happen inside ``run``, so the table in ``mtsyn_tf.evaluation.registry`` is cheap to load.
"""
