"""Every dataset loader on a tiny copy laid out exactly like the real archive.

The fixtures are built in tmp_path at test time (no committed binaries) and
carry their own checksums; loading them through the registry with the official
checksums must fail, which is the checksum-failure test.
"""
import dataclasses
import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import mixrepro.data.cifar as cifar_module
import mixrepro.data.fashion_mnist as fashion_mnist
from mixrepro.data import DATASETS, describe_datasets, load_cifar_c, load_dataset, print_datasets
from mixrepro.data.aircraft import AircraftCheck, load_aircraft
from mixrepro.data.cache import cache_path
from mixrepro.data.cifar import CIFAR10, CIFAR100, load_cifar
from mixrepro.data.cifar_c import CorruptionSet
from mixrepro.data.cifar_jpeg import CLASSES as JPEG_CLASSES
from mixrepro.data.cifar_jpeg import JpegCheck, load_cifar10_jpeg
from mixrepro.data.cub200 import CubCheck, load_cub200
from mixrepro.data.fashion_mnist import IdxCheck, load_fashion_mnist
from mixrepro.data.paths import data_root
from mixrepro.data.stanford_cars import CarsCheck, load_stanford_cars
from mixrepro.data.stl10 import Stl10Check, load_stl10
from mixrepro.data.synthetic import SyntheticRecipe, make_synthetic
from mixrepro.data.tiny_imagenet import TinyCheck, load_tiny_imagenet
from mixrepro.errors import ChecksumError, DatasetMissingError, InvalidParameterError, UnknownNameError


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MIXREPRO_DATA", raising=False)


def md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def random_images(n, h=32, w=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def jpeg_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def pil_decode(data) -> np.ndarray:
    """Independent decode for comparison: Pillow straight from the bytes."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def write_jpeg(path: Path, image: np.ndarray) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = jpeg_bytes(image)
    path.write_bytes(data)
    return data


# ------------------------------------------------------------------ CIFAR python archives


def build_cifar_archive(root: Path, fmt, per_class=2, seed=0):
    """The official archive layout: pickled batches of R, G, B planes; returns images and labels."""
    k = fmt.num_classes
    n_train, n_test = per_class * k, per_class * k
    images = random_images(n_train + n_test, seed=seed)
    labels = np.tile(np.arange(k), 2 * per_class)
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)  # CIFAR stores whole planes
    members = {}
    train_chunks = np.array_split(np.arange(n_train), len(fmt.train_members))
    for name, chunk in zip(fmt.train_members, train_chunks):
        members[name] = {"data": planes[chunk], fmt.label_key: labels[chunk].tolist()}
    members[fmt.test_members[0]] = {"data": planes[n_train:], fmt.label_key: labels[n_train:].tolist()}
    members[fmt.meta_member] = {fmt.names_key: [f"name{i}" for i in range(k)]}
    archive = root / fmt.archive
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for name, obj in members.items():
            data = pickle.dumps(obj, protocol=2)
            info = tarfile.TarInfo(f"{fmt.folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    split = dict(train_x=images[:n_train], train_y=labels[:n_train], test_x=images[n_train:], test_y=labels[n_train:])
    return archive, split


@pytest.mark.parametrize("fmt", [CIFAR10, CIFAR100], ids=["cifar10", "cifar100"])
def test_cifar_archive_loads_pixels_labels_and_names(tmp_path, fmt):
    archive, expected = build_cifar_archive(tmp_path / "data", fmt)
    fixture_fmt = dataclasses.replace(fmt, archive_md5=md5(archive), counts=(2 * fmt.num_classes,) * 2)
    ds = load_cifar(archive, fixture_fmt)
    for key in ("train_x", "test_x", "train_y", "test_y"):
        assert np.array_equal(getattr(ds, key).numpy(), expected[key]), key
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert ds.classes == [f"name{i}" for i in range(fmt.num_classes)] and ds.label == fmt.label
    assert ds.image_shape == (3, 32, 32)


def test_cifar_extracted_folder_with_per_file_md5(tmp_path):
    archive, expected = build_cifar_archive(tmp_path / "data", CIFAR10)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "data", filter="data")
    folder = tmp_path / "data" / CIFAR10.folder
    file_md5 = {p.name: md5(p) for p in folder.iterdir()}
    ds = load_cifar(folder, dataclasses.replace(CIFAR10, file_md5=file_md5, counts=(20, 20)))
    assert np.array_equal(ds.test_x.numpy(), expected["test_x"])
    bad = dict(file_md5, data_batch_3="0" * 32)
    with pytest.raises(ChecksumError, match="data_batch_3"):
        load_cifar(folder, dataclasses.replace(CIFAR10, file_md5=bad, counts=(20, 20)))


def test_official_checksum_rejects_a_different_archive(tmp_path):
    build_cifar_archive(tmp_path / "data", CIFAR10)
    with pytest.raises(ChecksumError, match="md5 mismatch") as err:
        load_dataset("cifar10", root=tmp_path / "data")
    assert CIFAR10.archive_md5 in str(err.value)


def test_corrupt_archive_fails_checksum_before_unpickling(tmp_path, monkeypatch):
    archive, _ = build_cifar_archive(tmp_path / "data", CIFAR10)
    fixture_fmt = dataclasses.replace(CIFAR10, archive_md5=md5(archive), counts=(20, 20))
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    monkeypatch.setattr(cifar_module.pickle, "loads", lambda *a, **k: pytest.fail("un-pickled a corrupt file"))
    with pytest.raises(ChecksumError):
        load_cifar(archive, fixture_fmt)


def test_wrong_counts_raise_a_clear_error(tmp_path):
    archive, _ = build_cifar_archive(tmp_path / "data", CIFAR10)
    with pytest.raises(ChecksumError, match="train image count.*expected 50000, got 20"):
        load_cifar(archive, dataclasses.replace(CIFAR10, archive_md5=md5(archive)))


def test_cache_is_used_and_keyed_by_source_checksum(tmp_path, monkeypatch):
    archive, _ = build_cifar_archive(tmp_path / "a", CIFAR10, seed=0)
    fmt_a = dataclasses.replace(CIFAR10, archive_md5=md5(archive), counts=(20, 20))
    first = load_cifar(archive, fmt_a)
    assert cache_path("cifar10", md5(archive)).is_file()
    monkeypatch.setattr(cifar_module, "_split", lambda *a: pytest.fail("decoded again despite a cache"))
    assert torch.equal(load_cifar(archive, fmt_a).train_x, first.train_x)
    monkeypatch.undo()
    monkeypatch.setenv("MIXREPRO_CACHE", str(tmp_path / "cache"))
    other, expected = build_cifar_archive(tmp_path / "b", CIFAR10, seed=1)
    second = load_cifar(other, dataclasses.replace(CIFAR10, archive_md5=md5(other), counts=(20, 20)))
    assert np.array_equal(second.train_x.numpy(), expected["train_x"])  # not the stale cache of archive a
    assert len(list((tmp_path / "cache" / "arrays").iterdir())) == 2


# ------------------------------------------------------------------ CIFAR-10 JPEG copy


def build_jpeg_archive(root: Path, per_class=(2, 1)):
    """``cifar10/<split>/<class>/NNNN.jpg`` in a tar.gz, members in shuffled order."""
    root.mkdir(parents=True, exist_ok=True)
    members, decoded = [], {"train": {}, "test": {}}
    for split, count in zip(("train", "test"), per_class):
        for label, cls in enumerate(JPEG_CLASSES):
            for rank in range(count):
                data = jpeg_bytes(random_images(1, seed=hash((split, label, rank)) % 2**32)[0])
                members.append((f"cifar10/{split}/{cls}/{rank:04d}.jpg", data))
                decoded[split][(label, rank)] = pil_decode(data)
    members.reverse()  # archive order must not matter
    path = root / "cifar10-jpeg-q75.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path, decoded


def test_cifar10_jpeg_archive_decodes_in_class_then_rank_order(tmp_path):
    path, decoded = build_jpeg_archive(tmp_path / "data")
    ds = load_cifar10_jpeg(path, check=JpegCheck(sha256=sha256(path), per_class=(2, 1)))
    assert ds.label == "CIFAR-10 (JPEG q75 copy)" and ds.classes == sorted(ds.classes) == JPEG_CLASSES
    assert any("JPEG" in note for note in ds.notes)
    assert ds.train_y.tolist() == [c for c in range(10) for _ in range(2)] and ds.test_y.tolist() == list(range(10))
    for k, (label, rank) in enumerate((c, r) for c in range(10) for r in range(2)):
        assert np.array_equal(ds.train_x[k].numpy(), decoded["train"][(label, rank)])
    assert np.array_equal(ds.test_x[3].numpy(), decoded["test"][(3, 0)])


def test_cifar10_jpeg_checks_sha256_before_reading(tmp_path):
    path = tmp_path / "data" / "cifar10-jpeg-q75.tar.gz"
    path.parent.mkdir()
    path.write_bytes(b"not a tar file at all")
    with pytest.raises(ChecksumError, match="sha256"):  # a tar error would mean it read first
        load_dataset("cifar10-jpeg", root=tmp_path / "data")


def test_cifar10_jpeg_per_class_counts_are_checked(tmp_path):
    path, _ = build_jpeg_archive(tmp_path / "data", per_class=(2, 1))
    with pytest.raises(ChecksumError, match="train images of class 'airplane'"):
        load_cifar10_jpeg(path, check=JpegCheck(sha256=sha256(path), per_class=(3, 1)))


# ------------------------------------------------------------------ Fashion-MNIST IDX


def write_idx(path: Path, array: np.ndarray, compress: bool):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_idx_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)),
        "train-labels-idx1-ubyte": np.arange(6) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (4, 28, 28)),
        "t10k-labels-idx1-ubyte": np.array([9, 0, 1, 2]),
    }
    folder = tmp_path / "data" / "fashion-mnist"
    for stem, array in arrays.items():
        write_idx(folder / (stem + (".gz" if compress else "")), array, compress)
    ds = load_fashion_mnist(folder, check=IdxCheck(sha256={}, counts=(6, 4)))
    assert ds.train_x.shape == (6, 28, 28, 1) and ds.image_shape == (1, 28, 28)
    assert np.array_equal(ds.train_x[..., 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert ds.test_y.tolist() == [9, 0, 1, 2] and ds.classes[9] == "Ankle boot"
    with pytest.raises(ChecksumError, match="sha256 of the decompressed IDX data"):
        load_fashion_mnist(folder)  # the official checksums reject the fixture


# ------------------------------------------------------------------ Tiny-ImageNet


def build_tiny_imagenet(root: Path, wnids=("n02", "n01", "n03"), train_per_class=2, val_per_class=1):
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (folder / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in wnids))
    decoded = {"train": [], "val": []}
    for label, wnid in enumerate(sorted(wnids)):
        for k in range(train_per_class):
            image = random_images(1, 64, 64, seed=10 * label + k)[0]
            if k == 1:  # some real files are grayscale
                image = np.repeat(image[..., :1], 3, axis=2)
            path = folder / "train" / wnid / "images" / f"{wnid}_{k}.JPEG"
            decoded["train"].append((label, pil_decode(write_jpeg(path, image))))
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    lines = []
    for k, wnid in enumerate(sorted(wnids) * val_per_class):
        data = write_jpeg(folder / "val" / "images" / f"val_{k}.JPEG", random_images(1, 64, 64, seed=100 + k)[0])
        lines.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63")
        decoded["val"].append((sorted(wnids).index(wnid), pil_decode(data)))
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    write_jpeg(folder / "test" / "images" / "test_0.JPEG", random_images(1, 64, 64)[0])
    return folder, decoded


def test_tiny_imagenet_tree(tmp_path):
    folder, decoded = build_tiny_imagenet(tmp_path / "data")
    ds = load_tiny_imagenet(folder, check=TinyCheck(num_classes=3, per_class=(2, 1)))
    assert ds.classes == ["n01", "n02", "n03"] and ds.train_x.shape == (6, 64, 64, 3)
    for split, x, y in (("train", ds.train_x, ds.train_y), ("val", ds.test_x, ds.test_y)):
        assert y.tolist() == [label for label, _ in decoded[split]]
        for k, (_, image) in enumerate(decoded[split]):
            assert np.array_equal(x[k].numpy(), image)
    with pytest.raises(ChecksumError, match="class count"):
        load_dataset("tiny-imagenet", root=tmp_path / "data")  # the official 200 classes


# ------------------------------------------------------------------ CUB-200-2011


def build_cub(root: Path):
    folder = root / "CUB_200_2011"
    classes = ["001.Black_footed_Albatross", "002.Laysan_Albatross"]
    (folder / "images").mkdir(parents=True)
    (folder / "classes.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(classes)))
    rows = [(1, 0, 1), (2, 0, 0), (3, 1, 1), (4, 1, 0), (5, 1, 1)]  # id, class index, is_train
    paths = {}
    for image_id, cls, _ in rows:
        rel = f"{classes[cls]}/bird_{image_id:04d}.jpg"
        write_jpeg(folder / "images" / rel, random_images(1, 60, 80, seed=image_id)[0])
        paths[image_id] = rel
    (folder / "images.txt").write_text("".join(f"{i} {paths[i]}\n" for i, _, _ in rows))
    (folder / "image_class_labels.txt").write_text("".join(f"{i} {c + 1}\n" for i, c, _ in rows))
    (folder / "train_test_split.txt").write_text("".join(f"{i} {t}\n" for i, _, t in rows))
    return folder, classes


def test_cub200_tree(tmp_path):
    folder, classes = build_cub(tmp_path / "data")
    ds = load_cub200(folder, check=CubCheck(num_classes=2, counts=(3, 2)))
    assert ds.classes == classes
    assert [Path(f).name for f in ds.train_files] == ["bird_0001.jpg", "bird_0003.jpg", "bird_0005.jpg"]
    assert ds.train_y.tolist() == [0, 1, 1] and ds.test_y.tolist() == [0, 1]
    assert all(Path(f).is_file() for f in ds.train_files + ds.test_files)


# ------------------------------------------------------------------ FGVC-Aircraft


def build_aircraft(root: Path):
    data = root / "fgvc-aircraft-2013b" / "data"
    variants = ["707-320", "Cessna 172", "A300B4"]
    data.mkdir(parents=True)
    (data / "variants.txt").write_text("\n".join(variants) + "\n")
    (data / "images_variant_trainval.txt").write_text("1025794 707-320\n1340192 Cessna 172\n0056978 A300B4\n")
    (data / "images_variant_test.txt").write_text("1514522 Cessna 172\n")
    for image_id in ("1025794", "1340192", "0056978", "1514522"):
        write_jpeg(data / "images" / f"{image_id}.jpg", random_images(1, 50, 70)[0])
    return root / "fgvc-aircraft-2013b", variants


def test_aircraft_variant_level(tmp_path):
    folder, variants = build_aircraft(tmp_path / "data")
    ds = load_aircraft(folder, check=AircraftCheck(num_classes=3, counts=(3, 1)))
    assert ds.classes == variants and ds.train_y.tolist() == [0, 1, 2] and ds.test_y.tolist() == [1]
    assert Path(ds.train_files[2]).name == "0056978.jpg" and Path(ds.test_files[0]).is_file()


# ------------------------------------------------------------------ Stanford Cars (devkit layout)


def write_annotations(path: Path, rows):
    from scipy.io import savemat

    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    table = np.zeros(len(rows), dtype=[(f, object) for f in fields])
    for k, (cls, fname) in enumerate(rows):
        table[k] = (np.uint8(1), np.uint8(2), np.uint8(30), np.uint8(20), np.uint8(cls), fname)
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), {"annotations": table[None, :]})


def build_cars(root: Path):
    from scipy.io import savemat

    folder = root / "stanford_cars"
    names = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012"]
    (folder / "devkit").mkdir(parents=True)
    savemat(str(folder / "devkit" / "cars_meta.mat"), {"class_names": np.array(names, dtype=object)[None, :]})
    train_rows = [(1, "00001.jpg"), (3, "00002.jpg"), (2, "00003.jpg")]
    write_annotations(folder / "devkit" / "cars_train_annos.mat", train_rows)
    write_annotations(folder / "cars_test_annos_withlabels.mat", [(2, "00001.jpg"), (1, "00002.jpg")])
    for split, count in (("cars_train", 3), ("cars_test", 2)):
        for k in range(count):
            write_jpeg(folder / split / f"{k + 1:05d}.jpg", random_images(1, 40, 60)[0])
    return folder, names


def test_stanford_cars_devkit_layout(tmp_path):
    folder, names = build_cars(tmp_path / "data")
    ds = load_stanford_cars(folder, check=CarsCheck(num_classes=3, counts=(3, 2)))
    assert ds.classes == names
    assert ds.train_y.tolist() == [0, 2, 1] and ds.test_y.tolist() == [1, 0]
    assert ds.test_files[1].endswith("cars_test/00002.jpg") and all(Path(f).is_file() for f in ds.train_files)


# ------------------------------------------------------------------ STL-10 binary


def test_stl10_binary_column_major_layout(tmp_path):
    folder = tmp_path / "data" / "stl10_binary"
    folder.mkdir(parents=True)
    images = {"train": random_images(3, 8, 8, seed=1), "test": random_images(2, 8, 8, seed=2)}
    labels = {"train": np.array([1, 10, 5]), "test": np.array([2, 2])}
    for split in ("train", "test"):
        # STL-10 stores each image as [C, W, H] (column-major 96x96 planes)
        (folder / f"{split}_X.bin").write_bytes(images[split].transpose(0, 3, 2, 1).tobytes())
        (folder / f"{split}_y.bin").write_bytes(labels[split].astype(np.uint8).tobytes())
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    md5s = {p.name: md5(p) for p in folder.glob("*.bin")}
    ds = load_stl10(folder, check=Stl10Check(md5=md5s, counts=(3, 2), size=8))
    assert np.array_equal(ds.train_x.numpy(), images["train"]) and np.array_equal(ds.test_x.numpy(), images["test"])
    assert ds.train_y.tolist() == [0, 9, 4] and ds.classes[0] == "c0"
    with pytest.raises(ChecksumError, match="md5"):
        load_dataset("stl10", root=tmp_path / "data")


# ------------------------------------------------------------------ CIFAR-10-C / CIFAR-100-C


def build_cifar_c(folder: Path, per_severity: int, corruptions=("fog", "gaussian_noise", "saturate")):
    folder.mkdir(parents=True)
    labels = np.arange(per_severity) % 10
    np.save(folder / "labels.npy", np.tile(labels, 5))
    arrays = {}
    for k, name in enumerate(corruptions):
        arrays[name] = random_images(5 * per_severity, seed=k)
        np.save(folder / f"{name}.npy", arrays[name])
    return labels, arrays


def test_corruption_set_reads_one_severity_block(tmp_path):
    labels, arrays = build_cifar_c(tmp_path / "CIFAR-10-C", per_severity=4)
    cset = CorruptionSet("cifar10-c", tmp_path / "CIFAR-10-C", per_severity=4)
    assert cset.corruptions == ["gaussian_noise", "fog", "saturate"]  # standard ones first, benchmark order
    assert cset.labels.tolist() == labels.tolist()
    for severity in (1, 3, 5):
        block = cset.images("fog", severity)
        assert block.dtype == torch.uint8 and block.shape == (4, 32, 32, 3)
        assert np.array_equal(block.numpy(), arrays["fog"][(severity - 1) * 4 : severity * 4])
    with pytest.raises(InvalidParameterError):
        cset.images("fog", 6)
    with pytest.raises(InvalidParameterError):
        cset.images("snow", 1)


def test_load_cifar_c_through_the_registry_opens_files_lazily(tmp_path):
    folder = tmp_path / "data" / "CIFAR-100-C"
    folder.mkdir(parents=True)
    np.save(folder / "labels.npy", np.tile(np.arange(10000) % 100, 5))
    np.save(folder / "snow.npy", np.zeros((3, 32, 32, 3), np.uint8))  # wrong shape: only images() looks
    cset = load_cifar_c("cifar100-c", root=tmp_path / "data")
    assert cset.corruptions == ["snow"] and len(cset.labels) == 10000
    with pytest.raises(ChecksumError, match="array shape"):
        cset.images("snow", 1)
    with pytest.raises(InvalidParameterError):
        load_cifar_c("cifar10", root=tmp_path / "data")


def test_cifar_c_labels_must_repeat_per_severity(tmp_path):
    folder = tmp_path / "CIFAR-10-C"
    folder.mkdir()
    np.save(folder / "labels.npy", np.arange(20) % 10)
    with pytest.raises(ChecksumError):
        CorruptionSet("cifar10-c", folder, per_severity=4)


# ------------------------------------------------------------------ synthetic


def test_synthetic_is_deterministic_and_seeded():
    small = SyntheticRecipe(num_train=200, num_test=50)
    a, b = make_synthetic(small), make_synthetic(small)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_x, b.test_x) and torch.equal(a.test_y, b.test_y)
    c = make_synthetic(dataclasses.replace(small, seed=small.seed + 1))
    assert not torch.equal(a.train_x, c.train_x)


def test_synthetic_is_balanced_and_learnable_but_not_trivial():
    a = load_dataset("synthetic")
    assert a.train_x.shape == (5000, 32, 32, 3) and a.test_x.shape == (1000, 32, 32, 3)
    assert torch.bincount(a.train_y).tolist() == [500] * 10 and torch.bincount(a.test_y).tolist() == [100] * 10
    # nearest class mean on raw pixels: class structure is there, but it is not separable by it
    x_train, x_test = a.train_x.flatten(1).float(), a.test_x.flatten(1).float()
    means = torch.stack([x_train[a.train_y == k].mean(0) for k in range(10)])
    accuracy = (torch.cdist(x_test, means).argmin(1) == a.test_y).float().mean().item()
    assert 0.3 < accuracy < 0.95


# ------------------------------------------------------------------ registry, errors, roots


NEEDS_FILES = [name for name, spec in DATASETS.items() if spec.needs_files()]


@pytest.mark.parametrize("name", NEEDS_FILES)
def test_missing_dataset_error_names_dataset_paths_and_how_to_get(tmp_path, monkeypatch, name):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian-copy")
    with pytest.raises(DatasetMissingError) as err:
        load_dataset(name, root=tmp_path / "empty")
    message = str(err.value)
    spec = DATASETS.get(name)
    assert repr(name) in message and spec.how_to_get in message
    for path in spec.candidates(tmp_path / "empty"):
        assert str(path) in message
    assert "http" in message or "apt-get" in message or "MIXREPRO_DATA" in message


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(UnknownNameError, match="cifar10-jpeg"):
        load_dataset("cifar11")


def test_data_root_resolution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data_root() == tmp_path / "data"
    monkeypatch.setenv("MIXREPRO_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"


def test_data_root_from_environment_is_used_by_load_dataset(tmp_path, monkeypatch):
    folder, _ = build_cub(tmp_path / "envroot")
    monkeypatch.setenv("MIXREPRO_DATA", str(tmp_path / "envroot"))
    with pytest.raises(ChecksumError, match="class count"):  # found it there; the fixture has 2 classes, not 200
        load_dataset("cub200")


def test_describe_and_print_datasets(tmp_path, capsys):
    build_cub(tmp_path / "data")
    rows = {r["name"]: r for r in describe_datasets(tmp_path / "data")}
    assert set(rows) == set(DATASETS.names())
    assert rows["cub200"]["available"] and rows["cub200"]["found_at"] == str(tmp_path / "data" / "CUB_200_2011")
    assert not rows["tiny-imagenet"]["available"] and rows["synthetic"]["available"]
    assert rows["cifar10"]["looked_in"] == [str(tmp_path / "data" / "cifar-10-python.tar.gz"),
                                            str(tmp_path / "data" / "cifar-10-batches-py")]
    assert rows["cifar10-jpeg"]["label"] == "CIFAR-10 (JPEG q75 copy)" and rows["cifar10-jpeg"]["num_train"] == 50000
    print_datasets(tmp_path / "data")
    out = capsys.readouterr().out
    for name in DATASETS.names():
        assert name in out
    assert "tiny-imagenet-200" in out  # where it looked


# ------------------------------------------------------------------ DataLoaders of file lists


def torchvision():
    from mixrepro._torchvision import import_torchvision

    return import_torchvision()


def test_file_list_loader_train_batches_follow_the_generator(tmp_path):
    from mixrepro.data.loaders import SeededSampler, make_loader

    folder, _ = build_cub(tmp_path / "data")
    ds = load_cub200(folder, check=CubCheck(num_classes=2, counts=(3, 2)))
    torch.manual_seed(123)
    global_state = torch.get_rng_state()
    batches = list(make_loader(ds, "train", 2, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(torch.get_rng_state(), global_state)  # draws came from our generator only
    assert [tuple(x.shape) for x, _ in batches] == [(2, 3, 224, 224)]  # drop_last in training
    x, y = batches[0]
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    # independent reference: the standard transforms under each sample's seed, in the sampler's order
    t = torchvision().transforms
    reference = t.Compose([t.RandomResizedCrop(224), t.RandomHorizontalFlip(), t.ToTensor()])
    pairs = list(SeededSampler(3, shuffle=True, generator=torch.Generator().manual_seed(0)))[:2]
    for k, (index, seed) in enumerate(pairs):
        torch.manual_seed(seed)
        assert torch.equal(x[k], reference(Image.open(ds.train_files[index]).convert("RGB")))
        assert y[k] == ds.train_y[index]
    again = next(iter(make_loader(ds, "train", 2, generator=torch.Generator().manual_seed(0))))[0]
    other = next(iter(make_loader(ds, "train", 2, generator=torch.Generator().manual_seed(1))))[0]
    assert torch.equal(again, x) and not torch.equal(other, x)


def test_file_list_loader_test_split_is_resize_center_crop_in_order(tmp_path):
    from mixrepro.data.loaders import make_loader

    folder, _ = build_aircraft(tmp_path / "data")
    ds = load_aircraft(folder, check=AircraftCheck(num_classes=3, counts=(3, 1)))
    ds = dataclasses.replace(ds, test_files=ds.train_files, test_y=ds.train_y)
    x, y = zip(*make_loader(ds, "test", 2))
    x, y = torch.cat(x), torch.cat(y)
    assert x.shape == (3, 3, 224, 224) and y.tolist() == [0, 1, 2]
    t = torchvision().transforms
    reference = t.Compose([t.Resize(256), t.CenterCrop(224), t.ToTensor()])
    for k, path in enumerate(ds.test_files):
        assert torch.equal(x[k], reference(Image.open(path).convert("RGB")))
    with pytest.raises(InvalidParameterError):
        make_loader(ds, "train", 2)  # no generator
    with pytest.raises(InvalidParameterError):
        make_loader(ds, "val", 2)


def test_download_runs_only_when_asked_and_missing_and_failures_say_how_to_get(tmp_path, monkeypatch):
    import urllib.error

    calls = []

    def fake_download(root):
        calls.append(root)
        build_cifar_archive(root, CIFAR10)

    spec = DATASETS.get("cifar10")
    monkeypatch.setitem(DATASETS._items, "cifar10", dataclasses.replace(spec, download=fake_download))
    with pytest.raises(DatasetMissingError):
        load_dataset("cifar10", root=tmp_path / "data")  # download=False: never fetches
    assert calls == []
    with pytest.raises(ChecksumError):  # fetched (a fixture, so the official md5 rejects it)
        load_dataset("cifar10", root=tmp_path / "data", download=True)
    assert calls == [tmp_path / "data"]
    with pytest.raises(ChecksumError):
        load_dataset("cifar10", root=tmp_path / "data", download=True)
    assert len(calls) == 1  # present now: not fetched again

    def offline(root):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setitem(DATASETS._items, "cifar10", dataclasses.replace(spec, download=offline))
    with pytest.raises(DatasetMissingError, match="download failed.*no route to host.*cifar-10-python"):
        load_dataset("cifar10", root=tmp_path / "other", download=True)
