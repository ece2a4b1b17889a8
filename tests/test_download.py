"""The download helper against a local HTTP server on 127.0.0.1 (no internet needed)."""
from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from msrn_core.data.download import DownloadError, RemoteFile, download_file, download_voc2007

PAYLOAD = bytes(range(256)) * 400  # 100 KiB


class FileServer:
    """Serves ``files`` (path -> bytes) with Range support and scripted misbehaviour.

    ``cut_next``: how many of the coming requests stop after half of their bytes (the
    connection closes early); ``stall``: seconds to wait before answering; ``ignore_range``:
    answer every request with the whole file (200), like servers without Range support.
    Every request's ``Range`` header is recorded in ``ranges``.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.cut_next = 0
        self.stall = 0.0
        self.ignore_range = False
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server.ranges.append(self.headers.get("Range"))
                if server.stall:
                    time.sleep(server.stall)
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                requested = self.headers.get("Range")
                if requested and not server.ignore_range:
                    start = int(requested.split("=")[1].rstrip("-"))
                    if start >= len(data):
                        self.send_error(416, "Requested Range Not Satisfiable")
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_next > 0:
                    server.cut_next -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server():
    files = {"/payload.bin": PAYLOAD}
    fs = FileServer(files)
    fs.thread.start()
    yield fs
    fs.httpd.shutdown()
    fs.httpd.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_writes_the_file_and_then_uses_the_cache(server, tmp_path):
    target = tmp_path / "cache" / "payload.bin"
    path = download_file(server.url("/payload.bin"), target, sha256=sha256(PAYLOAD), timeout=5)
    assert path == target and target.read_bytes() == PAYLOAD
    assert not target.with_name("payload.bin.part").exists()
    assert len(server.ranges) == 1
    download_file(server.url("/payload.bin"), target, sha256=sha256(PAYLOAD), timeout=5)
    assert len(server.ranges) == 1  # cache hit: no second request


def test_md5_is_checked_too(server, tmp_path):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    path = download_file(server.url("/payload.bin"), tmp_path / "p.bin", md5=md5, timeout=5)
    assert path.read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_the_file_and_explains(server, tmp_path):
    target = tmp_path / "payload.bin"
    wrong = sha256(b"something else")
    with pytest.raises(DownloadError) as info:
        download_file(server.url("/payload.bin"), target, sha256=wrong, timeout=5)
    message = str(info.value)
    assert "sha256 checksum mismatch" in message and wrong in message and sha256(PAYLOAD) in message
    assert server.url("/payload.bin") in message and "Manual steps" in message
    assert not target.exists() and not target.with_name("payload.bin.part").exists()


def test_corrupt_cached_file_is_downloaded_again(server, tmp_path):
    target = tmp_path / "payload.bin"
    target.write_bytes(b"corrupt")
    download_file(server.url("/payload.bin"), target, sha256=sha256(PAYLOAD), timeout=5)
    assert target.read_bytes() == PAYLOAD


def test_interrupted_transfer_is_kept_and_resumed_by_the_next_call(server, tmp_path):
    target = tmp_path / "payload.bin"
    part = tmp_path / "payload.bin.part"
    server.cut_next = 1
    with pytest.raises(DownloadError) as info:
        download_file(server.url("/payload.bin"), target, sha256=sha256(PAYLOAD), timeout=5, retries=0)
    assert "interrupted" in str(info.value) and "resumes" in str(info.value)
    assert not target.exists()
    assert part.stat().st_size == len(PAYLOAD) // 2
    download_file(server.url("/payload.bin"), target, sha256=sha256(PAYLOAD), timeout=5, retries=0)
    assert server.ranges == [None, f"bytes={len(PAYLOAD) // 2}-"]
    assert target.read_bytes() == PAYLOAD and not part.exists()


def test_interruptions_within_one_call_are_resumed(server, tmp_path):
    server.cut_next = 2
    target = tmp_path / "payload.bin"
    download_file(server.url("/payload.bin"), target, sha256=sha256(PAYLOAD), timeout=5, retries=3)
    half, quarter = len(PAYLOAD) // 2, len(PAYLOAD) // 4
    assert server.ranges == [None, f"bytes={half}-", f"bytes={half + quarter}-"]
    assert target.read_bytes() == PAYLOAD


def test_a_server_without_range_support_restarts_from_zero(server, tmp_path):
    target = tmp_path / "payload.bin"
    target.with_name("payload.bin.part").write_bytes(b"x" * 1000)  # stale bytes, not a prefix
    server.ignore_range = True
    download_file(server.url("/payload.bin"), target, sha256=sha256(PAYLOAD), timeout=5)
    assert server.ranges == ["bytes=1000-"]
    assert target.read_bytes() == PAYLOAD


def test_mirrors_are_tried_in_order(server, tmp_path):
    urls = [server.url("/missing.bin"), server.url("/payload.bin")]
    path = download_file(urls, tmp_path / "payload.bin", sha256=sha256(PAYLOAD), timeout=5)
    assert path.read_bytes() == PAYLOAD


def test_timeout_gives_a_clear_message(server, tmp_path):
    server.stall = 2.0
    url = server.url("/payload.bin")
    with pytest.raises(DownloadError) as info:
        download_file(url, tmp_path / "payload.bin", timeout=0.3, retries=0)
    message = str(info.value)
    assert "timed out after 0.3 s" in message and url in message and "curl" in message


def test_unreachable_server_names_url_and_manual_steps(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/VOCtest_06-Nov-2007.tar"
    target = tmp_path / "VOCtest_06-Nov-2007.tar"
    with pytest.raises(DownloadError) as info:
        download_file(url, target, timeout=2, retries=0, manual_steps="Then extract it.")
    message = str(info.value)
    assert url in message and str(target) in message and "refused" in message.lower()
    assert message.endswith("Then extract it.")


def test_http_error_is_reported(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(server.url("/missing.bin"), tmp_path / "x.bin", timeout=5)


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_voc_download_extracts_both_archives_once(server, tmp_path):
    trainval = _tar_bytes({"VOCdevkit/VOC2007/ImageSets/Main/trainval.txt": b"000005\n"})
    test = _tar_bytes({"VOCdevkit/VOC2007/ImageSets/Main/test.txt": b"000001\n"})
    server.files.update({"/trainval.tar": trainval, "/test.tar": test})
    archives = [
        RemoteFile((server.url("/trainval.tar"),), "trainval.tar", md5=hashlib.md5(trainval).hexdigest()),
        RemoteFile((server.url("/test.tar"),), "test.tar", md5=hashlib.md5(test).hexdigest()),
    ]
    voc = download_voc2007(tmp_path, timeout=5, archives=archives)
    assert voc == tmp_path / "VOCdevkit" / "VOC2007"
    assert (voc / "ImageSets/Main/trainval.txt").read_text() == "000005\n"
    assert (voc / "ImageSets/Main/test.txt").read_text() == "000001\n"
    requests = len(server.ranges)
    download_voc2007(tmp_path, timeout=5, archives=archives)
    assert len(server.ranges) == requests


def test_archive_members_outside_the_destination_are_refused(server, tmp_path):
    evil = _tar_bytes({"../escaped.txt": b"no"})
    server.files["/evil.tar"] = evil
    archives = [RemoteFile((server.url("/evil.tar"),), "evil.tar", md5=hashlib.md5(evil).hexdigest())]
    with pytest.raises(DownloadError, match="outside"):
        download_voc2007(tmp_path / "root", timeout=5, archives=archives)
    assert not (tmp_path / "escaped.txt").exists()


def _tar_with_link(name: str, target: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = tarfile.SYMTYPE, target
        tar.addfile(info)
    return buffer.getvalue()


@pytest.mark.parametrize("archive", [_tar_with_link("VOCdevkit/passwd", "/etc/passwd"),
                                     _tar_with_link("VOCdevkit/up", "../../../outside"),
                                     b"not a tar archive at all" * 40])
def test_a_member_the_extraction_filter_refuses_is_a_download_error(server, tmp_path, archive):
    """A link out of the folder (or a damaged archive) ends like the other download failures:
    one DownloadError naming the archive and the fix, which works when followed."""
    server.files["/trainval.tar"] = archive
    archives = [RemoteFile((server.url("/trainval.tar"),), "trainval.tar")]
    with pytest.raises(DownloadError, match="refusing to extract it.*deleted: run again to download it afresh"):
        download_voc2007(tmp_path / "root", timeout=5, archives=archives)
    assert not (tmp_path / "root" / "downloads" / "trainval.tar").exists()
    assert not (tmp_path / "root" / "VOCdevkit" / "passwd").is_symlink()
    server.files["/trainval.tar"] = _tar_bytes({"VOCdevkit/VOC2007/ImageSets/Main/trainval.txt": b"000005\n"})
    voc = download_voc2007(tmp_path / "root", timeout=5, archives=archives)  # run again, as the message says
    assert (voc / "ImageSets/Main/trainval.txt").read_text() == "000005\n"


def test_official_voc_archives_match_torchvision():
    from torchvision.datasets.voc import DATASET_YEAR_DICT

    from msrn_core.data.download import VOC2007_ARCHIVES

    reference = {entry["filename"]: entry for key, entry in DATASET_YEAR_DICT.items() if key.startswith("2007")}
    assert {remote.filename for remote in VOC2007_ARCHIVES} == set(reference)
    for remote in VOC2007_ARCHIVES:
        assert remote.md5 == reference[remote.filename]["md5"]
        assert reference[remote.filename]["url"] in remote.urls


def _zip_folder(folder, parts) -> bytes:
    """A zip of ``folder``'s sub-paths ``parts`` (paths inside the zip relative to ``folder``)."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for part in parts:
            for path in sorted((folder / part).rglob("*")) if (folder / part).is_dir() else [folder / part]:
                if path.is_file():
                    archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def test_coco_download_through_the_loader_extracts_once(server, tmp_path, monkeypatch):
    import functools

    from photo_fixtures import make_coco_tree

    from msrn_core.data import download
    from msrn_core.data.real import load_dataset

    source = make_coco_tree(tmp_path / "source", images_per_split=6)
    archives = []
    for name, parts in (("annotations_trainval2014.zip", ["annotations"]), ("val2014.zip", ["val2014"]),
                        ("train2014.zip", ["train2014"])):
        data = _zip_folder(source, parts)
        server.files[f"/{name}"] = data
        archives.append(RemoteFile((server.url(f"/{name}"),), name, md5=hashlib.md5(data).hexdigest()))
    monkeypatch.setattr(download, "download_coco2014",
                        functools.partial(download.download_coco2014, timeout=5, archives=archives))
    train, val, test = load_dataset("coco2014", tmp_path / "data", download=True, val_fraction=0.2)
    assert len(train) + len(val) == 6 and len(test) == 6
    assert (tmp_path / "data" / "coco" / "annotations" / "instances_val2014.json").exists()
    requests = len(server.ranges)
    load_dataset("coco2014", tmp_path / "data", download=True)
    assert len(server.ranges) == requests  # complete: nothing fetched again
