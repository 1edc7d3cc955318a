import numpy as np
import pytest

from gainmap_format.colour import PRIMARIES
from gainmap_format.errors import InputError
from gainmap_format.evaluation.inputs import (
    GREY_LUMINANCE,
    PEAK_LUMINANCE,
    BenchInput,
    find_inputs,
    load_image,
    master_hdr,
)
from gainmap_format.hdrio import HdrImage, write_exr, write_radiance
from gainmap_format.scenes import hdr_scene
from tests.conftest import jpeg_bytes


@pytest.fixture
def folder(tmp_path):
    scene = hdr_scene(40, 60, seed=2)
    write_exr(tmp_path / "a.exr", scene, chromaticities=PRIMARIES["bt2020"], white_luminance=1.0)
    write_radiance(tmp_path / "b.hdr", scene / 100.0)
    (tmp_path / "b.jpg").write_bytes(jpeg_bytes(np.full((40, 60, 3), 128, np.uint8)))
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_folders_pair_hdr_and_sdr_by_stem(folder):
    inputs = find_inputs([folder])
    assert [(i.name, i.sdr_path) for i in inputs] == [("a.exr", None), ("b.hdr", folder / "b.jpg")]
    assert find_inputs([folder / "b.hdr", folder / "b.jpg", folder / "b.hdr"]) == inputs[1:]


@pytest.mark.parametrize("name", ["missing.exr", "notes.txt", "lonely.png"])
def test_bad_paths(folder, name):
    (folder / "lonely.png").write_bytes(b"")
    with pytest.raises(InputError):
        find_inputs([folder / name])


def test_a_folder_without_hdr_images(tmp_path):
    with pytest.raises(InputError, match="no HDR images"):
        find_inputs([tmp_path])


def test_master_sets_grey_and_clips_the_peak():
    pixels = np.full((4, 4, 3), 0.5, np.float32)
    pixels[0, 0] = 1e4
    mastered = master_hdr(HdrImage(pixels, PRIMARIES["bt709"], None, "exr"))
    assert mastered.max() == PEAK_LUMINANCE
    assert GREY_LUMINANCE / 2 < np.median(mastered) < GREY_LUMINANCE * 2


def test_a_lone_hdr_is_mastered_and_tone_mapped(folder):
    image = load_image(BenchInput("a.exr", folder / "a.exr"))
    assert image.hdr_pq.shape == (40, 60, 3) and image.sdr.dtype == np.uint8 and not image.paired
    assert np.array_equal(image.sdr_pixels(), image.sdr)


def test_a_pair_keeps_its_jpeg(folder):
    image = load_image(BenchInput("b.hdr", folder / "b.hdr", folder / "b.jpg"))
    assert image.paired and image.sdr == (folder / "b.jpg").read_bytes()
    assert image.sdr_pixels().shape == (40, 60, 3)


def test_large_images_shrink(folder):
    lone = load_image(BenchInput("a.exr", folder / "a.exr"), max_megapixels=0.0006)
    assert lone.hdr_pq.shape == (20, 30, 3) and lone.sdr.shape == (20, 30, 3)
    pair = load_image(BenchInput("b.hdr", folder / "b.hdr", folder / "b.jpg"), max_megapixels=0.0006)
    assert pair.hdr_pq.shape == (20, 30, 3) and isinstance(pair.sdr, np.ndarray) and pair.sdr.shape == (20, 30, 3)


def test_a_pair_of_different_sizes(folder):
    (folder / "b.jpg").write_bytes(jpeg_bytes(np.zeros((10, 10, 3), np.uint8)))
    with pytest.raises(InputError, match="is 10x10 but its HDR image is 60x40"):
        load_image(BenchInput("b.hdr", folder / "b.hdr", folder / "b.jpg"))
