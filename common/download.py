"""One file from a list of sources, checked against its md5, surviving a bad network.

torchvision's ``download_url`` fetches from one URL, from byte 0, with no timeout, straight
under the file's final name. Here, for a big archive on a slow or flaky line:

- the sources are tried in order; a source that fails (refused, stalled, dropped, a wrong
  file) is reported and the next one is tried;
- the bytes go to ``<name>.part``, which stays when a download breaks (or Ctrl-C stops it)
  and is resumed on the next try with an HTTP ``Range`` request; a source that ignores
  ``Range`` (status 200 instead of 206) starts it over;
- every socket operation (connecting, and each read) gives up after ``TIMEOUT`` seconds, so a
  stalled source moves on instead of hanging; a source that crawls (under ``MIN_SPEED`` over
  ``SLOW_WINDOW`` seconds) is left too, while another source remains to resume from it;
- the file gets its final name only once its md5 matches (torchvision's ``check_integrity``);
  one that doesn't is deleted, never used (a resumed one is first fetched once more from
  byte 0: the bad bytes may be older than this source).

Only the standard library's ``urllib`` (which honours ``https_proxy`` and friends), tqdm for
the progress bar, and torchvision's ``check_integrity``.
"""
from __future__ import annotations

import http.client
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

from torchvision.datasets.utils import check_integrity
from tqdm import tqdm

from common import disk
from common.cli import reason

TIMEOUT = 30.0            # seconds without a byte (connect, or any read) before a source is dropped
MIN_SPEED = 100_000       # bytes/s: slower than this over SLOW_WINDOW s, the next source is tried
SLOW_WINDOW = 60.0
CHUNK = 1 << 16
USER_AGENT = "tudui-pytorch-companion"


class SourceFailed(Exception):
    """One source could not give the file; the message says why, in a few words."""


def partial_path(dest: Path) -> Path:
    """Where the bytes of ``dest`` collect until its md5 has passed."""
    return dest.with_name(dest.name + ".part")


def fetch(urls: list[str], dest: Path, md5: str, *, timeout: float | None = None,
          option: str | None = None) -> tuple[Path | None, list[tuple[str, str]]]:
    """Download ``dest`` from the first of ``urls`` that gives a file with this ``md5``.

    Returns ``(dest, failures)`` on success, ``(None, failures)`` when every source failed;
    ``failures`` lists ``(url, why)`` for each source that was tried and failed. A partial
    download stays in :func:`partial_path` for the next try; Ctrl-C (KeyboardInterrupt) is
    passed on at once, with the partial file flushed and kept. A write that fails (a full
    disk) is one :class:`~common.disk.WriteError` line, its hint naming ``option`` (how to
    download elsewhere); the partial file is kept for the next try.
    """
    dest = Path(dest)
    part = partial_path(dest)
    failures = []
    for i, url in enumerate(urls):
        timing = dict(timeout=timeout if timeout is not None else TIMEOUT,
                      give_up_when_slow=i < len(urls) - 1)   # the last source may crawl
        try:
            resumed = _write_failures_said(_download, url, part, option, **timing)
            whole = check_integrity(str(part), md5)
            if not whole and resumed:
                part.unlink()          # the bad bytes may be older than this source:
                _write_failures_said(_download, url, part, option, **timing)   # from byte 0
                whole = check_integrity(str(part), md5)
        except SourceFailed as e:
            failures.append((url, str(e)))
            continue
        if whole:
            os.replace(part, dest)
            return dest, failures
        part.unlink()                  # not the file: never used, and not resumed
        failures.append((url, "the file it gave has the wrong md5; the download was deleted"))
    return None, failures


def _download(url: str, part: Path, timeout: float, give_up_when_slow: bool = False) -> bool:
    """Bring ``part`` to the whole file at ``url``: resumed from its size when it exists.

    Returns whether bytes from before were kept (resumed). With ``give_up_when_slow``, a
    download slower than ``MIN_SPEED`` over ``SLOW_WINDOW`` seconds fails (its part is kept).
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and offset:        # nothing after offset: the partial file is whole
            return True                     # (or longer than the file: the md5 check says)
        raise SourceFailed(f"HTTP {e.code} {e.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as e:   # URLError is an OSError
        raise SourceFailed(_why(e)) from None
    with response:
        resumed = bool(offset) and response.status == 206
        if resumed and _range_start(response) != offset:
            raise SourceFailed(f"it answered the range request bytes={offset}- with "
                               f"{response.headers.get('Content-Range')!r}")
        if not resumed:
            offset = 0                      # a fresh download, or a source that ignores Range
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        with open(part, "ab" if resumed else "wb") as f, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=part.name.removesuffix(".part"), dynamic_ncols=True) as bar:
            window_start, window_bytes = time.monotonic(), 0
            while True:
                elapsed = time.monotonic() - window_start
                if elapsed >= SLOW_WINDOW:
                    if give_up_when_slow and window_bytes / elapsed < MIN_SPEED:
                        raise SourceFailed(f"too slow ({window_bytes / elapsed / 1e3:.0f} kB/s) "
                                           f"after {amount(f.tell())}; kept for the next source")
                    window_start, window_bytes = time.monotonic(), 0
                try:
                    chunk = response.read1(CHUNK)   # what has come, not a full CHUNK
                except (OSError, ValueError, http.client.HTTPException) as e:   # timeouts too
                    raise SourceFailed(f"{_why(e)} after {amount(f.tell())}") from None
                if not chunk:
                    break
                f.write(chunk)
                window_bytes += len(chunk)
                bar.update(len(chunk))
            if total is not None and f.tell() < total:
                raise SourceFailed(f"the connection closed after {amount(f.tell())} of "
                                   f"{amount(total)}")
    return resumed


def _write_failures_said(download, url: str, part: Path, option: str | None, **timing) -> bool:
    """``download(url, part)``, with a failed write of ``part`` as one line: no other source
    can help with a full disk."""
    try:
        return download(url, part, **timing)
    except OSError as e:
        if not disk.is_write_failure(e):
            raise
        kept = part.stat().st_size if part.exists() else 0
        raise disk.failed(part, e, option).with_hint(
            f"{part.name} keeps {amount(kept)} for the next run to resume") from None


def _range_start(response) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _why(e: BaseException) -> str:
    """:func:`common.cli.reason`, with a timeout said plainly and without "[Errno 111] "."""
    if isinstance(getattr(e, "reason", None) or e, TimeoutError) or "timed out" in reason(e):
        return "timed out"
    return re.sub(r"^\[Errno -?\d+\] ", "", reason(e))   # "Connection refused"


def amount(n: int) -> str:
    """``n`` bytes as the download lines say it: in bytes below 0.1 MB, else in MB of 1e6."""
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"
