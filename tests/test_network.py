import numpy as np
import pytest

from gainmap_format import network


def random_weights(width=16, seed=0, scale=0.3) -> network.MlpWeights:
    rng = np.random.default_rng(seed)
    return network.MlpWeights(
        **{k: (rng.standard_normal(s) * scale).astype(np.float32) for k, s in network.parameter_shapes(width).items()}
    )


def test_positional_encoding_values():
    enc = network.positional_encoding(np.array([0.0, 0.25, -1.0]))
    assert enc.shape == (3, 24) and enc.dtype == np.float32
    assert np.allclose(enc[0, :12], 0.0) and np.allclose(enc[0, 12:], 1.0)
    assert enc[1, 0] == pytest.approx(np.sin(np.pi / 4)) and enc[1, 13] == pytest.approx(np.cos(np.pi / 2), abs=1e-7)
    assert enc[2, 11] == pytest.approx(np.float32(np.sin(-(2.0**11) * np.pi)), abs=1e-6)


def test_coordinates_and_levels():
    assert network.coordinates(1).tolist() == [0.0]
    assert network.coordinates(3).tolist() == [-1.0, 0.0, 1.0]
    levels = network.normalised_levels(0.5, 1.0)
    assert levels[0] == pytest.approx(-1.0) and levels[255] == pytest.approx(1.0)


def test_parameter_count_of_default_width_is_2259():
    weights = random_weights(16)
    assert weights.parameter_count() == 120 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3 == 2259
    assert weights.hidden_width == 16


@pytest.mark.parametrize("activation", ["sine", "relu"])
def test_table_forward_equals_the_120_wide_product(activation):
    weights = random_weights(8, seed=2)
    rng = np.random.default_rng(3)
    code = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    levels = network.positional_encoding(network.normalised_levels(0.45, 0.8))
    rows = network.positional_encoding(network.coordinates(5))
    cols = network.positional_encoding(network.coordinates(7))
    out = network.forward(weights, activation, code, levels, rows, cols)
    first = np.concatenate([weights.Wc[0], weights.Wc[1], weights.Wc[2], weights.Wy, weights.Wx])
    for y in range(5):
        for x in range(7):
            colour = [levels[code[y, x, c]] for c in range(3)]
            features = np.concatenate([*colour, rows[y], cols[x]])
            hidden = network.activate(features @ first + weights.b1, activation)
            hidden = network.activate(hidden @ weights.W2 + weights.b2, activation)
            assert np.allclose(out[y, x], hidden @ weights.W3 + weights.b3, atol=1e-5)


def test_doubling_encoding_agrees_with_the_direct_one_to_a_binary32_rounding():
    """Spec §6.1 [NET-7] note: another binary64 evaluation order may differ by one binary32 rounding."""
    values = np.concatenate([np.random.default_rng(7).uniform(-1, 1, 200_000), [-1.0, 0.0, 1.0, 0.5, -0.25]])
    direct = network.positional_encoding(values)
    doubled = network.doubling_encoding(values)
    assert doubled.shape == direct.shape and doubled.dtype == np.float32
    # One binary32 ulp of each value; near a zero of the sine, the binary64 phase's own rounding (1e-12).
    assert np.all(np.abs(doubled - direct) <= np.spacing(np.abs(direct)) + 1e-12)
    assert np.count_nonzero(doubled != direct) <= values.size * 24 // 10_000
    out = np.zeros((24, values.size), np.float32).T
    assert network.doubling_encoding(values, out=out) is out and np.array_equal(out, doubled)


@pytest.mark.parametrize(("positions", "count", "expected"), [
    ([0.5, 10.5, 5.5], 11, [-1.0, 1.0, 0.0]),
    ([-3.0, 0.0, 0.25, 11.0, 1e9], 11, [-1.0, -1.0, -1.0, 1.0, 1.0]),
    ([0.5, 7.3, -2.0], 1, [0.0, 0.0, 0.0]),
])
def test_source_coordinates_clamp_to_the_edge_pixel_centres(positions, count, expected):
    assert np.allclose(network.source_coordinates(np.array(positions), count), expected, atol=1e-15)


def test_source_coordinates_of_pixel_centres_are_the_fit_coordinates():
    assert np.allclose(network.source_coordinates(np.arange(37) + 0.5, 37), network.coordinates(37), atol=1e-15)
