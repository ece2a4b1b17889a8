"""The repository's one download helper, and the official PASCAL VOC 2007 archives.

Every download of the repository goes through :func:`download_file`:

- **cache**: a file already at its destination (and matching its checksum) is not fetched again;
- **checksum**: sha256 or md5, checked on the complete file; a mismatch deletes the file and
  raises (a corrupt archive is never kept or extracted);
- **timeout**: every network operation gives up after ``timeout`` seconds;
- **temporary file then rename**: bytes go to ``<destination>.part``, which is renamed to the
  destination only when complete and verified, so a half-written file never looks finished;
- **resume**: a ``.part`` left by an interrupted transfer is continued with an HTTP ``Range``
  request (servers that ignore ``Range`` restart from zero), within a call (``retries``) and
  across calls;
- **mirrors**: a list of URLs is tried in order;
- **a clear error**: :class:`DownloadError` names the URL, the reason, where the file must go
  and how to fetch it by hand.

:func:`download_voc2007` fetches and extracts ``VOCtrainval_06-Nov-2007.tar`` and
``VOCtest_06-Nov-2007.tar`` (md5 checksums as published with torchvision's VOC loader);
:func:`download_coco2014` the COCO 2014 images and instance annotations (about 20 GB).
"""
from __future__ import annotations

import http.client
import logging
import os
import socket
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..utils import file_digest

__all__ = [
    "DownloadError",
    "RemoteFile",
    "VOC2007_ARCHIVES",
    "download_file",
    "COCO2014_ARCHIVES",
    "download_coco2014",
    "download_voc2007",
    "extract_archive",
    "file_digest",
]

logger = logging.getLogger(__name__)

USER_AGENT = "msrn-tutorial-downloader"
_CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A file could not be downloaded or failed its checksum; the message says what to do."""


@dataclass(frozen=True)
class RemoteFile:
    """A file to download: its mirrors (tried in order), file name and checksum."""

    urls: tuple[str, ...]
    filename: str
    md5: str | None = None
    sha256: str | None = None


# The official archives (host.robots.ox.ac.uk is the VOC site; thor.robots.ox.ac.uk its mirror).
VOC2007_ARCHIVES = (
    RemoteFile(
        urls=("http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar",
              "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtrainval_06-Nov-2007.tar"),
        filename="VOCtrainval_06-Nov-2007.tar",
        md5="c52e279531787c972589f7e41ab4ae64",
    ),
    RemoteFile(
        urls=("http://host.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar",
              "https://thor.robots.ox.ac.uk/pascal/VOC/voc2007/VOCtest_06-Nov-2007.tar"),
        filename="VOCtest_06-Nov-2007.tar",
        md5="b6e924de25625d8de591ea690078ad9f",
    ),
)


# COCO 2014 (cocodataset.org publishes no checksums; the md5s of the two image archives are the
# ones quoted alike by several independent download scripts; the annotation archive is unchecked).
COCO2014_ARCHIVES = (
    RemoteFile(urls=("http://images.cocodataset.org/annotations/annotations_trainval2014.zip",),
               filename="annotations_trainval2014.zip"),
    RemoteFile(urls=("http://images.cocodataset.org/zips/val2014.zip",), filename="val2014.zip",
               md5="a3d79f5ed8d289b7a7554ce06a5782b3"),
    RemoteFile(urls=("http://images.cocodataset.org/zips/train2014.zip",), filename="train2014.zip",
               md5="0da8c0bd3d6becc4dcb32757491aca88"),
)


def _checksum_problem(path: Path, md5: str | None, sha256: str | None) -> str | None:
    """None when ``path`` matches the given checksums, else a sentence describing the mismatch."""
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = file_digest(path, algorithm)
            if actual.lower() != expected.lower():
                return f"{algorithm} checksum mismatch: expected {expected}, got {actual}"
    return None


def _manual_steps(urls: Sequence[str], destination: Path, md5: str | None, sha256: str | None,
                  extra: str | None) -> str:
    checksum = f"sha256 {sha256}" if sha256 else (f"md5 {md5}" if md5 else None)
    steps = (f"Manual steps: download {urls[0]} in a browser or with "
             f"`curl -L -C - -o {destination} {urls[0]}` and save it as {destination}")
    if checksum:
        steps += f" (its {checksum})"
    steps += "; then run again: the file is found and not downloaded twice."
    return steps + (f" {extra}" if extra else "")


class _Interrupted(Exception):
    """The connection ended before the announced number of bytes arrived."""


def _fetch_into(url: str, part: Path, timeout: float) -> None:
    """Append the missing bytes of ``url`` to ``part`` (resuming with ``Range`` when it exists)."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # nothing left to send: the .part is complete
            return
        raise
    with response:
        resumed = offset and response.status == 206
        if offset and not resumed:
            logger.info("%s ignores Range requests: restarting from the first byte", url)
            offset = 0
        length = response.headers.get("Content-Length")
        expected_total = offset + int(length) if length is not None else None
        written = offset
        with open(part, "ab" if resumed else "wb") as handle:
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    handle.write(chunk)
                    written += len(chunk)
            except http.client.IncompleteRead as error:
                handle.write(error.partial)
                written += len(error.partial)
        if expected_total is not None and written < expected_total:
            raise _Interrupted(f"connection closed after {written} of {expected_total} bytes")


def download_file(
    url: str | Sequence[str],
    destination: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    manual_steps: str | None = None,
) -> Path:
    """Download ``url`` (or the first mirror that works) to ``destination``; return its path.

    A destination that already exists and passes the checksum is returned at once (cache).
    Bytes are written to ``<destination>.part``; an interrupted transfer is resumed with an
    HTTP ``Range`` request up to ``retries`` times, and a ``.part`` left by an earlier call is
    resumed too. The complete file is checked (sha256 and/or md5) before the atomic rename.

    Raises :class:`DownloadError` naming the URL(s), the reason, and the manual steps (plus
    ``manual_steps``, a dataset-specific hint, when given).
    """
    urls = [url] if isinstance(url, str) else list(url)
    if not urls:
        raise ValueError("no URL given")
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    help_text = _manual_steps(urls, destination, md5, sha256, manual_steps)

    if destination.exists():
        problem = _checksum_problem(destination, md5, sha256)
        if problem is None:
            logger.info("using cached %s", destination)
            return destination
        logger.warning("cached %s is corrupt (%s): downloading it again", destination, problem)
        destination.unlink()

    part = destination.with_name(destination.name + ".part")
    failures = []
    for mirror in urls:
        reason = _fetch_with_retries(mirror, part, timeout, retries)
        if reason is not None:
            failures.append(f"{mirror}: {reason}")
            continue
        problem = _checksum_problem(part, md5, sha256)
        if problem is not None:
            part.unlink()
            raise DownloadError(
                f"downloaded {mirror} but the file is corrupt ({problem}); it was deleted. "
                f"Run again to download it afresh. {help_text}"
            )
        os.replace(part, destination)
        logger.info("downloaded %s to %s", mirror, destination)
        return destination

    kept = f" The partial file {part} is kept: the next call resumes it." if part.exists() else ""
    raise DownloadError(
        f"could not download {destination.name} ({'; '.join(failures)}).{kept} {help_text}"
    )


def _fetch_with_retries(url: str, part: Path, timeout: float, retries: int) -> str | None:
    """Fetch ``url`` into ``part``, resuming after interruptions; None on success, else why not."""
    for attempt in range(retries + 1):
        try:
            _fetch_into(url, part, timeout)
            return None
        except _Interrupted as error:
            reason = f"transfer interrupted ({error})"
        except urllib.error.HTTPError as error:
            return f"HTTP {error.code} {error.reason}"  # retrying the same mirror will not help
        except (urllib.error.URLError, OSError) as error:  # refused, unreachable, timed out
            cause = getattr(error, "reason", error)
            timed_out = isinstance(cause, (socket.timeout, TimeoutError)) or "timed out" in str(cause)
            reason = f"timed out after {timeout:g} s" if timed_out else f"{type(cause).__name__}: {cause}"
        if attempt < retries:
            logger.warning("%s: %s; resuming (attempt %d of %d)", url, reason, attempt + 2, retries + 1)
    return reason


def extract_archive(archive: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Extract a tar (any compression) or zip archive into ``destination``; return it.

    Members that would land outside ``destination`` (absolute paths, ``..``) are refused.
    """
    archive, destination = Path(archive), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as handle:
            names = handle.namelist()
            _refuse_escaping_members(names, root, archive)
            handle.extractall(destination)
        return destination
    try:
        with tarfile.open(archive) as handle:
            _refuse_escaping_members([member.name for member in handle.getmembers()], root, archive)
            if hasattr(tarfile, "data_filter"):
                handle.extractall(destination, filter="data")
            else:  # pragma: no cover - Python without extraction filters
                handle.extractall(destination)
    except tarfile.FilterError as error:  # a link out of the folder, a device file ...
        member = getattr(getattr(error, "tarinfo", None), "name", "a member")
        raise DownloadError(f"{archive} holds {member!r}, which the extraction filter refuses "
                            f"({type(error).__name__}: {error}); refusing to extract it") from None
    except tarfile.TarError as error:
        raise DownloadError(f"{archive} is not a readable tar archive ({type(error).__name__}: {error}); "
                            "refusing to extract it") from None
    return destination


def _refuse_escaping_members(names: Sequence[str], root: Path, archive: Path) -> None:
    for name in names:
        target = (root / name).resolve()
        if target != root and root not in target.parents:
            raise DownloadError(f"{archive} holds {name!r}, which would be written outside {root}; "
                                "refusing to extract it")


def download_archives(archives: Sequence[RemoteFile], root: Path, extract_to: Path, marker_dir: Path,
                      timeout: float, manual_steps) -> None:
    """Download (once) each archive into ``root/downloads`` and extract it into ``extract_to``.

    An archive whose extraction finished is marked with a small file in ``marker_dir``, so a
    second call neither downloads nor extracts it again. ``manual_steps(remote)`` is the hint of
    the error message.
    """
    for remote in archives:
        marker = marker_dir / f".extracted-{remote.filename}"
        if marker.exists():
            continue
        archive = download_file(remote.urls, root / "downloads" / remote.filename, md5=remote.md5,
                                sha256=remote.sha256, timeout=timeout, manual_steps=manual_steps(remote))
        logger.info("extracting %s into %s", archive, extract_to)
        try:
            extract_archive(archive, extract_to)
        except DownloadError as error:  # not the archive published: the next call fetches it afresh
            archive.unlink()
            raise DownloadError(f"{error}. It was deleted: run again to download it afresh. "
                                f"{_manual_steps(remote.urls, archive, remote.md5, remote.sha256, manual_steps(remote))}"
                                ) from None
        marker_dir.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{remote.filename} md5 {remote.md5}\n")


def download_voc2007(root: str | os.PathLike = "data", timeout: float = 60.0,
                     archives: Sequence[RemoteFile] = VOC2007_ARCHIVES) -> Path:
    """Download (once) and extract the official VOC 2007 trainval and test archives.

    The archives are kept in ``root/downloads/``; both extract into ``root/VOCdevkit/VOC2007``,
    which is returned. An archive whose extraction finished is marked with a small file, so a
    second call neither downloads nor extracts again. ``archives`` replaces the official
    list (tests serve small archives from a local server).
    """
    root = Path(root)
    voc_dir = root / "VOCdevkit" / "VOC2007"
    download_archives(archives, root, root, voc_dir, timeout, lambda remote: (
        f"Extract it with `tar -xf {remote.filename} -C {root}` so that {voc_dir}/JPEGImages exists."))
    return voc_dir


def download_coco2014(root: str | os.PathLike = "data", timeout: float = 60.0,
                      archives: Sequence[RemoteFile] = COCO2014_ARCHIVES) -> Path:
    """Download (once) and extract COCO 2014 (train2014, val2014, annotations) into ``root/coco``.

    About 20 GB of archives are kept in ``root/downloads/``; ``root/coco`` is returned. As for
    VOC, a finished extraction is marked, an interrupted download resumes.
    """
    root = Path(root)
    coco_dir = root / "coco"
    download_archives(archives, root, coco_dir, coco_dir, timeout, lambda remote: (
        f"Extract it with `unzip -q {remote.filename} -d {coco_dir}`."))
    return coco_dir
