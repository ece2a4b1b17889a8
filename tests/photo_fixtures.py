"""Tiny photo trees in the exact on-disk layouts of VOC 2007, COCO 2014 and the ``folder`` dataset.

Each image is a noisy background with one filled shape per object, drawn inside the object's box
(so the boxes mean something to an attention map). Nothing is downloaded.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from msrn_core.data.real import COCO_CLASSES, VOC_CLASSES


def draw_photo(path: Path, boxes, class_count: int, size=(96, 72), seed: int = 0) -> None:
    """A JPEG of ``size`` with a shape of the class's colour in each ``(class, x0, y0, x1, y1)`` box."""
    rng = np.random.default_rng(seed)
    pixels = (rng.normal(128, 30, (size[1], size[0], 3))).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for c, x0, y0, x1, y1 in boxes:
        hue = np.array([(37 * c) % 256, (91 * c + 80) % 256, (151 * c + 160) % 256])
        shape = draw.ellipse if c % 2 else draw.rectangle
        shape([x0, y0, x1 - 1, y1 - 1], fill=tuple(int(v) for v in hue))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=90)


def random_objects(rng, classes: list[int], size, max_objects: int = 2):
    """1..max_objects boxes of classes drawn from ``classes``; at least a quarter of the image each."""
    width, height = size
    chosen = rng.choice(classes, size=rng.integers(1, max_objects + 1), replace=len(classes) < max_objects)
    boxes = []
    for c in chosen:
        w, h = int(rng.integers(width // 3, width // 2 + 1)), int(rng.integers(height // 3, height // 2 + 1))
        x0, y0 = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        boxes.append((int(c), x0, y0, x0 + w, y0 + h))
    return boxes


def voc_xml(image_id: str, boxes, size) -> str:
    """``Annotations/<id>.xml`` with VOC's 1-based inclusive corners."""
    objects = "".join(
        f"<object><name>{VOC_CLASSES[c]}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><bndbox><xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin><xmax>{x1}</xmax>"
        f"<ymax>{y1}</ymax></bndbox></object>"
        for c, x0, y0, x1, y1 in boxes)
    return (f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename><size><width>{size[0]}"
            f"</width><height>{size[1]}</height><depth>3</depth></size><segmented>0</segmented>{objects}</annotation>")


def make_voc_tree(root: Path, positive_classes=None, num_trainval: int = 40, num_test: int = 16,
                  size=(96, 72), seed: int = 0) -> Path:
    """``root/VOCdevkit/VOC2007`` (JPEGImages, ImageSets/Main, Annotations); returns the VOC2007 folder.

    ``positive_classes``: the names that occur (default: all 20, each at least once in trainval).
    """
    rng = np.random.default_rng(seed)
    classes = [VOC_CLASSES.index(name) for name in (positive_classes or VOC_CLASSES)]
    voc = Path(root) / "VOCdevkit" / "VOC2007"
    main = voc / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    (voc / "Annotations").mkdir(exist_ok=True)
    for split, count, offset in (("trainval", num_trainval, 1), ("test", num_test, 5000)):
        ids = [f"{offset + i:06d}" for i in range(count)]
        values = -np.ones((count, len(VOC_CLASSES)), dtype=int)
        for i, image_id in enumerate(ids):
            boxes = random_objects(rng, classes, size)
            if split == "trainval" and i < len(classes):  # every positive class has a training image
                boxes[0] = (classes[i], *boxes[0][1:])
            for c, *_ in boxes:
                values[i, c] = 1
            draw_photo(voc / "JPEGImages" / f"{image_id}.jpg", boxes, len(VOC_CLASSES), size, seed=offset + i)
            (voc / "Annotations" / f"{image_id}.xml").write_text(voc_xml(image_id, boxes, size))
        for c, name in enumerate(VOC_CLASSES):
            lines = [f"{image_id} {value:2d}" for image_id, value in zip(ids, values[:, c])]
            (main / f"{name}_{split}.txt").write_text("\n".join(lines) + "\n")
    return voc


def make_coco_tree(root: Path, positive_classes=("person", "dog", "car", "bicycle"), images_per_split: int = 16,
                   size=(96, 72), seed: int = 0) -> Path:
    """``root/coco`` with train2014/, val2014/ and annotations/instances_*.json; returns that folder."""
    rng = np.random.default_rng(seed)
    coco = Path(root) / "coco"
    categories = [{"id": i + 1, "name": name, "supercategory": "thing"} for i, name in enumerate(COCO_CLASSES)]
    classes = [COCO_CLASSES.index(name) for name in positive_classes]
    for split, offset in (("train2014", 0), ("val2014", 100000)):
        images, annotations = [], []
        for i in range(images_per_split):
            image_id = offset + i + 1
            file_name = f"COCO_{split}_{image_id:012d}.jpg"
            boxes = random_objects(rng, classes, size)
            draw_photo(coco / split / file_name, boxes, len(COCO_CLASSES), size, seed=image_id)
            images.append({"id": image_id, "file_name": file_name, "width": size[0], "height": size[1]})
            for c, x0, y0, x1, y1 in boxes:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": c + 1,
                                    "bbox": [x0, y0, x1 - x0, y1 - y0], "area": float((x1 - x0) * (y1 - y0)),
                                    "iscrowd": 0, "segmentation": [[x0, y0, x1, y0, x1, y1]]})
        (coco / "annotations").mkdir(parents=True, exist_ok=True)
        (coco / "annotations" / f"instances_{split}.json").write_text(
            json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return coco


FOLDER_CLASSES = ("cat", "dog", "person", "traffic light")


def make_folder_tree(root: Path, count: int = 40, with_split: bool = False, size=(80, 64), seed: int = 0) -> Path:
    """A folder of photos with ``labels.csv`` (``;``-separated labels, one name with a space)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    rows = ["image,labels" + (",split" if with_split else "")]
    for i in range(count):
        boxes = random_objects(rng, list(range(len(FOLDER_CLASSES))), size)
        if i < len(FOLDER_CLASSES):
            boxes[0] = (i, *boxes[0][1:])
        name = f"photo_{i:03d}.jpg"
        draw_photo(root / "images" / name, boxes, len(FOLDER_CLASSES), size, seed=i)
        labels = ";".join(sorted({FOLDER_CLASSES[c] for c, *_ in boxes}))
        split = ("test" if i % 5 == 4 else "val" if i % 5 == 3 else "train") if i >= len(FOLDER_CLASSES) else "train"
        rows.append(f"images/{name},{labels}" + (f",{split}" if with_split else ""))
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root
