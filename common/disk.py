"""Writing to disk: output folders checked before the work, free space checked before a big
file, every file written whole or not at all (:func:`atomic_write`), and a failed write said
in one line.

A full disk, a file-size limit, a read-only or someone else's folder, a path that runs
through a file: each makes a write fail with an ``OSError`` deep inside ``torch.save``, a
TensorBoard writer thread or ``tarfile``. Here each becomes one :class:`WriteError` line,
``cannot write <path>: <cause in words>; <what to do>``, which ``cli.entrypoint`` prints as
``error: ...`` with a non-zero exit.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from common.cli import UserError, output_name

# The errors a write can end in, in words, and what to do about each.
FULL = {errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "the disk quota is used up",
        errno.EFBIG: "the file is larger than this system allows (a file-size limit, ulimit -f)"}
REFUSED = {errno.EACCES: "permission denied",
           errno.EPERM: "operation not permitted",
           errno.EROFS: "the file system is read-only",
           errno.ENOTDIR: "a part of the path is a file, not a folder",
           errno.EEXIST: "it is a file, not a folder",
           errno.EISDIR: "it is a folder"}


class WriteError(UserError):
    """A write that failed; ``path`` is what could not be written, ``errno`` the error's
    number (``errno.ENOSPC``...) where an ``OSError`` caused it."""

    def __init__(self, path: Path | None, cause: str, hint: str, what: str | None = None,
                 code: int | None = None):
        # what: the words for something written that is not a file path (the printed output)
        self.path, self.cause, self.hint, self.what = path and Path(path), cause, hint, what
        self.errno = code
        named = path or what
        super().__init__(f"cannot write{f' {named}' if named else ''}: {cause}; {hint}")

    def with_hint(self, more: str) -> "WriteError":
        """The same error, its line ending in ``more`` too (what was kept, how to go on)."""
        return WriteError(self.path, self.cause, f"{self.hint}. {more}", self.what, self.errno)


# Of those, the ones only a write ends in (a read can be refused permission too).
ONLY_WRITES = {*FULL, errno.EROFS}


def is_write_failure(e: BaseException) -> bool:
    """Whether ``e`` is an ``OSError`` that a write ends in (see :data:`FULL`, :data:`REFUSED`)."""
    return isinstance(e, OSError) and e.errno in {**FULL, **REFUSED}


def cause(e: OSError) -> str:
    """``e`` in words: ``"no space left on the device"``..."""
    return FULL.get(e.errno) or REFUSED.get(e.errno) or e.strerror or str(e) or type(e).__name__


def failed(path: Path | None, e: OSError, option: str | None = None) -> WriteError:
    """The :class:`WriteError` for ``e``, raised while writing ``path`` (or the file ``e`` names).

    ``option`` is how to put the file elsewhere (``"--checkpoint-dir DIR"``...), named in
    the hint.
    """
    with_flag = f" with {option}" if option else ""
    if e.errno == errno.EFBIG:
        hint = f"raise the limit (ulimit -f unlimited), or write elsewhere{with_flag}"
    elif e.errno in FULL:
        hint = f"free some space, or write elsewhere{with_flag}"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST):
        hint = "name a folder, not a file" + (f", with {option}" if option else "")
    elif e.errno == errno.EISDIR:      # a folder where the file goes: it is not ours to remove
        hint = "move that folder out of the way" + (f", or write elsewhere{with_flag}"
                                                    if option else "")
    else:
        hint = f"choose a folder you can write to{with_flag}"
    # a write that names no file at all is a print() to redirected output (a full disk)
    named = getattr(e, "filename", None) or path
    return WriteError(named, cause(e), hint, what=None if named else output_name(),
                      code=e.errno)


def make_dir(path: Path, option: str | None = None) -> Path:
    """``mkdir -p`` for a folder the user named; a failure is one :class:`WriteError` line."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise failed(path, e, option) from None
    return path


def need_writable(folder: Path, option: str | None = None) -> Path:
    """Check that ``folder`` can be made and written: make it (and its parents), write a small
    file in it, then remove the file and every folder this made, leaving the disk as it was.

    Called before the work that will write there, so that a mistyped ``--checkpoint-dir``
    (say, one that runs through a file) fails in a second, not after an epoch.
    """
    folder = Path(folder)
    made = [d for d in (folder, *folder.absolute().parents) if not d.exists()]
    try:
        make_dir(folder, option)
        test_file = None
        try:
            # mkstemp, write, close and unlink one by one: on a full disk the close fails too
            # (ENOSPC again), and a with-block would then leave the test file behind.
            fd, test_file = tempfile.mkstemp(dir=folder, prefix=".write-test-")
            try:
                os.write(fd, b"x")
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            e.filename = None                # the test file's name would say nothing
            raise failed(folder, e, option) from None
        finally:
            if test_file is not None:
                try:
                    os.unlink(test_file)
                except OSError:
                    pass
    finally:
        for d in made:                       # deepest first
            try:
                d.rmdir()
            except OSError:
                pass
    return folder


def need_writable_file(path: Path, option: str | None = None) -> Path:
    """:func:`need_writable` for the folder of the file ``path`` (``--metrics m.json``), which
    must not be a folder itself."""
    path, with_flag = Path(path), f" with {option}" if option else ""
    if path.is_dir():
        raise WriteError(path, REFUSED[errno.EISDIR], f"give a file's path, not a folder's{',' if option else ''}{with_flag}",
                         code=errno.EISDIR)
    try:
        need_writable(path.parent, option)
    except WriteError as e:
        if e.errno not in (errno.ENOTDIR, errno.EEXIST):
            raise
        raise WriteError(path, REFUSED[errno.ENOTDIR], f"give another path{with_flag}",
                         code=errno.ENOTDIR) from None
    return path


def nearest_existing(path: Path) -> Path:
    """``path``, or its nearest parent that exists (a file, where a folder should be, too)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def file_in_the_way(path: Path) -> Path | None:
    """The file that ``path`` or one of its parents is, where a folder should be; or None."""
    found = nearest_existing(path)
    return None if found.is_dir() else found


def free_bytes(folder: Path) -> int:
    """Free bytes on the file system of ``folder`` (or of its nearest existing parent)."""
    return shutil.disk_usage(nearest_existing(folder)).free


def need_space(folder: Path, needed: int, what: str, option: str | None = None) -> None:
    """Stop with one line, before writing anything, if ``folder``'s disk has under ``needed``
    bytes free for ``what``."""
    free = free_bytes(folder)
    if free < needed:
        elsewhere = f", or write elsewhere with {option}" if option else ""
        raise UserError(f"not enough space in {folder} for {what}: it needs {megabytes(needed)}, "
                        f"and {megabytes(free)} is free; free some space{elsewhere}")


def megabytes(n: int) -> str:
    """Bytes as MB of 2**20 bytes, as ``df -h``, ``ls -lh`` and the lessons' own sizes
    (VGG16's "528 MB") count them."""
    return f"{n / 2**20:,.1f} MB"


def peak_bytes(files: list[tuple[Path, int]]) -> int:
    """The most extra disk space writing ``(path, size)`` one after the other will take at any
    moment, each atomically: a new file's temporary copy sits beside the old file it replaces
    until it is renamed over it, and then the old one's space is free again."""
    peak = so_far = 0
    for path, size in files:
        try:
            old = os.stat(path).st_size
        except OSError:
            old = 0
        peak = max(peak, so_far + size)
        so_far += size - old
    return peak


def atomic_write(path: Path, write: Callable[[BinaryIO], None], *,
                 option: str | None = None) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it into place.

    A crash or Ctrl-C at any moment leaves either the old file or the complete new one
    under ``path``, never a half-written one. A write that fails (a full disk, a file-size
    limit, a folder that can't be written) is one :class:`WriteError` line
    naming ``path``, its hint naming ``option``, how to put the file elsewhere
    (``"--checkpoint-dir DIR"``).
    """
    path = Path(path)
    make_dir(path.parent, option)
    f = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.chmod(tmp, 0o666 & ~_umask())   # mkstemp makes it 0600; a saved file follows the umask
            with os.fdopen(fd, "wb") as raw:
                f = _Remembering(raw)
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except Exception as e:
        # torch.save calls f.write from C++, and a failed write comes out of it as a
        # RuntimeError ("unexpected pos ..."): the OSError it began as is remembered, and so
        # is a Ctrl-C (or kill) that landed in the write, which stays a KeyboardInterrupt.
        failure = e if isinstance(e, OSError) else getattr(f, "error", None)
        if isinstance(failure, KeyboardInterrupt):
            raise failure from None
        if failure is None or not is_write_failure(failure):
            raise
        failure.filename = None      # the temporary file's name would mislead: name path
        raise failed(path, failure, option) from None
    return path


class _Remembering:
    """A file that remembers the ``OSError`` (or Ctrl-C) its ``write`` raised, for whoever
    swallows it."""

    def __init__(self, f: BinaryIO):
        self._f, self.error = f, None

    def write(self, b) -> int:
        try:
            return self._f.write(b)
        except (OSError, KeyboardInterrupt) as e:
            self.error = e
            raise

    def __getattr__(self, name):
        return getattr(self._f, name)


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux 4.7+:
    ``Umask:`` in /proc/self/status). Elsewhere ``os.umask`` is the only way to read it, and
    it sets a new one: it is set back at once, but another thread creating a file in between
    would get the wrong mode, so that is the fallback, not the rule."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
