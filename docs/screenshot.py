"""Make docs/tensorboard.png: the README's picture of TensorBoard after the quick start.

    python docs/screenshot.py                 # about a minute: train, serve, photograph, stop
    python docs/screenshot.py --logdir logs   # photograph runs you already have instead

1. trains the quick start's run (``p23_train.py --fake-data``, seeded) into a temporary folder;
2. starts ``tensorboard --logdir <it> --host 127.0.0.1`` on a free port and waits until it
   lists the run;
3. opens TensorBoard's IMAGES tab, filtered to the two pictures of what the model learned
   (the confusion matrix and the prediction grid), in headless Chromium (the Debian package
   ``chromium``, or --chromium PATH), driven over the DevTools protocol on a pipe, and takes
   the picture once both images have loaded;
4. stops Chromium and the server, and writes the PNG (under 300 KB) atomically.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "docs" / "tensorboard.png"
QUICK_START = ["scripts/p23_train.py", "--fake-data", "--seed", "0"]
# What a learner should find: the IMAGES tab filtered to test_, i.e. the confusion matrix and
# the prediction grid (the curves are in the README's words).
TAGS = "test_"
WIDTH, HEIGHT = 1300, 800
# every <img> of the page, inside the web components' shadow roots too
DEEP_IMAGES = ("const deep = root => [...root.querySelectorAll('*')].flatMap(e => "
               "[...(e.tagName === 'IMG' ? [e] : []), ...(e.shadowRoot ? deep(e.shadowRoot) "
               ": [])]);")
MAX_BYTES = 300_000
WAIT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def start_tensorboard(logdir: Path, port: int) -> subprocess.Popen:
    exe = shutil.which("tensorboard", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                           os.environ.get("PATH", "")]))
    if exe is None:
        raise SystemExit("error: no tensorboard executable: pip install -r requirements.txt")
    # run beside the folder and name it as the README does (its panel shows "logs", not a path)
    server = subprocess.Popen([exe, "--logdir", logdir.name, "--host", "127.0.0.1",
                               "--port", str(port)], cwd=logdir.resolve().parent,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        if server.poll() is not None:
            raise SystemExit(f"error: tensorboard stopped: {server.stderr.read().strip()}")
        try:
            if any(run.startswith("p23_train/") for run in
                   get_json(f"http://127.0.0.1:{port}/data/runs")):
                return server
        except OSError:
            pass
        time.sleep(0.5)
    server.kill()
    raise SystemExit(f"error: tensorboard did not list a p23_train run in {WAIT_S} s")


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    it reads JSON commands on fd 3 and writes replies on fd 4, each ended by a NUL byte)."""

    def __init__(self, exe: str, profile: Path):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def fds():                 # in the child, before exec: the pipe ends on fds 3 and 4
            read, write = os.dup(to_chrome_r), os.dup(from_chrome_w)   # out of 3 and 4's way
            os.dup2(read, 3)       # inheritable, unlike os.pipe()'s own descriptors
            os.dup2(write, 4)

        flags = ["--headless", "--remote-debugging-pipe", "--hide-scrollbars",
                 "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
                 f"--window-size={WIDTH},{HEIGHT}"]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")       # Chromium's sandbox refuses to run as root
        self.proc = subprocess.Popen([exe, *flags, "about:blank"], preexec_fn=fds,
                                     close_fds=False, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer, self.next_id, self.session = b"", 0, None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]

    def call(self, method: str, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session is not None:
            message["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise SystemExit("error: chromium closed the DevTools pipe")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise SystemExit(f"error: chromium: {method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        return result.get("result", {}).get("value")

    def close(self) -> None:
        try:
            self.session = None
            self.call("Browser.close")        # its renderers too, and its profile written
            self.proc.wait(timeout=10)
        except (OSError, SystemExit, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)


def photograph(port: int, chromium: str) -> bytes:
    """The PNG of TensorBoard's IMAGES tab filtered to :data:`TAGS`, once its pictures have
    loaded."""
    url = f"http://127.0.0.1:{port}/#images&tagFilter={urllib.parse.quote(TAGS)}"
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = Chromium(chromium, Path(profile))
        try:
            browser.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                         deviceScaleFactor=1, mobile=False)
            browser.call("Page.navigate", url=url)
            # loaded: both pictures decoded (they sit in the dashboard's shadow DOMs)
            wait_for(browser, f"(() => {{ {DEEP_IMAGES} const imgs = deep(document); "
                     "return imgs.length >= 2 && imgs.every(i => i.complete && "
                     "i.naturalWidth > 0) })()")
            time.sleep(1)
            shot = browser.call("Page.captureScreenshot", format="png")
        finally:
            browser.close()
    return base64.b64decode(shot["data"])


def wait_for(browser: Chromium, condition: str) -> None:
    end = time.monotonic() + WAIT_S
    while time.monotonic() < end:
        if browser.evaluate(f"!!({condition})"):
            return
        time.sleep(0.5)
    raise SystemExit(f"error: TensorBoard's page did not get to: {condition}")


def small_png(png: bytes) -> bytes:
    """The PNG, as a palette image if it is over MAX_BYTES (TensorBoard's flat colours keep)."""
    if len(png) <= MAX_BYTES:
        return png
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256,
                                                                dither=Image.Dither.NONE)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    if out.tell() > MAX_BYTES:
        raise SystemExit(f"error: the screenshot is {out.tell()} bytes, over {MAX_BYTES}")
    return out.getvalue()


def need_a_run(logdir: Path) -> None:
    if not any((logdir / "p23_train").glob("*/events.out.tfevents.*")):
        raise SystemExit(f"error: no p23_train run under {logdir}: train one "
                         "(python scripts/p23_train.py --fake-data), or leave out --logdir")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", type=Path, default=None,
                        help="photograph this TensorBoard root instead of training the quick "
                             "start's run into a temporary one (default: train one)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium",
                        help="the Chromium executable (default: chromium on the PATH)")
    parser.add_argument("--output", type=Path, default=OUTPUT,
                        help=f"where the PNG goes (default: {OUTPUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    if args.logdir is not None:
        need_a_run(args.logdir)
    if shutil.which(args.chromium) is None:
        raise SystemExit(f"error: no Chromium at {args.chromium!r}: apt install chromium, "
                         "or pass --chromium PATH")
    with tempfile.TemporaryDirectory() as tmp:
        logdir = args.logdir
        if logdir is None:
            logdir = Path(tmp) / "logs"
            print("training the quick start's run:", " ".join(QUICK_START), flush=True)
            subprocess.run([sys.executable, *QUICK_START, "--logdir", str(logdir),
                            "--checkpoint-dir", str(Path(tmp) / "checkpoints")],
                           cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        need_a_run(logdir)
        port = free_port()
        server = start_tensorboard(logdir, port)
        try:
            png = small_png(photograph(port, args.chromium))
        finally:
            server.terminate()
            server.wait(timeout=30)
    partial = args.output.with_name(args.output.name + ".partial")
    partial.write_bytes(png)
    partial.replace(args.output)
    width, height = Image.open(io.BytesIO(png)).size
    print(f"wrote {args.output} ({width}x{height}, {len(png)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
