"""The strict compile check: every Metal source of the project compiles with
Metal's address spaces enforced, and a planted address-space violation is
refused, as Apple's compiler refuses it."""

from __future__ import annotations

import metal_sim
import pytest

pytestmark = metal_sim.needs_compiler()

KERNELS_TREE = {metal_sim.REPO: "kernels/metal"}


@pytest.mark.parametrize("path", metal_sim.project_sources(), ids=lambda p: p.name)
def test_project_sources_pass(path):
    result = metal_sim.strict_check(path.read_text(), KERNELS_TREE)
    assert result.returncode == 0, result.stderr


PLANTED = """
#include <metal_stdlib>
using namespace metal;

void scale(device float* values, float factor, uint i) {
  values[i] *= factor;
}

[[kernel]] void planted(
    device float* out [[buffer(0)]],
    uint tid [[thread_index_in_threadgroup]]) {
  threadgroup float tile[32];
  tile[tid] = out[tid];
  scale(%s, 2.0f, tid);  // a threadgroup pointer where a device one is wanted
  out[tid] = tile[tid];
}
METAL_SIM_KERNEL("planted", planted)
"""


def test_address_space_violation_is_refused():
    result = metal_sim.strict_check(PLANTED % "tile")
    assert result.returncode != 0
    assert "no matching function for call to 'scale'" in result.stderr
    assert "address_space(3)" in result.stderr  # the threadgroup space


def test_the_same_kernel_without_the_violation_passes():
    result = metal_sim.strict_check(PLANTED % "out")
    assert result.returncode == 0, result.stderr
