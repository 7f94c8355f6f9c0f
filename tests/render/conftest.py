"""Renderer test fixtures."""

import pytest

from mtsyn_tf.render import variant as variant_lib


def _variants():
    variants = ["scalar_rgb"]
    if variant_lib.is_variant_available("llvm_ad_rgb"):
        variants.append("llvm_ad_rgb")
    return variants


@pytest.fixture(params=_variants())
def variant(request):
    """Every working Mitsuba variant: the label conversions must agree across them."""
    return request.param
