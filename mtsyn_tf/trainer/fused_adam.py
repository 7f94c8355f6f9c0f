"""Adam whose dense update is TensorFlow's fused kernel ``ResourceApplyAdam``: one op per
variable instead of Keras 3's five element-wise passes and three assigns.

Keras 3's ``Adam.update_step`` (``keras/src/optimizers/adam.py``) runs, per variable,
``m += (g − m)·(1 − β1)``, ``v += (g² − v)·(1 − β2)`` and
``var −= α·m / (√v + ε)`` with ``α = lr·√(1 − β2^t) / (1 − β1^t)``, each product a
separate op with its own temporary, so m, v and var are each read and written several
times. TensorFlow's CPU kernel (``ApplyAdamNonCuda`` in
``tensorflow/core/kernels/training_ops.cc``) evaluates the same formula in one pass:
``alpha = lr * sqrt(1 - beta2_power) / (1 - beta1_power)``, then per element
``m += (g - m) * (1 - beta1)``, ``v += (g.square() - v) * (1 - beta2)``,
``var -= (m * alpha) / (v.sqrt() + epsilon)``, each op rounded once as Keras' ops are. The
GPU kernel (``training_ops_gpu.cu.cc``) evaluates the same formula element by element.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# The dtypes whose fused update tests/trainer/test_fused_adam.py compares with Keras'.
_FUSED_DTYPES = (tf.float32, tf.float64)


# === Optimizer ===
@keras.saving.register_keras_serializable(package="mtsyn_tf")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` with the dense update in ``tf.raw_ops.ResourceApplyAdam``.

    Same hyperparameters, slots (``momentum`` / ``velocity`` per variable, built by
    ``Adam.build``), variable names and config as Keras' Adam, so checkpoints move between
    the two unchanged. Keras' own update runs instead where the kernel does not apply:
    ``amsgrad``, sparse (``IndexedSlices``) gradients, a backend other than TensorFlow,
    and variable dtypes other than float32/float64.

    One difference in rounding: Keras forms ``1 − β`` in Python (float64) and rounds it to
    the variable's dtype; the kernel subtracts in that dtype from the rounded β. For the
    default β2 = 0.999 in float32 the two step weights of ``v`` differ by 1.3·10⁻⁵
    relative (``v`` and the update by at most that and half of it); the kernel's form is
    the exact Adam recurrence for β2 = float32(0.999), the β its bias correction uses.
    """

    def update_step(self, gradient, variable, learning_rate):
        if not self._fused_applies(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        tf_variable = variable.value if isinstance(variable, keras.Variable) else variable
        dtype = tf_variable.dtype
        index = self._get_variable_index(variable)
        m, v = self._momentums[index].value, self._velocities[index].value
        # The scalars exactly as Keras' update_step forms them (same ops, same dtype).
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        # ``.handle`` of a mirrored slot inside ``distribution.extended.update`` is the
        # component on the device being updated, as the per-device ``variable`` is.
        return tf.raw_ops.ResourceApplyAdam(
            var=tf_variable.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=tf.pow(beta_1, local_step),
            beta2_power=tf.pow(beta_2, local_step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
            use_nesterov=False,
        )

    def _fused_applies(self, gradient, variable) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and not self.amsgrad
            and not isinstance(gradient, tf.IndexedSlices)
            and tf.as_dtype(variable.dtype) in _FUSED_DTYPES
        )
