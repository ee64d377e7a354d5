"""CIFAR-10's download, offline: a loopback HTTP server (the standard library's) serves a small
archive in CIFAR-10's real on-disk format, made here; torchvision is made to expect that
archive's md5 and its files' md5s, so every check is torchvision's own, for real."""
from __future__ import annotations

import argparse
import errno
import hashlib
import http.server
import io
import os
import re
import shutil
import tarfile
import threading
import time
from pathlib import Path

import pytest
import torch
from torchvision import transforms
from torchvision.datasets import CIFAR10

from common import data, disk, download
from common.cli import UserError
from conftest import REPO, ctrl_c, file_size_limit, free_port, load_script, write_cifar10

p23 = load_script("p23_train")
STALL = 5.0          # seconds a stalling source waits before it answers
TIMEOUT = 0.5        # download.TIMEOUT in these tests


@pytest.fixture
def archive(tmp_path_factory, monkeypatch) -> bytes:
    """A tiny cifar-10-python.tar.gz; torchvision now expects its md5 and its files' md5s."""
    made = tmp_path_factory.mktemp("made")
    folder = write_cifar10(made, n_train=50, n_test=20) / CIFAR10.base_folder
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=CIFAR10.base_folder)
    blob = buffer.getvalue()

    def md5(name):
        return hashlib.md5((folder / name).read_bytes()).hexdigest()
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(blob).hexdigest())
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(n)] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[n, md5(n)] for n, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5("batches.meta")})
    monkeypatch.setattr(download, "TIMEOUT", TIMEOUT)
    return blob


class Server:
    """http://127.0.0.1:<port>/<how>: good (honours Range, 416 past the end), slow (good after
    TIMEOUT / 2), norange, wrong,
    half (drops the connection half way), stall (answers after STALL s), midstall (sends half,
    then stalls), crawl (sends half, then a byte every 50 ms); any other path is a 404."""

    def __init__(self, blob: bytes):
        self.blob, self.requests = blob, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                how = self.path.strip("/")
                server.requests.append((how, self.headers.get("Range")))
                body, start = server.blob, 0
                if how == "stall":
                    time.sleep(STALL)
                elif how == "slow":
                    time.sleep(TIMEOUT / 2)
                    how = "good"
                elif how == "wrong":
                    body = b"<html>not the archive</html>" * 1000
                elif how not in ("good", "norange", "half", "midstall", "crawl"):
                    return self.send_error(404)
                ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if how in ("good", "half", "crawl") and ranged:
                    start = int(ranged.group(1))
                    if start >= len(body):
                        return self.send_error(416)
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                try:
                    if how in ("midstall", "crawl"):    # half, then nothing / a byte at a time
                        self.wfile.write(body[start:len(body) // 2])
                        self.wfile.flush()
                        for i in range(len(body) // 2, len(body)):
                            time.sleep(STALL if how == "midstall" else 0.05)
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                        return
                    self.wfile.write(body[start:len(body) // 2] if how == "half" else body[start:])
                except (BrokenPipeError, ConnectionResetError):
                    pass                    # the client went away (Ctrl-C, a timeout)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # polled every 10 ms, not the default 0.5 s: shutdown() waits for the next poll
        threading.Thread(target=self.httpd.serve_forever, args=(0.01,), daemon=True).start()

    def url(self, how: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{how}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(archive, monkeypatch):
    s = Server(archive)
    # the built-in sources are loopback too: nothing here may reach the internet
    monkeypatch.setattr(CIFAR10, "url", s.url("builtin"))
    monkeypatch.setattr(data, "CIFAR10_MIRRORS", (s.url("builtin-mirror"),))
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    yield s
    s.close()


def refused_url() -> str:
    """A loopback port nothing listens on: the connection is refused at once."""
    return f"http://127.0.0.1:{free_port()}/cifar-10-python.tar.gz"


def error_line(err: str, word: str = "error") -> str:
    """stderr's one message line, the last; anything before it is the progress bar's."""
    lines = err.rstrip("\n").split("\n")
    assert all(line.startswith("\r") for line in lines[:-1]), lines
    assert lines[-1].startswith(word + ":") and err.endswith("\n") and err.count(word + ":") == 1
    return lines[-1]


def left_in(root):
    """What is in root, but the hidden lock file of a download that went through."""
    return sorted(p.name for p in root.iterdir()
                  if p.name != data.DOWNLOAD_LOCK) if root.exists() else []


def test_two_processes_sharing_a_data_root_download_once(server, tmp_path):
    """torchrun's processes (or two runs started together) on one --data-root: the first
    fetches and unpacks while the other waits on the lock, then finds the set in place."""
    root, start, got = tmp_path / "data", threading.Barrier(2), {}

    def load(name):
        start.wait()
        got[name] = data.cifar10(root, train=True, mirrors=[server.url("slow")])

    threads = [threading.Thread(target=load, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert server.requests == [("slow", None)]              # one download, not two
    assert len(got["a"]) == len(got["b"]) == 50
    assert left_in(root) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    # the lock stays: removing it while a third process waits on it would let that one and
    # a fourth, which makes a new lock file, both hold "the" lock
    assert (root / data.DOWNLOAD_LOCK).is_file()


def test_a_root_pulled_from_under_the_lock_is_made_again(server, tmp_path, monkeypatch):
    """The race the test above once lost (1 run in 30): another process removes the root
    while filelock makes it (FileExistsError from mkdir's exist_ok check) or waits in it
    (FileNotFoundError). The lock is tried again in a root made again, and the set comes."""
    root, calls = tmp_path / "data", []
    real_acquire = data.FileLock.acquire

    def acquire(self, *args, **kwargs):
        calls.append(root.is_dir())      # the root is made before the check and the lock
        if len(calls) <= 2:
            shutil.rmtree(root)          # the other process's failed download cleans up
            raise (FileExistsError(errno.EEXIST, "File exists") if len(calls) == 1 else
                   FileNotFoundError(errno.ENOENT, "No such file or directory"))
        return real_acquire(self, *args, **kwargs)

    monkeypatch.setattr(data.FileLock, "acquire", acquire)
    assert len(data.cifar10(root, train=True, mirrors=[server.url("good")])) == 50
    assert calls == [True, True, True]
    assert server.requests == [("good", None)]
    assert left_in(root) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


def test_a_failed_download_tidies_up_before_the_next_one_takes_the_lock(server, tmp_path,
                                                                       monkeypatch):
    """A's download fails in a root it made; B, waiting, takes the lock as A lets go. A's
    tidying (the lock file, the empty root) is done before that, never under B's download:
    B then finds no lock file, makes the root again and downloads into it."""
    root, b_inside, b_go_on, got = tmp_path / "new" / "data", threading.Event(), \
        threading.Event(), {}
    real_fetch, real_release = data._fetch_cifar10, data.FileLock.release

    def fetch(r, mirrors):
        if mirrors == [server.url("good")]:
            b_inside.set()               # B holds the lock, about to write into the root
            b_go_on.wait(10)
        return real_fetch(r, mirrors)

    def b():
        try:
            got["b"] = len(data.cifar10(root, train=False, mirrors=[server.url("good")]))
        except BaseException as e:      # noqa: BLE001 - the test reports what B met
            got["b"] = e

    thread = threading.Thread(target=b)

    def release(self, *args, **kwargs):
        real_release(self, *args, **kwargs)
        if not thread.is_alive() and "b" not in got and not b_inside.is_set():
            thread.start()               # B was waiting: it takes the lock now
            assert b_inside.wait(10)     # and A goes on (its finally) only once B is in

    monkeypatch.setattr(data, "_fetch_cifar10", fetch)
    monkeypatch.setattr(data.FileLock, "release", release)
    with pytest.raises(UserError, match="no source could give it"):
        data.cifar10(root, train=False, mirrors=[refused_url()])
    b_go_on.set()
    thread.join(30)
    assert got["b"] == 20
    assert left_in(root) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


def test_a_root_removed_while_it_is_checked_is_made_again(server, tmp_path, monkeypatch):
    """The root vanishes between its mkdir and the write check's test file (another process's
    failed download tidied it): that is tried again, not told as a folder one cannot write."""
    root, calls = tmp_path / "data", []
    real_mkstemp = disk.tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        calls.append(kwargs["dir"])
        if len(calls) == 1:
            shutil.rmtree(root)
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(disk.tempfile, "mkstemp", mkstemp)
    assert len(data.cifar10(root, train=False, mirrors=[server.url("good")])) == 20
    assert [Path(d) for d in calls[:2]] == [root, root]
    assert server.requests == [("good", None)]


def test_a_lock_file_removed_by_its_last_holder_is_not_trusted(server, tmp_path, monkeypatch):
    """Taking a lock whose file the last holder removed (its download failed) holds nothing
    another process could see: let go, and lock the file made again."""
    root, held = tmp_path / "data", []
    real_acquire = data.FileLock.acquire

    def acquire(self, *args, **kwargs):
        got = real_acquire(self, *args, **kwargs)
        held.append((root / data.DOWNLOAD_LOCK).stat().st_ino)
        if len(held) == 1:
            (root / data.DOWNLOAD_LOCK).unlink()
        return got

    monkeypatch.setattr(data.FileLock, "acquire", acquire)
    assert len(data.cifar10(root, train=False, mirrors=[server.url("good")])) == 20
    assert len(held) == 2 and (root / data.DOWNLOAD_LOCK).stat().st_ino == held[1]
    assert server.requests == [("good", None)]


def test_a_root_that_cannot_be_written_is_not_tried_again(tmp_path, monkeypatch):
    """Only a root that vanished is tried again; a root through a file fails at once."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(disk.WriteError, match="a part of the path is a file"):
        data.cifar10(tmp_path / "file" / "data", train=False, mirrors=[refused_url()])


def test_a_refused_source_then_one_that_serves_it_and_the_run_trains(server, tmp_path, capsys):
    root = tmp_path / "data"
    rc = p23.main(["--data-root", str(root), "--mirror", refused_url(), "--mirror",
                   server.url("good"), "--epochs", "1", "--device", "cpu",
                   "--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ck")])
    assert rc == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "训练数据集的长度为：50" in out and "测试数据集的长度为：20" in out
    assert left_in(root) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]   # no .part
    assert server.requests == [("good", None)]


def test_a_stalled_source_is_left_after_the_timeout(server, tmp_path):
    start = time.perf_counter()
    got, failures = download.fetch([server.url("stall"), server.url("good")],
                                    tmp_path / "a.tar.gz", CIFAR10.tgz_md5)
    assert time.perf_counter() - start < STALL - 1
    assert got == tmp_path / "a.tar.gz" and got.read_bytes() == server.blob
    assert failures == [(server.url("stall"), "timed out")]


def test_a_wrong_file_is_deleted_and_the_next_source_used(server, tmp_path):
    root = tmp_path / "data"
    ds = data.cifar10(root, train=False, mirrors=[server.url("wrong"), server.url("good")])
    assert len(ds) == 20
    assert [how for how, _ in server.requests] == ["wrong", "good"]
    got, failures = download.fetch([server.url("wrong")], tmp_path / "b.tar.gz",
                                   CIFAR10.tgz_md5)
    assert got is None and failures == [
        (server.url("wrong"), "the file it gave has the wrong md5; the download was deleted")]
    assert left_in(tmp_path) == ["data"]       # neither b.tar.gz nor b.tar.gz.part


def test_a_dropped_download_resumes_with_range_on_the_next_run(server, tmp_path, capsys):
    root = tmp_path / "data"
    half = len(server.blob) // 2
    argv = ["--data-root", str(root), "--epochs", "1", "--device", "cpu",
            "--logdir", str(tmp_path / "logs"), "--checkpoint-dir", str(tmp_path / "ck")]
    assert p23.main([*argv, "--mirror", server.url("half")]) == 1
    err = error_line(capsys.readouterr().err)
    assert err.startswith(f"error: CIFAR-10 is not in {root} and no source could give it: ")
    assert (f"{server.url('half')} (the connection closed after {half / 1e6:.1f} MB of "
            f"{len(server.blob) / 1e6:.1f} MB)") in err
    assert f"; {root / 'cifar-10-python.tar.gz.part'} keeps 0.1 MB for the next run to resume" in err
    part = root / "cifar-10-python.tar.gz.part"
    assert left_in(root) == [part.name] and part.stat().st_size == half

    assert p23.main([*argv, "--mirror", server.url("good")]) == 0
    assert server.requests[-1] == ("good", f"bytes={half}-")
    assert left_in(root) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    assert (root / "cifar-10-python.tar.gz").read_bytes() == server.blob


def test_a_source_that_ignores_range_starts_over(server, tmp_path):
    dest = tmp_path / "c.tar.gz"
    download.partial_path(dest).write_bytes(server.blob[:1000])
    got, failures = download.fetch([server.url("norange")], dest, CIFAR10.tgz_md5)
    assert server.requests == [("norange", "bytes=1000-")] and failures == []
    assert got.read_bytes() == server.blob


def test_mirror_flags_then_the_environment_then_the_built_in_sources(server, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, f"{server.url('env-1')}, {server.url('env-2')}")
    assert data.cifar10_sources([server.url("flag")]) == [
        server.url("flag"), server.url("env-1"), server.url("env-2"), server.url("builtin"),
        server.url("builtin-mirror")]
    monkeypatch.setattr(data, "CIFAR10_MIRRORS", (server.url("good"),))
    assert len(data.cifar10(tmp_path, train=True, mirrors=[server.url("flag")])) == 50
    assert [how for how, _ in server.requests] == ["flag", "env-1", "env-2", "builtin", "good"]


def test_when_every_source_fails_one_line_names_each_and_nothing_is_left(server, tmp_path,
                                                                         capsys):
    root = tmp_path / "new"
    refused = refused_url()
    rc = p23.main(["--data-root", str(root), "--mirror", refused, "--mirror",
                   server.url("wrong"), "--logdir", str(tmp_path / "logs")])
    assert rc == 1
    err = error_line(capsys.readouterr().err)
    for source in (refused, server.url("wrong"), server.url("builtin"),
                   server.url("builtin-mirror")):
        assert source in err
    assert "Connection refused" in err and "(HTTP 404 Not Found)" in err
    assert "wrong md5" in err and "--mirror URL" in err and "--fake-data" in err
    assert f"cifar-10-python.tar.gz from any of them yourself into {root}/" in err
    assert not root.exists()            # no archive, no folder, not even an empty root


def test_ctrl_c_keeps_the_partial_file_with_one_line(server, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(download, "CHUNK", 4096)
    real_tqdm = download.tqdm

    class Interrupted(real_tqdm):
        def update(self, n=1):
            super().update(n)
            if self.n >= 3 * 4096:
                raise KeyboardInterrupt
    monkeypatch.setattr(download, "tqdm", Interrupted)
    root = tmp_path / "data"
    assert p23.main(["--data-root", str(root), "--mirror", server.url("good"),
                     "--logdir", str(tmp_path / "logs")]) == 130
    part = root / "cifar-10-python.tar.gz.part"
    kept = part.read_bytes()
    assert error_line(capsys.readouterr().err, "interrupted") == (    # under 0.1 MB: in bytes
        f"interrupted: the CIFAR-10 download stopped; {part} keeps {len(kept)} bytes and the "
        "next run resumes it")
    assert left_in(root) == [part.name] and 3 * 4096 <= len(kept) < len(server.blob)
    assert kept == server.blob[:len(kept)]


def test_a_complete_copy_needs_no_network(archive, tmp_path, offline):
    root = tmp_path / "data"
    (root).mkdir()
    (root / CIFAR10.filename).write_bytes(archive)      # placed by hand: checked, unpacked
    assert len(data.cifar10(root, train=True)) == 50
    assert left_in(root) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    (root / CIFAR10.filename).unlink()                  # the unpacked folder alone is enough
    assert len(data.cifar10(root, train=False)) == 20


def test_a_broken_archive_under_the_final_name_is_resumed_not_trusted(server, tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    cut = len(server.blob) // 3       # e.g. what torchvision's own download left when it broke
    (root / CIFAR10.filename).write_bytes(server.blob[:cut])
    assert len(data.cifar10(root, train=False, mirrors=[server.url("good")])) == 20
    assert server.requests == [("good", f"bytes={cut}-")]
    assert capsys.readouterr().err.startswith(
        f"note: {root / CIFAR10.filename} fails torchvision's md5 check for CIFAR-10's archive: "
        "it is not used, only resumed from as a partial download\n")


def test_offline_is_one_line_listing_the_sources(tmp_path, offline, monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    with pytest.raises(data.UserError) as e:
        data.cifar10(tmp_path / "new", train=False)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"CIFAR-10 is not in {tmp_path / 'new'} and no "
                                              "source could give it: ")
    for source in (CIFAR10.url, *data.CIFAR10_MIRRORS):
        assert f"{source} (Temporary failure in name resolution)" in msg
    assert not (tmp_path / "new").exists()
    with pytest.raises(data.UserError):         # nor the folders above it that it made
        data.cifar10(tmp_path / "a" / "b" / "new", train=False)
    assert os.listdir(tmp_path) == []


def test_the_readme_lists_the_built_in_sources_and_the_timeout():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("**Downloading CIFAR-10.**"):readme.index("**By hand")]
    for source in (CIFAR10.url, *data.CIFAR10_MIRRORS):
        assert f"`{source}`" in section
    assert f"no byte for {download.TIMEOUT:g} s" in section
    assert "`--mirror URL`" in section and f"`{data.MIRROR_ENV}`" in section


def test_a_source_that_stalls_mid_file_is_left_and_the_next_resumes(server, tmp_path):
    half = len(server.blob) // 2
    got, failures = download.fetch([server.url("midstall"), server.url("good")],
                                   tmp_path / "d.tar.gz", CIFAR10.tgz_md5)
    assert got.read_bytes() == server.blob
    assert failures == [(server.url("midstall"), f"timed out after {half / 1e6:.1f} MB")]
    assert server.requests[-1] == ("good", f"bytes={half}-")


def test_a_crawling_source_is_left_while_another_remains(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "SLOW_WINDOW", 0.3)
    monkeypatch.setattr(download, "MIN_SPEED", 10_000)     # bytes/s; the crawl sends 20
    got, failures = download.fetch([server.url("crawl"), server.url("good")],
                                   tmp_path / "e.tar.gz", CIFAR10.tgz_md5)
    assert got.read_bytes() == server.blob
    ((url, why),) = failures
    assert url == server.url("crawl") and re.fullmatch(
        r"too slow \(0 kB/s\) after 0\.1 MB; kept for the next source", why)
    assert server.requests[-1][0] == "good" and server.requests[-1][1].startswith("bytes=")


def test_a_partial_file_longer_than_the_file_is_fetched_again_from_the_start(server, tmp_path):
    dest = tmp_path / "f.tar.gz"
    download.partial_path(dest).write_bytes(server.blob + b"left over")
    got, failures = download.fetch([server.url("good")], dest, CIFAR10.tgz_md5)
    assert failures == [] and got.read_bytes() == server.blob
    assert server.requests == [("good", f"bytes={len(server.blob) + 9}-"), ("good", None)]


def test_a_mirror_may_be_a_path_on_this_machine(archive, tmp_path):
    copy = tmp_path / "usb" / "cifar.tar.gz"
    copy.parent.mkdir()
    copy.write_bytes(archive)
    assert data.cifar10_sources([str(copy)])[0] == copy.as_uri()
    missing = tmp_path / "nowhere.tar.gz"
    got, failures = download.fetch([missing.as_uri()], tmp_path / "g.tar.gz", CIFAR10.tgz_md5)
    assert got is None and failures == [(missing.as_uri(),
                                         f"No such file or directory: '{missing}'")]
    assert len(data.cifar10(tmp_path / "data", train=False, mirrors=[str(copy)])) == 20


# --- a disk that can't take it ---------------------------------------------------------------

def test_a_download_that_cannot_be_written_keeps_its_part_and_resumes(server, tmp_path):
    root = tmp_path / "data"
    part = root / (CIFAR10.filename + ".part")
    with file_size_limit(100_000), pytest.raises(UserError) as caught:
        data.cifar10(root, train=True, mirrors=[server.url("good")])
    kept = part.stat().st_size
    assert 0 < kept <= 100_000
    assert str(caught.value) == (
        f"cannot write {part}: the file is larger than this system allows (a file-size limit, "
        "ulimit -f); raise the limit (ulimit -f unlimited), or write elsewhere with --data-root DIR. "
        f"{part.name} keeps {download.amount(kept)} for the next run to resume")
    assert server.requests == [("good", None)]                # a full disk: no other source tried
    assert len(data.cifar10(root, train=True, mirrors=[server.url("good")])) == 50
    assert server.requests[1] == ("good", f"bytes={kept}-")  # resumed where it stopped
    assert left_in(root) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]


def test_an_archive_that_cannot_be_unpacked_stays_whole(archive, tmp_path, small_disk,
                                                         monkeypatch):
    """A disk with room for the archive but not for what it unpacks to (the free-space check,
    which would stop it first, is told the sizes are 0 here)."""
    monkeypatch.setattr(data, "CIFAR10_ARCHIVE_BYTES", 0)
    monkeypatch.setattr(data, "CIFAR10_UNPACKED_BYTES", 0)
    root = small_disk(f"{(len(archive) * 3 // 2) // 1024}k")
    source = tmp_path / "cifar.tar.gz"
    source.write_bytes(archive)
    with pytest.raises(UserError) as caught:
        data.cifar10(root, train=True, mirrors=[str(source)])
    assert str(caught.value) == (
        f"cannot write {root / CIFAR10.base_folder}: no space left on the device; free some "
        "space, or write elsewhere with --data-root DIR. cifar-10-python.tar.gz is whole and "
        "the next run unpacks it")
    assert left_in(root) == ["cifar-10-python.tar.gz"]       # nothing half-unpacked
    assert (root / CIFAR10.filename).read_bytes() == archive


def test_too_little_free_space_stops_before_any_download(server, tmp_path, monkeypatch):
    monkeypatch.setattr(disk, "free_bytes", lambda folder: 100 * 2**20)
    root = tmp_path / "data"
    with pytest.raises(UserError) as caught:
        data.cifar10(root, train=True, mirrors=[server.url("good")])
    assert str(caught.value) == (
        f"not enough space in {root} for CIFAR-10 (its archive, 162.6 MB, and its unpacked "
        "copy, about 177.6 MB): it needs 340.2 MB, and 100.0 MB is free; free some space, or "
        "write elsewhere with --data-root DIR")
    assert server.requests == []
    assert not root.exists()


# --- each message and amount, whole (mutation testing found them unchecked) ------------------

def test_no_environment_variable_adds_no_source(server):
    assert data.cifar10_sources() == [server.url("builtin"), server.url("builtin-mirror")]


def test_download_off_names_the_file_the_url_and_fake_data(tmp_path):
    with pytest.raises(UserError) as caught:
        data.cifar10(tmp_path, train=True, download=False)
    assert str(caught.value) == (
        f"CIFAR-10 is not in {tmp_path} and download is off. Place cifar-10-python.tar.gz (from "
        f"{CIFAR10.url}) in {tmp_path}, or run with --fake-data")


def test_a_damaged_unpacked_copy_is_named_as_damaged_not_missing(tmp_path, monkeypatch):
    """cifar-10-batches-py/ there, with a file cut short and one gone: the line says which,
    not that CIFAR-10 is absent. (Here a file "passes its md5" when it holds b"whole".)"""
    monkeypatch.setattr(data, "check_integrity",
                        lambda path, md5=None: Path(path).is_file()
                        and Path(path).read_bytes() == b"whole")
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, _ in (*CIFAR10.train_list, *CIFAR10.test_list):
        (folder / name).write_bytes(b"whole")
    (folder / "data_batch_3").write_bytes(b"who")       # cut short
    (folder / "test_batch").unlink()
    with pytest.raises(UserError) as caught:
        data.cifar10(tmp_path, train=True, download=False)
    assert str(caught.value) == (
        f"CIFAR-10 in {folder} is incomplete or damaged (data_batch_3, test_batch: missing, or "
        "failing torchvision's md5 check) and download is off. Place cifar-10-python.tar.gz "
        f"(from {CIFAR10.url}) in {tmp_path}, or run with --fake-data")


def test_a_copy_that_cannot_be_read_is_one_line(tmp_path, monkeypatch):
    def unreadable(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "test_batch"))
    monkeypatch.setattr(data, "CIFAR10", unreadable)
    with pytest.raises(UserError) as caught:
        data.cifar10(tmp_path, train=False)
    assert str(caught.value) == (f"cannot read CIFAR-10 in {tmp_path}: [Errno 13] Permission "
                                 f"denied: '{tmp_path / 'test_batch'}'")


def test_a_downloaded_set_goes_through_the_transform(server, tmp_path):
    ds = data.cifar10(tmp_path / "data", train=False, transform=transforms.ToTensor(),
                      mirrors=[server.url("good")])
    img, target = ds[0]
    assert isinstance(img, torch.Tensor) and img.shape == (3, 32, 32) and 0 <= target < 10


def test_complete_means_every_file_with_its_md5(archive, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / CIFAR10.filename).write_bytes(archive)
    data.cifar10(root, train=True)
    assert data._cifar10_complete(root)
    batch = root / CIFAR10.base_folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1] + b"?")          # there, but not the file
    assert not data._cifar10_complete(root)
    batch.unlink()
    assert not data._cifar10_complete(root)


def test_an_incomplete_copy_is_unpacked_again_from_the_archive(archive, tmp_path, offline):
    root = tmp_path / "data"
    root.mkdir()
    (root / CIFAR10.filename).write_bytes(archive)
    data.cifar10(root, train=True)
    (root / CIFAR10.base_folder / "test_batch").unlink()       # a copy someone broke
    assert len(data.cifar10(root, train=False)) == 20
    assert data._cifar10_complete(root)


def test_ctrl_c_says_what_was_kept_whole_or_nothing(server, tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    monkeypatch.setattr(data, "extract_archive", ctrl_c)
    with pytest.raises(KeyboardInterrupt) as caught:
        data.cifar10(root, train=False, mirrors=[server.url("good")])
    assert str(caught.value) == (f"interrupted: the CIFAR-10 download stopped; {root / CIFAR10.filename} "
                                 "is whole and the next run unpacks it")
    monkeypatch.setattr(data, "fetch", ctrl_c)
    with pytest.raises(KeyboardInterrupt) as caught:
        data.cifar10(tmp_path / "other", train=False, mirrors=[server.url("good")])
    assert str(caught.value) == "interrupted: the CIFAR-10 download stopped; nothing was kept"


def test_an_amount_is_in_bytes_below_a_tenth_of_a_megabyte():
    assert [download.amount(n) for n in (0, 99_999, 100_000, 1_234_567)] == [
        "0 bytes", "99999 bytes", "0.1 MB", "1.2 MB"]


def test_megabytes_kept_are_millions_of_bytes(server, tmp_path, monkeypatch):
    """120,000 bytes is 0.1 MB at one decimal (1e6 bytes to the MB, as download.amount says;
    less than 0.1 MB is said in bytes), in both the Ctrl-C line and the every-source-failed line."""
    root = tmp_path / "data"
    root.mkdir()
    part = download.partial_path(root / CIFAR10.filename)
    part.write_bytes(server.blob[:120_000])
    with pytest.raises(UserError) as caught:
        data.cifar10(root, train=False, mirrors=[server.url("missing")])
    u = server.url
    assert str(caught.value) == (
        f"CIFAR-10 is not in {root} and no source could give it: {u('missing')} (HTTP 404 Not "
        f"Found); {u('builtin')} (HTTP 404 Not Found); {u('builtin-mirror')} (HTTP 404 Not "
        f"Found); {part} keeps 0.1 MB for the next run to resume. Download "
        f"cifar-10-python.tar.gz from any of them yourself into {root}/ (it is checked and "
        "unpacked on the next run), or name another copy with --mirror URL, or run with "
        "--fake-data")
    monkeypatch.setattr(data, "fetch", ctrl_c)
    with pytest.raises(KeyboardInterrupt) as caught:
        data.cifar10(root, train=False)
    assert str(caught.value) == (f"interrupted: the CIFAR-10 download stopped; {part} keeps "
                                 "0.1 MB and the next run resumes it")


def test_the_space_asked_for_is_what_is_still_to_come(server, tmp_path, monkeypatch):
    """The archive less what a partial download holds, plus the unpacked copy; the copy alone
    when the archive is whole."""
    asked = []
    monkeypatch.setattr(disk, "need_space", lambda folder, needed, what, option: asked.append(
        (needed, what)))
    unpacked = "its unpacked copy, about 177.6 MB"
    data.cifar10(tmp_path / "a", train=False, mirrors=[server.url("good")])
    root = tmp_path / "b"
    root.mkdir()
    download.partial_path(root / CIFAR10.filename).write_bytes(server.blob[:1000])
    data.cifar10(root, train=False, mirrors=[server.url("good")])
    (root / CIFAR10.base_folder / "test_batch").unlink()
    data.cifar10(root, train=False)
    assert asked == [
        (data.CIFAR10_UNPACKED_BYTES + data.CIFAR10_ARCHIVE_BYTES,
         f"CIFAR-10 (its archive, 162.6 MB, and {unpacked})"),
        (data.CIFAR10_UNPACKED_BYTES + data.CIFAR10_ARCHIVE_BYTES - 1000,
         f"CIFAR-10 (its archive, 162.6 MB, and {unpacked})"),
        (data.CIFAR10_UNPACKED_BYTES, f"CIFAR-10 ({unpacked})")]


def test_a_tie_between_a_broken_archive_and_a_partial_one_keeps_the_partial(server, tmp_path):
    """Both 1000 bytes: the .part is the download in progress (a true prefix), the file under
    the final name is not known to be: the .part is resumed, in one request."""
    root = tmp_path / "data"
    root.mkdir()
    download.partial_path(root / CIFAR10.filename).write_bytes(server.blob[:1000])
    (root / CIFAR10.filename).write_bytes(b"x" * 1000)
    assert len(data.cifar10(root, train=False, mirrors=[server.url("good")])) == 20
    assert server.requests == [("good", "bytes=1000-")]


def test_what_a_killed_run_was_unpacking_is_removed_and_named_to_be(archive, tmp_path,
                                                                   monkeypatch):
    """A run killed while unpacking leaves its temporary folder; the next removes it. So the
    folder each run unpacks into is one the next run's clean-up finds."""
    root = tmp_path / "data"
    (root / ".unpacking-k1ll3d" / CIFAR10.base_folder).mkdir(parents=True)
    (root / ".unpacking-k1ll3d" / CIFAR10.base_folder / "data_batch_1").write_bytes(b"half")
    (root / ".unpacking-file").write_bytes(b"")     # what cannot be removed as a folder stays
    (root / CIFAR10.filename).write_bytes(archive)
    into, real_extract = [], data.extract_archive

    def extract(source, to):
        into.append(Path(to))
        assert sorted(p.name for p in root.iterdir()) == sorted([    # the killed one gone
            ".cifar-10-download.lock", ".unpacking-file", CIFAR10.filename, Path(to).name])
        return real_extract(source, to)
    monkeypatch.setattr(data, "extract_archive", extract)
    assert len(data.cifar10(root, train=True)) == 50
    (folder,) = into
    assert folder.parent == root and list(root.glob(".unpacking-*")) == [
        root / ".unpacking-file"] and folder.name.startswith(".unpacking-")
    assert left_in(root) == [".unpacking-file", "cifar-10-batches-py", "cifar-10-python.tar.gz"]


@pytest.mark.parametrize("how, why", [
    ("cut", "Compressed file ended before the end-of-stream marker was reached"),
    ("junk", "not a gzip file")])
def test_an_archive_with_the_right_md5_that_does_not_unpack_is_one_line(archive, tmp_path,
                                                                        monkeypatch, how, why):
    """Only if md5 says so (a disk that reads back something else, or a changed md5): a gzip
    that ends early, or none at all."""
    blob = archive[:len(archive) // 2] if how == "cut" else b"not gzip" * 100
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(blob).hexdigest())
    root = tmp_path / "data"
    root.mkdir()
    (root / CIFAR10.filename).write_bytes(blob)
    with pytest.raises(UserError) as caught:
        data.cifar10(root, train=True)
    assert str(caught.value) == f"cannot unpack {root / CIFAR10.filename}: {why}"
    assert left_in(root) == [CIFAR10.filename]


def test_the_layer_lessons_download_from_the_mirror_flag(server, tmp_path):
    args = argparse.Namespace(data_root=tmp_path / "data", fake_data=False,
                              mirror=[server.url("good")], num_workers=0)
    assert sum(len(t) for _, t in data.cifar10_test_loader(args)) == 20
    assert server.requests == [("good", None)]
