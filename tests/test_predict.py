"""predict: every model kind rebuilt from a checkpoint the code saved, on odd images, and bad inputs."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from msrn_core import predict as pr
from msrn_core.running.checkpoints import save_checkpoint
from msrn_core.model import build_model, model_config

CLASSES = ["cat", "dog", "car", "tree"]
SIZE = 64
KIND_OPTIONS = {
    "msrn": dict(backbone="resnet18", embed_dim=16, fc_hidden=16, gat_hidden=16, num_groups=2),
    "plain": dict(backbone="resnet18"),
    "mlgcn": dict(backbone="resnet18"),
    "dsdl": dict(backbone="resnet18", encoder_hidden=16),
    "sdl": dict(backbone="resnet18", num_principal=3),
}


def make_checkpoint(path, kind, class_names=CLASSES, image_size=SIZE):
    torch.manual_seed(0)
    n = len(class_names)
    features = torch.nn.functional.normalize(torch.randn(n, 8), dim=1)
    adjacency = torch.eye(n) + 0.2 * (torch.ones(n, n) - torch.eye(n))
    model = build_model(model_config(kind, **KIND_OPTIONS[kind]), features, adjacency).eval()
    save_checkpoint(path, model, class_names, epoch=0, image_size=image_size)
    return model


def photo(size=(90, 60), mode="RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    array = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(array).convert(mode)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("kind", list(KIND_OPTIONS))
def test_every_kind_rebuilt_from_checkpoint_alone(tmp_path, kind):
    import matplotlib.pyplot as plt

    model = make_checkpoint(tmp_path / "best.pt", kind)
    # everything predict needs loads without pickle
    payload = torch.load(tmp_path / "best.pt", weights_only=True)
    assert payload["signature"]["class_names"] == CLASSES and payload["image_size"] == SIZE
    predictor = pr.load_predictor(tmp_path / "best.pt")
    assert predictor.kind == kind and predictor.image_size == SIZE
    image = photo()
    image.save(tmp_path / "photo.jpg")
    prediction, fig, path = pr.predict_file(predictor, tmp_path / "photo.jpg", tmp_path / "out", top_k=3)
    plt.close(fig)
    # the rebuilt model scores as the saved one did
    tensor = pr.build_transform(SIZE, train=False)(pr.open_image(tmp_path / "photo.jpg"))[None]
    with torch.no_grad():
        expected = model(tensor).logits[0]
    expected = expected if kind == "sdl" else torch.sigmoid(expected)
    np.testing.assert_allclose(prediction.probabilities, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert path.exists() and Image.open(path).size[0] > 100
    if kind == "msrn":
        assert len(prediction.maps) == 3 and prediction.maps[0].shape[0] == len(CLASSES)
        # relative to a uniform spread: each label's map averages 1 over its cells
        np.testing.assert_allclose(prediction.maps[0].mean(axis=(1, 2)), 1.0, rtol=1e-4)
    elif kind in ("plain", "mlgcn"):
        assert prediction.maps[0].shape[0] == len(CLASSES)
    else:
        assert prediction.maps is None
    assert prediction.describe(2).count("\n") == 2


@pytest.mark.parametrize("kind", ["plain", "mlgcn"])
def test_cam_figure_maps_are_the_models_class_activation_maps(tmp_path, kind):
    model = make_checkpoint(tmp_path / "best.pt", kind)
    image = photo()
    prediction = pr.predict_image(pr.load_predictor(tmp_path / "best.pt"), image)
    with torch.no_grad():
        cam = model(pr.build_transform(SIZE, train=False)(image)[None], details=True).details["class_activation_map"]
    np.testing.assert_allclose(prediction.maps[0], cam[0].numpy(), rtol=1e-5, atol=1e-5)


def test_sdl_ranks_the_stored_vocabulary_and_marks_unseen(tmp_path):
    import matplotlib.pyplot as plt

    model = make_checkpoint(tmp_path / "sdl.pt", "sdl", class_names=CLASSES[:3])
    vectors = torch.cat([model.label_features, torch.nn.functional.normalize(torch.randn(1, 8), dim=1)])
    pr.store_tag_vocabulary(tmp_path / "sdl.pt", CLASSES, vectors)
    predictor = pr.load_predictor(tmp_path / "sdl.pt")
    prediction, fig, _ = pr.predict_file(predictor, photo(), name="p.png", top_k=4)
    plt.close(fig)
    assert prediction.names == CLASSES and prediction.unseen.tolist() == [False, False, False, True]
    assert "unseen in training" in prediction.describe(4)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "I;16", "CMYK"])
def test_any_image_mode_and_size(tmp_path, mode):
    make_checkpoint(tmp_path / "best.pt", "plain")
    predictor = pr.load_predictor(tmp_path / "best.pt")
    image = photo((333, 17), "RGB").convert(mode if mode != "I;16" else "I")
    prediction = pr.predict_image(predictor, image)
    assert prediction.image.mode == "RGB" and prediction.image.size == (333, 17)
    assert prediction.probabilities.shape == (len(CLASSES),)


def test_rgba_is_composited_on_white():
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    assert pr.open_image(image).getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    image = photo((40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert Image.open(tmp_path / "rotated.jpg").size == (40, 20)
    assert pr.open_image(tmp_path / "rotated.jpg").size == (20, 40)


def test_upload_bytes_both_ipywidgets_formats(tmp_path):
    import matplotlib.pyplot as plt

    make_checkpoint(tmp_path / "best.pt", "msrn")
    predictor = pr.load_predictor(tmp_path / "best.pt")
    buffer = io.BytesIO()
    photo().save(buffer, format="PNG")
    data = buffer.getvalue()
    version8 = ({"name": "mine.png", "type": "image/png", "size": len(data), "content": memoryview(data)},)
    version7 = {"mine.png": {"metadata": {"name": "mine.png", "size": len(data)}, "content": data}}
    results = [pr.predict_upload(predictor, value, top_k=2, out_dir=tmp_path / "up") for value in (version8, version7)]
    for result in results:
        (prediction, fig), = result
        plt.close(fig)
        assert prediction.name == "mine.png" and len(prediction.maps) == 3
    np.testing.assert_array_equal(results[0][0][0].probabilities, results[1][0][0].probabilities)
    assert (tmp_path / "up" / "mine_predict.png").exists()
    with pytest.raises(pr.PredictError, match="mine.txt is not an image"):
        pr.predict_upload(predictor, {"mine.txt": {"metadata": {}, "content": b"hello"}})


def test_cli_prints_labels_and_refuses_bad_files_in_one_line(tmp_path, capsys):
    make_checkpoint(tmp_path / "best.pt", "msrn")
    photo().save(tmp_path / "a.png")
    assert pr.main([str(tmp_path / "a.png"), "--checkpoint", str(tmp_path / "best.pt"),
                    "--out", str(tmp_path / "out"), "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "a.png:" in out and out.count(" p = ") == 2 and (tmp_path / "out" / "a_predict.png").exists()

    (tmp_path / "notes.txt").write_text("not an image")
    assert pr.main([str(tmp_path / "notes.txt"), "--checkpoint", str(tmp_path / "best.pt"),
                    "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "notes.txt is not an image" in err

    assert pr.main([str(tmp_path / "a.png"), "--checkpoint", str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "notes.txt is not a checkpoint" in err

    torch.save({"weights": torch.zeros(2)}, tmp_path / "raw.pt")
    assert pr.main([str(tmp_path / "a.png"), "--checkpoint", str(tmp_path / "raw.pt")]) == 2
    assert "not written by msrn_core" in capsys.readouterr().err


# ----------------------------------------------------------------- bad images and options: one line each
def test_a_decompression_bomb_is_one_line_and_the_limit_it_names_can_be_raised(tmp_path, capsys, monkeypatch):
    make_checkpoint(tmp_path / "best.pt", "msrn")
    photo((80, 60)).save(tmp_path / "big.png")  # 4800 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # above twice the limit: Pillow's error
    command = [str(tmp_path / "big.png"), "--checkpoint", str(tmp_path / "best.pt"), "--out", str(tmp_path / "out")]
    assert pr.main(command) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: ") and "decompression bomb" in err
    assert "--max-pixels" in err
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4000)  # between the limit and twice it: Pillow's warning
    assert pr.main(command) == 2
    assert "decompression bomb" in capsys.readouterr().err
    assert pr.main(command + ["--max-pixels", "5000"]) == 0  # the fix the message names
    assert (tmp_path / "out" / "big_predict.png").exists()


@pytest.mark.parametrize("option, value, expected", [
    ("--threshold", "nan", "--threshold: must be a finite number"),
    ("--threshold", "1.5", "--threshold: must lie in [0, 1]"),
    ("--top-k", "0", "--top-k: must be at least 1"),
    ("--image-size", "-3", "--image-size: must be at least 1"),
    ("--image-size", "8", "--image-size 8 is too small for this msrn model: at least"),
    ("--max-pixels", "ten", "--max-pixels: 'ten' is not a whole number"),
    ("--device", "gpu7", "--device gpu7 is not a device"),
    ("--device", "cuda:9", "--device cuda:9"),
])
def test_invalid_predict_options_are_one_error_line(tmp_path, capsys, option, value, expected):
    make_checkpoint(tmp_path / "best.pt", "msrn")
    photo().save(tmp_path / "a.png")
    with pytest.raises(SystemExit) as info:
        pr.main([str(tmp_path / "a.png"), "--checkpoint", str(tmp_path / "best.pt"), option, value])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.count("\n") == 0 and err.startswith("error: ") and expected in err


def test_images_of_the_same_name_in_different_folders_get_their_own_figures(tmp_path, capsys):
    make_checkpoint(tmp_path / "best.pt", "msrn")
    for folder, size in (("holiday", (90, 60)), ("work", (40, 70))):
        (tmp_path / folder).mkdir()
        photo(size).save(tmp_path / folder / "IMG_0001.png")
    photo().save(tmp_path / "holiday" / "IMG_0001.jpg")
    photo().save(tmp_path / "other.png")
    images = [tmp_path / "holiday" / "IMG_0001.png", tmp_path / "work" / "IMG_0001.png",
              tmp_path / "holiday" / "IMG_0001.jpg", tmp_path / "other.png", tmp_path / "other.png"]
    assert pr.main([*map(str, images), "--checkpoint", str(tmp_path / "best.pt"), "--out", str(tmp_path / "out")]) == 0
    written = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert written == ["holiday__IMG_0001.jpg_predict.png", "holiday__IMG_0001.png_predict.png",
                       "other.png-2_predict.png", "other.png_predict.png",
                       "work__IMG_0001.png_predict.png"]
    out = capsys.readouterr().out
    assert all(f"figure: {tmp_path / 'out' / name}" in out for name in written)
