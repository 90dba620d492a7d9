"""Bad-input QA harness: 100+ broken, degenerate or hostile inputs run through the real CLI.

Every case builds its input in a temporary workspace, runs ``python -m lgenet ...`` in a
subprocess and records the exit status, whether a traceback appeared, the first error line and
whether an output was left half-written. A case is then classified:

* ``OK``            -- refused with exit status 2 and a message that names the real problem, or
                       accepted where the input is actually valid (results checked where possible);
* ``TRACEBACK``     -- a Python traceback on stdout/stderr (or a crash: exit status other than 0/2);
* ``SILENT``        -- exit status 0 on an input that should be refused or warned about;
* ``WRONG-REASON``  -- an error whose message does not describe the real problem (or a valid input
                       refused);
* ``HALF-WRITTEN``  -- an output (file, folder, temp file) left behind by a failed command, or an
                       intact run directory changed by a refused command;
* ``IDENTIFIER``    -- a DICOM identifier planted by ``lgenet synth`` appeared on an output channel.

A tiny valid baseline comes first (``lgenet synth`` 12 patients at 48 px, then a 2-fold ``tiny``
run at 32 px with one epoch and one thread); the bad inputs are mutations of it. Without
``--quick`` the script also kills ``lgenet run`` (and ``lgenet synth``) with SIGKILL at random
moments and checks that a rerun gives byte-identical ``oof_predictions.csv`` and ``metrics.csv``
(identical cohort files for synth) to the uninterrupted run. At the end every output channel
(stdout, stderr, run.log, every file written under the outputs) is scanned for the fake
identifiers in the synthetic DICOM headers.

    python bench/bad_inputs.py --out /tmp/badinputs            # all cases (~5 min on 2 cores)
    python bench/bad_inputs.py --out /tmp/badinputs --quick    # without the kill -9 part (~3 min)
    python bench/bad_inputs.py --out /tmp/badinputs --exec subprocess   # a fresh interpreter per case (~20 min)

By default every case runs in its own child process forked from a server that has imported lgenet
(and torch) once: the child runs exactly what ``python -m lgenet ARGS`` runs, with its own stdin,
stdout, stderr, working folder and session, and saves the ~4 s interpreter start-up per case. A
sample of refused cases (``--verify``) is rerun with ``python -m lgenet`` and must give the same exit
status, stdout and stderr; the baseline, the kill -9 part and ``--exec subprocess`` always use
``python -m lgenet``.

Outputs: ``OUT/results.json`` (every case with its full stdout/stderr), ``OUT/table.md``, and the
Markdown table in ``docs/bad-inputs.md`` (``--doc``; ``--no-doc`` to skip). Exit status 0 when every
case is OK, 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import pickle
import platform
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LGENET = [sys.executable, "-m", "lgenet"]
RUN_OPTS = [
    "--archs",
    "tiny",
    "--inits",
    "random",
    "--epochs",
    "1",
    "--image-size",
    "32",
    "--folds",
    "2",
    "--threads",
    "1",
    "-q",
    "--no-report",
]
OUTCOMES = ("OK", "TRACEBACK", "SILENT", "WRONG-REASON", "HALF-WRITTEN", "IDENTIFIER")


# ============================================================================ running the CLI
@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False


def cli_env() -> dict:
    e = dict(os.environ)
    e.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "200"})
    return e


def cli(args: list[str], *, cwd: Path | None = None, timeout: float = 180) -> Result:
    """``python -m lgenet ARGS`` in a fresh interpreter."""
    t0 = time.time()
    try:
        p = subprocess.run(
            LGENET + [str(a) for a in args],
            cwd=cwd,
            env=cli_env(),
            capture_output=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Result(
            p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"), time.time() - t0
        )
    except subprocess.TimeoutExpired as exc:
        return Result(
            -1,
            (exc.stdout or b"").decode("utf-8", "replace"),
            (exc.stderr or b"").decode("utf-8", "replace"),
            time.time() - t0,
            timed_out=True,
        )


#: The fork server: imports lgenet (and torch) once, then forks one child per command. The child is a
#: separate process that runs exactly what ``python -m lgenet ARGS`` runs (``sys.exit(lgenet.cli.main())``,
#: an uncaught exception printed as a traceback with exit status 1), with its own stdin (/dev/null),
#: stdout and stderr files, working folder and session; only the ~4 s interpreter + torch start-up is
#: shared. ``--exec subprocess`` runs every case in a fresh interpreter instead (~3x slower).
ZYGOTE = r"""
import importlib, json, os, signal, sys, traceback
for m in ("lgenet.cli", "lgenet.workflows.grid", "lgenet.workflows.predict", "lgenet.report", "lgenet.data.synth",
          "lgenet.data.importers", "lgenet.quantify", "lgenet.training.experiment", "lgenet.training.jobs",
          "lgenet.models", "lgenet.io", "timm", "sklearn.metrics", "matplotlib", "pydicom", "nibabel", "PIL.Image"):
    try:
        importlib.import_module(m)
    except Exception:
        pass
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
reply = os.fdopen(os.dup(1), "w")
print(json.dumps({"ready": True}), file=reply, flush=True)
for line in sys.stdin:
    req = json.loads(line)
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        rc = 1
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            os.chdir(req["cwd"])
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
            os.dup2(os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
            sys.stdin = open(os.devnull)
            sys.argv = ["lgenet"] + req["args"]
            from lgenet.cli import main
            try:
                rc = main(req["args"])
                rc = 0 if rc is None else rc
            except SystemExit as e:
                rc = 0 if e.code is None else e.code
                if not isinstance(rc, int):
                    print(rc, file=sys.stderr)
                    rc = 1
            except BaseException:
                traceback.print_exc()
                rc = 1
            try:
                import atexit
                atexit._run_exitfuncs()
            except BaseException:
                pass
            sys.stdout.flush(); sys.stderr.flush()
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
        with open(req["rc"] + ".part", "w") as fh:
            fh.write(str(rc))
        os.rename(req["rc"] + ".part", req["rc"])
        os._exit(rc & 0xFF)
    print(json.dumps({"pid": pid}), file=reply, flush=True)
"""


class Zygote:
    def __init__(self, iodir: Path):
        import threading

        self.iodir = iodir
        iodir.mkdir(parents=True, exist_ok=True)
        self.err = open(iodir / "zygote.stderr", "wb")
        self.p = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            env=cli_env(),
            text=True,
        )
        line = self.p.stdout.readline()
        if not line.strip().startswith('{"ready"'):
            sys.exit(f"the fork server did not start: {(iodir / 'zygote.stderr').read_text()[-2000:]}")
        self.lock = threading.Lock()
        self.n = 0

    def run(self, args: list[str], *, cwd: Path, timeout: float) -> Result:
        with self.lock:
            self.n += 1
            base = self.iodir / f"c{self.n:04d}"
        req = {
            "args": [str(a) for a in args],
            "cwd": str(cwd),
            "stdout": f"{base}.out",
            "stderr": f"{base}.err",
            "rc": f"{base}.rc",
        }
        t0 = time.time()
        with self.lock:
            self.p.stdin.write(json.dumps(req) + "\n")
            self.p.stdin.flush()
            pid = json.loads(self.p.stdout.readline())["pid"]
        rcf = Path(req["rc"])
        timed_out = False
        while not rcf.exists():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:  # gone without an exit status file: killed by a signal
                break
            if time.time() - t0 > timeout:
                timed_out = True
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                break
            time.sleep(0.02)
        for _ in range(100):  # the child writes its status file just before it exits
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.01)
        rc = int(rcf.read_text()) if rcf.exists() else -9
        read = lambda f: Path(f).read_bytes().decode("utf-8", "replace") if Path(f).exists() else ""  # noqa: E731
        return Result(rc, read(req["stdout"]), read(req["stderr"]), time.time() - t0, timed_out=timed_out)

    def close(self) -> None:
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.p.kill()
        self.err.close()


def must(res: Result, what: str) -> None:
    if res.rc != 0:
        sys.exit(f"baseline step failed ({what}), exit {res.rc}:\n{res.stdout}\n{res.stderr}")


# ============================================================================ cases
@dataclass
class Case:
    kind: str
    name: str
    args: list  # CLI arguments after `lgenet`
    expect: str = "error"  # error | ok | warn | clean
    keys: list = field(default_factory=list)  # alternatives; each a str or tuple of str that must all appear
    bad_keys: list = field(default_factory=list)  # phrases that show a wrong diagnosis or advice
    ok_rcs: tuple = (0, 2)  # exit statuses that are not crashes (weights inspect: 1 = not loadable)
    fresh: list = field(default_factory=list)  # paths that must not exist after a refused command
    unchanged: list = field(default_factory=list)  # folders/files whose content a refused command must not change
    temps: list = field(default_factory=list)  # folders that must hold no temp file afterwards
    check: Callable | None = None  # check(case, result) -> (outcome, note) | None, after the generic checks
    pre: Callable | None = None  # run in the worker just before the command; returns a cleanup callable or None
    cwd: Path | None = None
    timeout: float = 180
    note: str = ""  # what the right behaviour is (for the report)
    # filled in
    result: Result | None = None
    outcome: str = ""
    why: str = ""
    snapshot: dict = field(default_factory=dict)


def tree_digest(p: Path) -> dict:
    """{relative path: sha256} of every file under p (or of p itself); '.lock' is ignored."""
    p = Path(p)
    out = {}
    if p.is_file():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()}
    if not p.is_dir():
        return {}
    for f in sorted(p.rglob("*")):
        if f.is_file() and f.name != ".lock":
            out[str(f.relative_to(p))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def temp_files(p: Path) -> list[str]:
    p = Path(p)
    if not p.exists():
        return []
    return [str(f) for f in p.rglob("*") if f.is_file() and re.search(r"\.tmp|\.part$|~$", f.name)]


def first_error_line(res: Result) -> str:
    lines = [ln.strip() for ln in (res.stderr.splitlines() + res.stdout.splitlines()) if ln.strip()]
    for ln in lines:
        if "Traceback" in ln:
            return ln
    for ln in lines:
        if re.search(r"\berror\b", ln, re.I):
            return ln
    return lines[0] if lines else ""


def matches(text: str, keys: list) -> bool:
    if not keys:
        return True
    low = text.lower()
    for alt in keys:
        alt = (alt,) if isinstance(alt, str) else alt
        if all(k.lower() in low for k in alt):
            return True
    return False


def classify(c: Case) -> tuple[str, str]:
    r = c.result
    text = r.stdout + "\n" + r.stderr
    if "Traceback (most recent call last)" in text:
        return "TRACEBACK", "traceback on " + ("stderr" if "Traceback" in r.stderr else "stdout")
    if r.timed_out:
        return "TRACEBACK", f"no answer within {c.timeout:.0f} s (hang); killed"
    if r.rc not in c.ok_rcs:
        return "TRACEBACK", f"crashed: exit status {r.rc}"
    # nothing half-written
    if r.rc != 0:
        left = [str(p) for p in c.fresh if Path(p).exists()]
        if left:
            return "HALF-WRITTEN", "left behind after the error: " + ", ".join(left)
        for p in c.unchanged:
            if tree_digest(p) != c.snapshot.get(str(p)):
                before, after = c.snapshot.get(str(p), {}), tree_digest(p)
                changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                return "HALF-WRITTEN", f"{p} changed by a refused command: {', '.join(changed[:6])}"
    tmps = [t for d in c.temps for t in temp_files(d)]
    if tmps:
        return "HALF-WRITTEN", "temp files left: " + ", ".join(tmps[:4])
    if c.expect == "error":
        if r.rc == 0:
            return "SILENT", "exit 0 on an input that should be refused"
        msg = r.stderr or r.stdout
        if not matches(msg, c.keys):
            return "WRONG-REASON", "message does not name the real problem"
        wrong = [k for k in c.bad_keys if k.lower() in msg.lower()]
        if wrong:
            return "WRONG-REASON", f"wrong diagnosis or advice ({wrong[0]!r})"
    elif c.expect == "warn":
        if not matches(text, c.keys):
            return (
                ("SILENT", "accepted without a warning")
                if r.rc == 0
                else ("WRONG-REASON", "refused for another reason")
            )
    elif c.expect == "ok":
        if r.rc != 0:
            return "WRONG-REASON", "a valid input was refused"
    if c.check is not None:
        got = c.check(c, r)
        if got:
            return got
    return "OK", ""


# ============================================================================ input builders
def write_bytes(p: Path, data: bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def write_text(p: Path, text: str) -> Path:
    return write_bytes(p, text.encode("utf-8"))


def png(p: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    from PIL import Image

    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(p) if mode else Image.fromarray(arr).save(p)
    return p


def nifti(p: Path, arr: np.ndarray) -> Path:
    import nibabel as nib

    p.parent.mkdir(parents=True, exist_ok=True)
    nib.Nifti1Image(arr, np.eye(4)).to_filename(str(p))
    return p


def smooth_image(rng: np.random.Generator, shape=(48, 48)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    cy, cx = shape[0] / 2, shape[1] / 2
    r = np.hypot(yy - cy, xx - cx)
    img = 200 * np.exp(-((r - shape[0] / 5) ** 2) / 20) + 40 + rng.normal(0, 5, shape)
    return np.clip(img, 0, 255)


def lge_pair(rng: np.random.Generator, n_slices: int = 6, size: int = 48, lge: bool = True):
    """A NIfTI-style (x, y, z) image and label map: 0 background, 1 cavity, 2 myocardium, 3 enhanced."""
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    theta = np.arctan2(yy - size / 2, xx - size / 2)
    img = np.zeros((size, size, n_slices), np.float32)
    lab = np.zeros((size, size, n_slices), np.int16)
    for k in range(n_slices):
        cav = r < size / 6
        myo = (r >= size / 6) & (r < size / 4)
        enh = myo & (theta > 0) & (theta < 1.0) if lge else np.zeros_like(myo)
        sl = 30 + rng.normal(0, 3, (size, size))
        sl[cav] = 120 + rng.normal(0, 5, cav.sum())
        sl[myo] = 40 + rng.normal(0, 4, myo.sum())
        sl[enh] = 200 + rng.normal(0, 8, enh.sum())
        img[:, :, k] = sl
        lab[:, :, k][cav] = 1
        lab[:, :, k][myo] = 2
        lab[:, :, k][enh] = 3
    return img, lab


def dicom_copy_series(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def dcm_files(folder: Path) -> list[Path]:
    return sorted(f for f in Path(folder).iterdir() if f.suffix.lower() == ".dcm")


def edit_dicom(path: Path, fn: Callable, out: Path | None = None) -> Path:
    import warnings

    import pydicom

    with warnings.catch_warnings():  # pydicom warns about the non-conforming values some cases plant
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(str(path))
        fn(ds)
        out = out or path
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(str(out), enforce_file_format=True)
    return out


def png_bomb(p: Path, w: int = 40000, h: int = 40000) -> Path:
    """A PNG whose header claims w x h pixels (Pillow's decompression-bomb limit) with a tiny IDAT."""

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    return write_bytes(p, data)


class EvilPickle:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ============================================================================ the harness
class Harness:
    def __init__(self, out: Path, work: Path, quick: bool, jobs: int, seed: int, exec_mode: str = "fork"):
        self.out, self.work, self.quick, self.jobs = out, work, quick, jobs
        self.exec_mode = exec_mode
        self.zygote: Zygote | None = None
        self.fidelity: list[dict] = []
        self.rng = random.Random(seed)
        self.nrng = np.random.default_rng(seed)
        self.inp = work / "in"  # inputs (may hold identifiers: DICOM headers)
        self.outs = work / "out"  # everything the CLI writes (scanned for identifiers)
        self.inp.mkdir(parents=True, exist_ok=True)
        self.outs.mkdir(parents=True, exist_ok=True)
        self.cases: list[Case] = []
        self.extra_channels: list[tuple[str, str]] = []  # (label, text) of baseline/kill commands
        self.immutable: list[Path] = []
        self.kill_log: list[dict] = []

    # ------------------------------------------------------------------ helpers
    def add(self, *a, **kw) -> Case:
        c = Case(*a, **kw)
        self.cases.append(c)
        return c

    def o(self, name: str) -> Path:
        """A fresh output path for one case (does not exist yet)."""
        return self.outs / name

    def i(self, name: str) -> Path:
        return self.inp / name

    def copy_run(self, name: str) -> Path:
        dst = self.outs / name
        shutil.copytree(self.run, dst)
        return dst

    def make_immutable(self, p: Path) -> bool:
        p.mkdir(parents=True, exist_ok=True)
        ok = subprocess.run(["chattr", "+i", str(p)], capture_output=True).returncode == 0
        if ok:
            self.immutable.append(p)
        return ok

    def release_immutable(self) -> None:
        for p in self.immutable:
            subprocess.run(["chattr", "-R", "-i", str(p)], capture_output=True)

    def manifest_rows(self) -> tuple[list[str], list[list[str]]]:
        with open(self.manifest, newline="") as fh:
            rows = list(csv.reader(fh))
        header, body = rows[0], rows[1:]
        ii, mi = header.index("image"), header.index("mask")
        for r in body:
            r[ii] = str((self.cohort / r[ii]).resolve())
            r[mi] = str((self.cohort / r[mi]).resolve())
        return header, body

    def write_manifest(
        self, name: str, header=None, body=None, *, raw: bytes | None = None, mutate: Callable | None = None
    ) -> Path:
        p = self.i(name) / "manifest.csv"
        if raw is not None:
            return write_bytes(p, raw)
        h0, b0 = self.manifest_rows()
        header = list(header or h0)
        body = [list(r) for r in (body if body is not None else b0)]
        if mutate:
            header, body = mutate(header, body)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(body)
        return write_text(p, buf.getvalue())

    def col(self, header, name):
        return header.index(name)

    # ------------------------------------------------------------------ baseline
    def baseline(self) -> None:
        t0 = time.time()
        self.cohort = self.i("cohort")
        r = cli(["synth", "--out", self.cohort, "--n-patients", "12", "--image-size", "48", "-q"])
        must(r, "lgenet synth")
        self.extra_channels.append(("baseline synth", r.stdout + r.stderr))
        self.manifest = self.cohort / "manifest.csv"
        # an absolute-path copy of the manifest (the run config records it)
        self.abs_manifest = self.write_manifest("abs")
        self.run = self.outs / "baseline_run"
        r = cli(["run", "--manifest", self.abs_manifest, "--out", self.run] + RUN_OPTS)
        must(r, "lgenet run (baseline)")
        self.extra_channels.append(("baseline run", r.stdout + r.stderr))
        self.run_seconds = r.seconds
        self.ref_oof = (self.run / "oof_predictions.csv").read_bytes()
        self.ref_metrics = (self.run / "metrics.csv").read_bytes()
        self.identifiers = self.collect_identifiers()
        print(
            f"baseline: cohort + run in {time.time() - t0:.0f} s (run {self.run_seconds:.1f} s); "
            f"{len(self.identifiers)} identifier strings to look for",
            flush=True,
        )

    def collect_identifiers(self) -> list[str]:
        import pydicom

        keys = (
            "PatientName",
            "PatientID",
            "PatientBirthDate",
            "InstitutionName",
            "InstitutionAddress",
            "AccessionNumber",
            "ReferringPhysicianName",
            "OperatorsName",
            "StationName",
            "DeviceSerialNumber",
            "StudyID",
            "StudyDate",
            "SeriesDate",
            "AcquisitionDate",
            "ContentDate",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "SOPInstanceUID",
            "FrameOfReferenceUID",
        )
        found: set[str] = set()
        for f in sorted(self.cohort.rglob("*.dcm")):
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
            for k in keys:
                v = str(ds.get(k, "") or "").strip()
                if len(v) >= 6:
                    found.add(v)
                    if "^" in v:  # names: also their components as a reader might print them
                        found.update(part for part in v.split("^") if len(part) >= 8 and part != "SYNTHETIC")
                        found.add(v.replace("^", " "))
        found.update({"MRN-SYN-BADDATE", "SYNTHETIC^LEAKY^NAME"})
        return sorted(found)

    # ------------------------------------------------------------------ case definitions
    def define(self) -> None:
        self.cases_general()
        self.cases_outputs()
        self.cases_manifest()
        self.cases_images()
        self.cases_geometry()
        self.cases_options()
        self.cases_errors()
        self.cases_predict_report()
        self.cases_weights()
        self.cases_import_quantify()
        self.cases_import_dicom()
        self.cases_bundles_view_measure()
        self.cases_classifier_bundles()
        self.cases_rundir()
        self.cases_segment()

    # ---- every subcommand, synth and unwritable outputs
    def cases_general(self) -> None:
        K = "general"
        self.add(K, "backbones (valid)", ["backbones"], expect="ok")
        self.add(K, "demo --help", ["demo", "--help"], expect="ok")
        self.add(K, "no subcommand", [], keys=["command"])
        self.add(K, "unknown subcommand", ["frobnicate"], keys=["frobnicate"])
        afile = write_text(self.i("afile.txt"), "not a folder\n")
        self.add(K, "synth --out is a file", ["synth", "--out", afile, "-q"], keys=[("afile.txt",)], unchanged=[afile])
        self.add(K, "synth --out under a file", ["synth", "--out", afile / "sub", "-q"], keys=[("afile.txt",)])
        nonempty = self.i("nonempty")
        write_text(nonempty / "keep.txt", "user data\n")
        self.add(
            K,
            "synth --out non-empty folder",
            ["synth", "--out", nonempty, "-q"],
            keys=[("empty",)],
            unchanged=[nonempty],
        )
        self.add(
            K,
            "synth --n-patients 0",
            ["synth", "--out", self.o("synth_n0"), "--n-patients", "0", "-q"],
            keys=[("n_patients",), ("n-patients",)],
            fresh=[self.o("synth_n0")],
        )
        self.add(
            K,
            "synth --image-size 3",
            ["synth", "--out", self.o("synth_s3"), "--image-size", "3", "-q"],
            keys=[("image_size",), ("image-size",)],
            fresh=[self.o("synth_s3")],
        )
        self.add(
            K,
            "synth --seed -1",
            ["synth", "--out", self.o("synth_seed"), "--seed", "-1", "-q"],
            keys=[("seed",)],
            fresh=[self.o("synth_seed")],
        )
        self.add(
            K,
            "synth --n-patients abc",
            ["synth", "--out", self.o("synth_abc"), "--n-patients", "abc"],
            keys=[("n-patients", "abc")],
            fresh=[self.o("synth_abc")],
        )
        # unwritable folders (chattr +i: root ignores permission bits)
        ro = self.i("readonly")
        if self.make_immutable(ro):
            ro_run = self.copy_run("run_immutable")
            if self.make_immutable(ro_run):
                self.add(
                    K,
                    "report into an unwritable run dir",
                    ["report", ro_run, "--no-cams"],
                    keys=[(str(ro_run.name),)],
                    unchanged=[ro_run],
                    temps=[ro_run],
                    note="clear error naming the run directory; nothing changed",
                )
            self.add(
                K,
                "synth --out unwritable",
                ["synth", "--out", ro / "coh", "-q"],
                keys=[("readonly", "permi"), ("readonly", "writ"), ("readonly", "not permitted")],
            )
            self.add(
                K,
                "run --out unwritable",
                ["run", "--manifest", self.abs_manifest, "--out", ro / "run"] + RUN_OPTS,
                keys=[("readonly", "permi"), ("readonly", "writ"), ("readonly", "not permitted")],
            )
            self.add(
                K,
                "predict -o unwritable",
                ["predict", "--run", self.run, "--task", "lge", self.cohort / "dicom" / "SYN001", "-o", ro / "p.csv"],
                keys=[("readonly", "permi"), ("readonly", "writ"), ("readonly", "not permitted")],
            )
            self.add(
                K,
                "predict --cam unwritable",
                ["predict", "--run", self.run, "--task", "lge", self.cohort / "dicom" / "SYN001", "--cam", ro / "cams"],
                keys=[("readonly", "permi"), ("readonly", "writ"), ("readonly", "not permitted")],
            )
        else:
            print("chattr +i unavailable: unwritable-folder cases skipped", flush=True)

    # ---- outputs (issue 26: 1, 3, 4, 7): never over an input, one file per patient, no stale outputs, checks first
    def seg_baseline(self) -> Path:
        """A finished 1-epoch segmentation run on the baseline cohort, in the grid's lge folds (made once)."""
        seg = getattr(self, "_seg_run", None)
        if seg is None:
            seg = self._seg_run = self.outs / "baseline_seg"
            r = cli(
                ["segment", "train", "--manifest", self.abs_manifest, "--out", seg, "--stratify", "lge"]
                + ["--labels", "cavity=1,myo=2+3,lge=3,other=0+4", "--epochs", "1", "--loc-epochs", "1"]
                + ["--folds", "2", "--threads", "1", "-q"],
                timeout=600,
            )
            must(r, "lgenet segment train (outputs baseline)")
            self.extra_channels.append(("baseline segment train", r.stdout + r.stderr))
        return seg

    def cases_outputs(self) -> None:
        K = "outputs"
        seg = self.seg_baseline()
        apply = ["segment", "apply", "--run", seg, "-q", "--no-overlays"]
        # 1. inputs overwritten
        self.add(
            K,
            "segment apply --out = the cohort folder",
            apply + ["--manifest", self.manifest, "--out", self.cohort],
            keys=[("holds an input",)],
            unchanged=[self.cohort],
            note="refused before writing: the cohort's manifest.csv and expert masks stay as they are",
        )
        self.add(
            K,
            "segment apply --out = the segmentation run",
            apply + ["--manifest", self.abs_manifest, "--out", seg],
            keys=[("is an input",)],
            unchanged=[seg],
            note="refused: the run's out-of-fold masks are never replaced by in-fold ones",
        )
        self.add(
            K,
            "segment apply --out inside the segmentation run",
            apply + ["--manifest", self.abs_manifest, "--out", seg / "apply"],
            keys=[("inside the input folder",)],
            unchanged=[seg],
        )
        self.add(
            K,
            "segment train --out = the cohort folder",
            ["segment", "train", "--manifest", self.manifest, "--out", self.cohort, "--epochs", "1", "-q"],
            keys=[("holds an input",)],
            unchanged=[self.cohort],
            timeout=240,
            note="refused before writing: expert masks are never overwritten by predicted ones",
        )
        series = self.cohort / "dicom" / "SYN001"
        one = sorted(series.iterdir())[0]
        self.add(
            K,
            "segment apply -o = a file of the input series",
            apply + [series, "-o", one],
            keys=[("inside the input folder",), ("is an input",)],
            unchanged=[series],
        )
        ds = self.i("outputs_nifti")
        for k in (1, 2):
            img, lab = lge_pair(self.nrng, lge=k == 2)
            nifti(ds / "img" / f"Case{k:02d}.nii.gz", img)
            nifti(ds / "lab" / f"Case{k:02d}.nii.gz", lab)
        for what, target in (("mask", ds / "lab" / "Case02.nii.gz"), ("image", ds / "img" / "Case01.nii.gz")):
            self.add(
                K,
                f"import nifti-masks --out = an input {what}",
                ["import", "nifti-masks", "--images", ds / "img", "--masks", ds / "lab", "--out", target],
                keys=[("is an input",)],
                unchanged=[ds],
            )
        # 3. two patients, one output file
        for name, a, b in (
            ("accents", "SYN0\u00e91", "SYN0\u00e81"),
            ("space", "SYN 01", "SYN_01"),
            ("case", "Pat1", "pat1"),
        ):

            def rename(H, B, a=a, b=b):
                B[0][H.index("patient_id")], B[1][H.index("patient_id")] = a, b
                return H, B

            m = self.write_manifest(f"outputs_ids_{name}", mutate=rename)
            out = self.o(f"outputs_ids_{name}")
            self.add(
                K,
                f"segment apply: IDs {a!r}/{b!r} share a file name",
                apply + ["--manifest", m, "--out", out],
                keys=[(a, b, "file name")],
                fresh=[out],
            )
            out = self.o(f"outputs_ids_train_{name}")
            self.add(
                K,
                f"segment train: IDs {a!r}/{b!r} share a file name",
                ["segment", "train", "--manifest", m, "--out", out, "--epochs", "1", "-q"],
                keys=[(a, b, "file name")],
                fresh=[out],
                timeout=240,
            )
        two = [self.cohort / "dicom" / "SYN001", self.cohort / "dicom" / "SYN002"]
        for ids, key in (("a,a", ("twice",)), ("a/b,a_b", ("a/b", "a_b")), ("a,", ("empty",)), ("a", ("--ids",))):
            out = self.o(f"outputs_idsopt_{len(self.cases)}.csv")
            self.add(
                K,
                f"segment apply --ids {ids!r} for 2 inputs",
                apply + two + ["--ids", ids, "-o", out],
                keys=[key],
                fresh=[out, Path(str(out.with_suffix("")) + "_seg")],
            )
        # 4. stale outputs mixed with new ones: an earlier apply with other inputs in the folder
        earlier = self.o("outputs_earlier")
        must(cli(apply + ["--manifest", self.abs_manifest, "--out", earlier]), "lgenet segment apply (earlier job)")
        three = self.write_manifest("outputs_three", mutate=lambda H, B: (H, B[:3]))
        self.add(
            K,
            "segment apply into an earlier job's folder (other inputs)",
            apply + ["--manifest", three, "--out", earlier],
            keys=[("another", "apply.json")],
            unchanged=[earlier],
        )
        self.add(
            K,
            "segment apply into an earlier job's folder (other --pixel-spacing)",
            apply + ["--manifest", self.abs_manifest, "--out", earlier, "--pixel-spacing", "1.0"],
            keys=[("another", "settings")],
            unchanged=[earlier],
        )
        self.add(
            K,
            "segment apply: the same job again (resumed)",
            apply + ["--manifest", self.abs_manifest, "--out", earlier],
            expect="ok",
            temps=[earlier],
        )
        foreign = self.i("outputs_foreign")
        write_bytes(foreign / "masks" / "SYN001.nii.gz", b"stale")
        self.add(
            K,
            "segment apply into a folder of other files",
            apply + ["--manifest", three, "--out", foreign],
            keys=[("apply.json",)],
            unchanged=[foreign],
        )
        # 7. validate first, then write
        for row in (5, 9):
            junk = write_bytes(self.i(f"outputs_junk{row}/image.nii.gz"), b"not a nifti at all")

            def bad_row(H, B, row=row, junk=junk):
                B[row - 1][H.index("image")] = str(junk)
                return H, B

            m = self.write_manifest(f"outputs_badrow{row}", mutate=bad_row)
            out = self.o(f"outputs_badrow{row}")
            self.add(
                K,
                f"segment apply --manifest with a bad row {row}",
                apply + ["--manifest", m, "--out", out],
                keys=[(f"row {row}", "nothing was written")],
                fresh=[out],
                note="no mask or overlay of the earlier rows is written",
            )
        out = self.o("outputs_ray_address")
        self.add(
            K,
            "run --executor ray with an unreachable --ray-address",
            ["run", "--manifest", self.abs_manifest, "--out", out, "--executor", "ray", "--ray-address", "127.0.0.1:9"]
            + RUN_OPTS,
            keys=[("ray",)],
            fresh=[out],
            timeout=120,
            note="no config, inputs or log left behind",
        )
        out = self.o("outputs_seg_ray")
        self.add(
            K,
            "segment train --executor ray with an unreachable --ray-address",
            ["segment", "train", "--manifest", self.abs_manifest, "--out", out, "--executor", "ray"]
            + ["--ray-address", "127.0.0.1:9", "--epochs", "1", "-q"],
            keys=[("ray",)],
            fresh=[out],
            timeout=240,
        )
        broken_seg = self.outs / "outputs_seg_nofold"
        shutil.copytree(seg, broken_seg)
        (broken_seg / "fits" / "seg" / "fold1" / "model.pt").unlink()
        out = self.o("outputs_roi")
        self.add(
            K,
            "run --families roi with a missing segmentation fold model",
            ["run", "--manifest", self.abs_manifest, "--out", out, "--families", "roi"]
            + ["--segmentation-run", broken_seg, "--tasks", "lge"]
            + RUN_OPTS,
            keys=[("fold1", "model.pt")],
            fresh=[out],
            timeout=240,
            note="refused before any fold is fitted",
        )
        for name, f in (("outcomes.json", Path("outcomes") / "outcomes.json"), ("oof_predictions.csv", None)):
            rd = self.copy_run(f"outputs_report_{name.split('.')[0]}")
            p = rd / (f or "oof_predictions.csv")
            text = p.read_text() if p.is_file() else '{"tasks": {"lge": {"models": ['
            write_text(p, text[: len(text) * 2 // 3])
            self.add(
                K,
                f"report on a truncated {name}",
                ["report", rd, "--no-cams"],
                keys=[(name,)],
                bad_keys=["JSONDecodeError", "y_true is empty"],
                unchanged=[rd],
                note="refused naming the file before any figure is rewritten",
            )

    # ---- manifests
    def cases_manifest(self) -> None:
        K = "manifest"
        h, b = self.manifest_rows()

        def run(name, man, keys, expect="error", check=None, note="", extra=()):
            out = self.o("m_" + re.sub(r"\W+", "_", name))
            return self.add(
                K,
                name,
                ["run", "--manifest", man, "--out", out] + RUN_OPTS + list(extra),
                expect=expect,
                keys=keys,
                fresh=[out] if expect == "error" else [],
                check=check,
                note=note,
                temps=[out],
            )

        def same_as_baseline(case, res):
            out = Path(case.args[case.args.index("--out") + 1])
            if (out / "oof_predictions.csv").read_bytes() != self.ref_oof:
                return "WRONG-REASON", "accepted, but out-of-fold predictions differ from the baseline's"
            return None

        run("empty file", write_bytes(self.i("m_empty/manifest.csv"), b""), [("empty",)])
        run("header only", write_text(self.i("m_header/manifest.csv"), ",".join(h) + "\n"), [("no data rows",)])
        run(
            "missing column image",
            self.write_manifest("m_noimage", mutate=lambda H, B: (H[:1] + H[2:], [r[:1] + r[2:] for r in B])),
            [("missing", "image")],
        )
        run(
            "missing column patient_id",
            self.write_manifest("m_nopid", mutate=lambda H, B: (H[1:], [r[1:] for r in B])),
            [("missing", "patient_id")],
        )
        run(
            "renamed column Patient ID",
            self.write_manifest("m_renamed", mutate=lambda H, B: (["Patient ID"] + H[1:], B)),
            [("patient_id", "Patient ID")],
        )
        run(
            "duplicate columns",
            self.write_manifest("m_dupcol", mutate=lambda H, B: (H + ["lge_percent"], [r + ["1.0"] for r in B])),
            [("duplicate", "lge_percent")],
        )
        raw = self.abs_manifest.read_bytes()
        run(
            "UTF-8 BOM (valid)",
            write_bytes(self.i("m_bom/manifest.csv"), b"\xef\xbb\xbf" + raw),
            [],
            expect="ok",
            check=same_as_baseline,
        )
        run(
            "CRLF line ends + BOM (Excel export, valid)",
            write_bytes(self.i("m_crlf/manifest.csv"), b"\xef\xbb\xbf" + raw.replace(b"\n", b"\r\n")),
            [],
            expect="ok",
            check=same_as_baseline,
        )
        run(
            "semicolon delimiter", write_bytes(self.i("m_semi/manifest.csv"), raw.replace(b",", b";")), [("semicolon",)]
        )
        run("tab delimiter", write_bytes(self.i("m_tab/manifest.csv"), raw.replace(b",", b"\t")), [("tab",)])
        L, E, F = h.index("lge_percent"), h.index("event"), h.index("followup_years")

        def cell(name, col, value, keys, row=2, **kw):
            def m(H, B):
                B[row][col] = value
                return H, B

            return run(name, self.write_manifest("m_" + re.sub(r"\W+", "_", name), mutate=m), keys, **kw)

        cell("lge_percent abc", L, "abc", [("row 3", "lge_percent", "abc")])
        cell("lge_percent NaN", L, "NaN", [("row 3", "lge_percent", "nan")])
        cell("lge_percent inf", L, "inf", [("row 3", "lge_percent", "inf")])
        cell("lge_percent negative", L, "-3", [("row 3", "lge_percent", "-3")])
        cell("lge_percent > 100", L, "140", [("row 3", "lge_percent", "140")])
        cell("lge_percent as fraction 0.12 with % sign twice", L, "12%%", [("row 3", "lge_percent")])
        cell("event 2", E, "2", [("row 3", "event", "2")])
        cell("event yes", E, "yes", [("row 3", "event", "yes")])
        cell("followup negative", F, "-1", [("row 3", "followup_years", "-1")])
        cell("slice abc", h.index("slice"), "abc", [("row 3", "slice", "abc")])
        cell("slice 99 (out of range)", h.index("slice"), "99", [("row 3", "99", "range")])
        cell("patient_id with slash", 0, "SYN/003", [("row 3", "patient_id", "SYN/003")])
        cell("patient_id blank", 0, "", [("row 3", "patient_id", "blank")])
        cell("patient_id '..'", 0, "..", [("row 3", "patient_id")])
        cell("image path missing", h.index("image"), str(self.cohort / "dicom" / "NOPE"), [("row 3", "NOPE")])
        cell(
            "mask path missing",
            h.index("mask"),
            str(self.cohort / "masks" / "NOPE.nii.gz"),
            [("row 3", "mask", "NOPE")],
        )
        emptydir = self.i("emptydir")
        emptydir.mkdir(parents=True, exist_ok=True)
        cell("image = folder without DICOM", h.index("image"), str(emptydir), [("row 3", "no DICOM")])
        cell(
            "image = nested folder (parent of series)",
            h.index("image"),
            str(self.cohort / "dicom"),
            [("row 3", "subfolder")],
        )
        # relative path escaping the manifest's folder
        man = self.write_manifest(
            "m_escape_passwd",
            mutate=lambda H, B: (
                H,
                [r[:1] + ["../" * 12 + "etc/passwd"] + r[2:] if i == 2 else r for i, r in enumerate(B)],
            ),
        )
        run("relative path escaping to /etc/passwd", man, [("row 3", "passwd", "not a supported")])
        sub = self.i("m_escape_ok/sub")
        sub.mkdir(parents=True, exist_ok=True)
        rel = os.path.relpath(self.cohort, sub)
        body = []
        for r in b:
            r = list(r)
            r[1] = os.path.join(rel, os.path.relpath(r[1], self.cohort))
            r[h.index("mask")] = os.path.join(rel, os.path.relpath(r[h.index("mask")], self.cohort))
            body.append(r)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([h] + body)
        run(
            "relative ../ paths to a valid cohort (valid)",
            write_text(sub / "manifest.csv", buf.getvalue()),
            [],
            expect="ok",
            check=same_as_baseline,
        )

        def dup_disagree(H, B):
            r = list(B[2])
            r[H.index("slice")] = "0"
            r[L] = "55.0"
            return H, B + [r]

        run(
            "duplicate patient, disagreeing labels",
            self.write_manifest("m_dupdis", mutate=dup_disagree),
            [("SYN003", "lge_percent", "disagree")],
        )
        run(
            "duplicate row",
            self.write_manifest("m_duprow", mutate=lambda H, B: (H, B + [list(B[4])])),
            [("duplicate",)],
        )

        def shared(H, B):
            B[3][1] = B[2][1]
            return H, B

        run(
            "two patients share one image",
            self.write_manifest("m_shared", mutate=shared),
            [("same image",), ("same file",)],
        )
        link = self.i("m_symlink/SYN004_link")
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(b[2][1], link)

        def via_link(H, B):
            B[3][1] = str(link)
            return H, B

        run(
            "two patients share one series via a symlink",
            self.write_manifest("m_symlink", mutate=via_link),
            [("same file",), ("same",)],
        )
        dup = dicom_copy_series(Path(b[2][1]), self.i("m_samepixels/copy_of_SYN003"))

        def same_pixels(H, B):
            B[3][1] = str(dup)
            return H, B

        run(
            "two patients with identical pixels (copied series)",
            self.write_manifest("m_samepixels", mutate=same_pixels),
            [("identical",)],
        )

        def long_id(H, B):
            B[0][0] = "P" * 300
            return H, B

        out = self.o("m_long_id_report")
        self.add(
            K,
            "patient_id of 300 characters (run with report)",
            ["run", "--manifest", self.write_manifest("m_longid", mutate=long_id), "--out", out]
            + [a for a in RUN_OPTS if a != "--no-report"],
            expect="clean",
            temps=[out],
            timeout=300,
            note="refuse the ID up front, or write the report; never a traceback",
        )
        run(
            "non-UTF-8 bytes (latin-1 é)",
            write_bytes(self.i("m_latin1/manifest.csv"), raw.replace(b"SYN005,", b"SYN005\xe9,", 1)),
            [("UTF-8",)],
        )
        run(
            "binary garbage",
            write_bytes(self.i("m_garbage/manifest.csv"), bytes(self.nrng.integers(0, 256, 3000, dtype=np.uint8))),
            [("not a CSV",), ("binary",), ("UTF-8",)],
        )
        run(
            "xlsx renamed .csv",
            write_bytes(self.i("m_xlsx/manifest.csv"), b"PK\x03\x04" + b"\x00" * 200),
            [("spreadsheet",), ("binary",)],
        )
        run("manifest is a folder", self.i("emptydir"), [("folder",)])
        run("manifest does not exist", self.i("nope/manifest.csv"), [("not found",), ("does not exist",)])
        run(
            "unclosed quote",
            write_bytes(self.i("m_quote/manifest.csv"), raw.replace(b"SYN004,", b'"SYN004,', 1)),
            [("quote",), ("line",), ("cells",)],
        )
        run(
            "extra unquoted comma",
            write_bytes(self.i("m_comma/manifest.csv"), raw.replace(b"SYN006,", b"SYN006,extra,", 1)),
            [("cells",), ("quote",)],
        )

        def all_neg(H, B):
            for r in B:
                r[L] = "0"
            return H, B

        run(
            "task lge without positives",
            self.write_manifest("m_allneg", mutate=all_neg),
            [("positive",)],
            extra=["--tasks", "lge"],
        )
        run(
            "labels blank for the requested task",
            self.write_manifest("m_nolab", mutate=lambda H, B: (H, [r[:L] + [""] + r[L + 1 :] for r in B])),
            [("lge_percent",), ("label",)],
            extra=["--tasks", "lge"],
        )
        run(
            "one patient only",
            self.write_manifest("m_one", mutate=lambda H, B: (H, B[:1])),
            [("patient",), ("positive",), ("negative",)],
        )
        run(
            "--folds 4 with 2 positives",
            self.abs_manifest,
            [("positive", "fold"), ("fold", "2")],
            extra=["--folds", "4"],
        )

    # ---- images
    def cases_images(self) -> None:
        K = "image"
        rng = self.nrng
        d = self.i("img")
        tmpl = dcm_files(self.cohort / "dicom" / "SYN001")[0]
        good_png = png(d / "good.png", smooth_image(rng).astype(np.uint8))
        files = {
            "0-byte PNG": (write_bytes(d / "zero.png", b""), [("zero.png",)]),
            "0-byte DICOM": (write_bytes(d / "zero.dcm", b""), [("zero.dcm",)]),
            "0-byte NIfTI": (write_bytes(d / "zero.nii.gz", b""), [("zero.nii.gz",)]),
            "truncated PNG": (write_bytes(d / "trunc.png", good_png.read_bytes()[:300]), [("trunc.png",)]),
            "truncated DICOM (pixel data cut)": (
                write_bytes(d / "trunc.dcm", tmpl.read_bytes()[:-2000]),
                [("trunc.dcm",)],
            ),
            "PNG bytes named .dcm": (write_bytes(d / "png_as.dcm", good_png.read_bytes()), [("png_as.dcm",)]),
            "DICOM bytes named .png": (write_bytes(d / "dcm_as.png", tmpl.read_bytes()), [("dcm_as.png",)]),
            "text file named .dcm": (write_text(d / "notes.dcm", "patient notes\n" * 20), [("notes.dcm",)]),
            "unsupported suffix .jpg": (
                write_bytes(d / "photo.jpg", good_png.read_bytes()),
                [("photo.jpg", "unsupported")],
            ),
            "1x1 PNG": (png(d / "one.png", np.array([[7]], np.uint8)), [("one.png", "1 x 1")]),
            "constant PNG": (png(d / "const.png", np.full((64, 64), 90, np.uint8)), [("const.png", "same value")]),
            "PNG decompression bomb header": (png_bomb(d / "bomb.png"), [("bomb.png", "large")]),
            "float TIFF with NaN": (None, [("nan.tif", "nan")]),
            "16-bit multipage TIFF": (None, [("multi.tif", "pages")]),
            "all-NaN NIfTI": (
                nifti(d / "nan.nii.gz", np.full((48, 48, 4), np.nan, np.float32)),
                [("nan.nii.gz", "nan")],
            ),
            "NIfTI with inf": (
                nifti(
                    d / "inf.nii.gz",
                    np.where(rng.random((48, 48, 4)) > 0.99, np.inf, rng.random((48, 48, 4))).astype(np.float32),
                ),
                [("inf.nii.gz", "inf")],
            ),
            "4-D NIfTI (cine-like)": (
                nifti(d / "cine.nii.gz", rng.random((48, 48, 6, 3)).astype(np.float32)),
                [("cine.nii.gz", "4")],
            ),
            "complex NIfTI": (
                nifti(d / "complex.nii.gz", (rng.random((48, 48, 4)) + 1j).astype(np.complex64)),
                [("complex.nii.gz", "complex")],
            ),
        }
        from PIL import Image

        arr = rng.random((48, 48)).astype(np.float32)
        arr[3, 3] = np.nan
        Image.fromarray(arr, mode="F").save(d / "nan.tif")
        files["float TIFF with NaN"] = (d / "nan.tif", files["float TIFF with NaN"][1])
        pages = [Image.fromarray((rng.random((48, 48)) * 4000).astype(np.uint16)) for _ in range(3)]
        pages[0].save(d / "multi.tif", save_all=True, append_images=pages[1:])
        files["16-bit multipage TIFF"] = (d / "multi.tif", files["16-bit multipage TIFF"][1])
        gz = gzip.compress(open(nifti(d / "full.nii", rng.random((48, 48, 6)).astype(np.float32)), "rb").read())
        files["truncated NIfTI"] = (write_bytes(d / "trunc.nii.gz", gz[: len(gz) // 2]), [("trunc.nii.gz",)])
        # DICOM objects that are not LGE images
        import pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, generate_uid

        sr = Dataset()
        sr.file_meta = FileMetaDataset()
        sr.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
        sr.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        sr.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        sr.SOPClassUID, sr.SOPInstanceUID, sr.Modality = "1.2.840.10008.5.1.4.1.1.88.11", generate_uid(), "SR"
        sr.PatientName = "SYNTHETIC^LEAKY^NAME"
        sr.save_as(str(d / "report_sr.dcm"), enforce_file_format=True)
        files["DICOM SR (no pixel data)"] = (
            d / "report_sr.dcm",
            [("report_sr.dcm", "pixel"), ("report_sr.dcm", "SR"), ("report_sr.dcm", "not an image")],
        )

        def seg(ds):
            ds.Modality = "SEG"
            ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"

        files["DICOM SEG (Modality SEG)"] = (edit_dicom(tmpl, seg, d / "seg.dcm"), [("seg.dcm", "seg")])

        def ct(ds):
            ds.Modality = "CT"

        files["DICOM CT image"] = (edit_dicom(tmpl, ct, d / "ct.dcm"), [("ct.dcm", "CT")])

        def cut_pixels(ds):
            ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]

        files["DICOM pixel data shorter than Rows x Columns"] = (
            edit_dicom(tmpl, cut_pixels, d / "short.dcm"),
            [("short.dcm",)],
        )
        # series folders
        mixed = dicom_copy_series(self.cohort / "dicom" / "SYN002", d / "mixed_sizes")

        def shrink(ds):
            a = ds.pixel_array[:40, :40].copy()
            ds.Rows, ds.Columns = 40, 40
            ds.PixelData = a.tobytes()

        edit_dicom(dcm_files(mixed)[0], shrink)
        files["DICOM series with mixed sizes"] = (mixed, [("mixed_sizes", "size"), ("mixed_sizes", "rows")])
        two = dicom_copy_series(self.cohort / "dicom" / "SYN003", d / "two_series")
        shutil.copy(dcm_files(self.cohort / "dicom" / "SYN004")[0], two / "IM_OTHER.dcm")
        files["DICOM folder with two series"] = (two, [("two_series", "series")])
        nogeo = dicom_copy_series(self.cohort / "dicom" / "SYN005", d / "no_geometry")
        for f in dcm_files(nogeo):
            edit_dicom(f, lambda ds: [ds.pop(t, None) for t in ("ImagePositionPatient", "ImageOrientationPatient")])
        files["DICOM series without geometry tags"] = (nogeo, [("no_geometry", "slice")])
        badzip = dicom_copy_series(self.cohort / "dicom" / "SYN006", d / "series_basal_file_truncated")
        apex = np.array([1.0, -1.0, -1.0]) / np.sqrt(3)  # README: the basal slice has the smallest p . a
        basal_file = min(
            dcm_files(badzip),
            key=lambda f: float(
                np.dot([float(v) for v in pydicom.dcmread(str(f), stop_before_pixels=True).ImagePositionPatient], apex)
            ),
        )
        write_bytes(basal_file, basal_file.read_bytes()[:500])
        files["DICOM series whose basal file is truncated"] = (badzip, [("series_basal_file_truncated",)])

        for name, (path, keys) in files.items():
            out = self.o("img_" + re.sub(r"\W+", "_", name) + ".csv")
            self.add(
                K,
                name,
                ["predict", "--run", self.run, "--task", "lge", path, "-o", out],
                keys=keys,
                fresh=[out],
                note="exit 2, message names the file and what is wrong with it",
            )

        # inputs that are valid (or valid with a warning)
        ok = {
            "RGB PNG": (
                png(d / "rgb.png", np.stack([smooth_image(rng)] * 3, -1).astype(np.uint8)),
                "warn",
                [("colour",), ("color",), ("rgb",)],
            ),
            "16-bit single-page TIFF (valid)": (
                png(d / "gray16.tif", (smooth_image(rng) * 10).astype(np.uint16)),
                "ok",
                [],
            ),
            "2-D NIfTI (valid)": (nifti(d / "twod.nii.gz", smooth_image(rng).astype(np.float32)), "ok", []),
        }
        sr_in = dicom_copy_series(self.cohort / "dicom" / "SYN007", d / "series_plus_sr")
        shutil.copy(d / "report_sr.dcm", sr_in / "zz_report.dcm")
        ok["DICOM series folder + an SR file (valid)"] = (sr_in, "ok", [])
        leaky = dicom_copy_series(self.cohort / "dicom" / "SYN008", d / "nonconforming_header")
        for f in dcm_files(leaky):

            def bad_hdr(ds):
                ds.PatientBirthDate = "MRN-SYN-BADDATE"
                ds.PatientName = "SYNTHETIC^LEAKY^NAME" + "^X" * 40

            edit_dicom(f, bad_hdr)
        ok["DICOM with non-conforming identifier values (valid)"] = (leaky, "ok", [])
        for name, (path, exp, keys) in ok.items():
            out = self.o("img_" + re.sub(r"\W+", "_", name)) / "predictions.csv"
            self.add(
                K,
                name,
                ["-v", "predict", "--run", self.run, "--task", "lge", path, "-o", out],
                expect=exp,
                keys=keys,
                temps=[out.parent],
            )
        nii3 = nifti(d / "stack.nii.gz", np.stack([smooth_image(rng) for _ in range(5)], -1).astype(np.float32))
        self.add(
            K,
            "NIfTI slice index out of range",
            ["predict", "--run", self.run, "--task", "lge", nii3, "--slice", "7"],
            keys=[("stack.nii.gz", "7", "range")],
        )
        loop = self.i("img/loop.png")
        if not loop.exists():
            os.symlink(loop.name, loop)
        self.add(
            K, "symlink loop named .png", ["predict", "--run", self.run, "--task", "lge", loop], keys=[("loop.png",)]
        )

        # the same kinds of damage inside a training manifest (read before anything is written)
        h, b = self.manifest_rows()
        for name, path, keys in (
            ("run: 0-byte DICOM in a series folder", None, [("row 1", "SYN001")]),
            ("run: constant image", d / "const.png", [("row 1", "same value")]),
            ("run: 1x1 image", d / "one.png", [("row 1", "1 x 1")]),
            ("run: truncated NIfTI", files["truncated NIfTI"][0], [("row 1", "trunc.nii.gz")]),
            ("run: DICOM SEG instead of the image", d / "seg.dcm", [("row 1", "seg")]),
        ):
            if path is None:
                series = dicom_copy_series(self.cohort / "dicom" / "SYN001", self.i("run_zero_series/SYN001"))
                write_bytes(dcm_files(series)[2], b"")
                path = series
            man = self.write_manifest(
                "mi_" + re.sub(r"\W+", "_", name),
                mutate=lambda H, B, p=path: (H, [[r[0], str(p)] + r[2:] if j == 0 else r for j, r in enumerate(B)]),
            )
            out = self.o("mi_" + re.sub(r"\W+", "_", name))
            self.add(K, name, ["run", "--manifest", man, "--out", out] + RUN_OPTS, keys=keys, fresh=[out])

    # ---- options
    def cases_geometry(self) -> None:
        """Issue 26, defects 5, 6, 10: voxel sizes of 0, masks on another grid, a missing slice, labels from
        the import sidecar, NaN images at import."""
        import nibabel as nib

        K = "geometry"
        rng = self.nrng
        small = ["--epochs", "1", "--loc-epochs", "1", "--folds", "2", "--threads", "1", "-q"]
        base = np.diag([1.5, 1.5, 8.0, 1.0])

        def save(p: Path, arr, affine=base, pixdim=None) -> Path:
            p.parent.mkdir(parents=True, exist_ok=True)
            im = nib.Nifti1Image(arr, affine)
            if pixdim is not None:
                im.header["pixdim"][1:4] = pixdim
            nib.save(im, str(p))
            return p

        img, lab = lge_pair(rng)
        shifted = base.copy()
        shifted[:3, 3] = (84.0, 0.0, 0.0)
        variants = {
            "image pixdim 0": ((img, base, (0.0, 1.5, 8.0)), (lab, base, None), [("pixdim",), ("voxel size", "0")]),
            "image pixdim NaN": ((img, base, (1.5, float("nan"), 8.0)), (lab, base, None), [("pixdim",)]),
            "mask shifted 84 mm": ((img, base, None), (lab, shifted, None), [("shifted", "84")]),
            "mask mirrored": ((img, base, None), (lab, np.diag([-1.5, 1.5, 8.0, 1.0]), None), [("mirrored",)]),
            "mask other spacing": ((img, base, None), (lab, np.diag([2.0, 2.0, 8.0, 1.0]), None), [("voxel size",)]),
        }
        nan_img = img.copy()
        nan_img[0, 0, 0] = np.nan  # a corner, outside the myocardium
        variants["image NaN outside the myocardium"] = ((nan_img, base, None), (lab, base, None), [("nan",)])
        for n, (name, ((ia, iaff, ipix), (ma, maff, mpix), keys)) in enumerate(variants.items()):
            d = self.i(f"geom_{n}")  # neutral names: a key must not match the path
            ip = save(d / "imgs" / "C1.nii.gz", ia, iaff, ipix)
            mp = save(d / "masks" / "C1.nii.gz", ma, maff, mpix)
            ip2 = save(d / "imgs2" / "C2.nii.gz", ia + rng.normal(0, 1, ia.shape).astype(np.float32), iaff, ipix)
            mp2 = save(d / "masks2" / "C2.nii.gz", ma, maff, mpix)
            out = self.o(f"geom_imp_{n}.csv")
            self.add(
                K,
                f"import nifti-masks: {name}",
                ["import", "nifti-masks", "--images", d / "imgs", "--masks", d / "masks", "--out", out],
                keys=keys,
                fresh=[out],
                note="refused before anything is written, naming the file and the difference",
            )
            if "NaN outside" in name:
                continue
            man = write_text(d / "train.csv", "patient_id,image,mask\n" + f"G1,{ip},{mp}\nG2,{ip2},{mp2}\n")
            out = self.o(f"geom_seg_{n}")
            self.add(
                K,
                f"segment train: {name}",
                ["segment", "train", "--manifest", man, "--out", out] + small,
                keys=[*keys, ("--pixel-spacing",)] if "pixdim" in name else keys,
                fresh=[out],
                timeout=240,
            )
        # the LV cavity labelled 200: the sidecar must record it
        d = self.i("geom_cavity200")
        lab200 = np.select([lab == 1, lab == 2, lab == 3], [200, 1, 2], 0).astype(np.uint8)
        save(d / "imgs" / "C1.nii.gz", img)
        save(d / "masks" / "C1.nii.gz", lab200)
        out = self.o("geom_cavity200.csv")

        def cavity_kept(case, res, out=out):
            side = out.with_name(out.stem + ".import.json")
            got = json.loads(side.read_text()).get("options", {}).get("cavity_labels") if side.is_file() else None
            return None if got == [200] else ("SILENT", f"the sidecar records cavity_labels {got}, not [200]")

        self.add(
            K,
            "import nifti-masks --other-labels 0,200 (cavity 200)",
            [
                "import",
                "nifti-masks",
                "--images",
                d / "imgs",
                "--masks",
                d / "masks",
                "--myo-labels",
                "1,2",
                "--lge-labels",
                "2",
                "--other-labels",
                "0,200",
                "--out",
                out,
            ],
            expect="ok",
            check=cavity_kept,
            note="the sidecar names label 200 as the LV cavity, so segment train keeps a cavity class",
        )
        # a DICOM series with its middle slice removed (odd slice count: the middle is the same from both ends)
        import pydicom

        h0, b0 = self.manifest_rows()
        pid_i, img_i, mask_i = h0.index("patient_id"), h0.index("image"), h0.index("mask")
        for r in b0:
            files = dcm_files(Path(r[img_i]))
            if len(files) % 2 == 1 and len(files) >= 5:
                break
        else:
            return
        series = dicom_copy_series(Path(r[img_i]), self.i("geom_gap") / "series")

        def along(f: Path) -> float:
            ds = pydicom.dcmread(str(f), stop_before_pixels=True)
            o = np.asarray(ds.ImageOrientationPatient, float)
            return float(np.dot(np.asarray(ds.ImagePositionPatient, float), np.cross(o[:3], o[3:])))

        ordered = sorted(dcm_files(series), key=along)
        ordered[len(ordered) // 2].unlink()
        m = nib.load(r[mask_i])
        cut = np.delete(np.asarray(m.dataobj), len(ordered) // 2, axis=2)
        gap_mask = self.i("geom_gap") / "mask.nii.gz"
        nib.save(nib.Nifti1Image(cut, m.affine, m.header), str(gap_mask))

        def swap(H, B):
            for x in B:
                if x[pid_i] == r[pid_i]:
                    x[img_i], x[mask_i] = str(series), str(gap_mask)
            return H, B

        man = self.write_manifest("geom_gap_manifest", mutate=swap)
        out = self.o("geom_seg_gap")
        self.add(
            K,
            "segment train: a DICOM series missing its middle slice",
            ["segment", "train", "--manifest", man, "--out", out] + small,
            expect="warn",
            keys=[("gap", "missing")],
            timeout=300,
            note="trained, with a warning naming the series: its volumes count only the slices present",
        )

    def cases_options(self) -> None:
        K = "option"

        def run(name, extra, keys, expect="error", note=""):
            out = self.o("o_" + re.sub(r"\W+", "_", name))
            opts = list(RUN_OPTS)
            for k in [a for a in extra if a.startswith("--")]:
                if k in opts:  # drop the baseline value of an option the case sets
                    j = opts.index(k)
                    del opts[j : j + (1 if k in ("-q", "--no-report") else 2)]
            return self.add(
                K,
                name,
                ["run", "--manifest", self.abs_manifest, "--out", out] + opts + list(extra),
                expect=expect,
                keys=keys,
                fresh=[out] if expect == "error" else [],
                note=note,
            )

        run("--folds 1", ["--folds", "1"], [("folds",)])
        run("--folds 0", ["--folds", "0"], [("folds",)])
        run("--folds -1", ["--folds", "-1"], [("folds",)])
        run("--folds abc", ["--folds", "abc"], [("folds", "abc")])
        run("--epochs 0", ["--epochs", "0"], [("epochs",)])
        run("--lr -1", ["--lr", "-1"], [("lr",)])
        run("--lr nan", ["--lr", "nan"], [("lr",)], note="refuse: NaN is not a learning rate")
        run("--lr inf", ["--lr", "inf"], [("lr",)], note="refuse: inf is not a learning rate")
        run("--batch-size 0", ["--batch-size", "0"], [("batch_size",), ("batch-size",)])
        run("--image-size 3", ["--image-size", "3"], [("image_size",), ("image-size",)])
        run("--archs unknown", ["--archs", "resnet51"], [("resnet51",)])
        run("--archs empty", ["--archs", ","], [("archs",)])
        run("--tasks xyz", ["--tasks", "xyz"], [("xyz",)])
        run("--inits foo", ["--inits", "foo"], [("foo",)])
        run(
            "--inits radimagenet without a weights file",
            ["--archs", "resnet50", "--inits", "radimagenet"],
            [("radimagenet", "weights")],
        )
        run(
            "--weights-file missing",
            ["--archs", "resnet50", "--inits", "imagenet", "--weights-file", str(self.i("nope.pth"))],
            [("nope.pth",)],
        )
        run("--lge-threshold 150", ["--lge-threshold", "150"], [("threshold",)])
        run("--lge-threshold nan", ["--lge-threshold", "nan"], [("threshold",)])
        run("--threads 0", ["--threads", "0"], [("threads",)], note="refuse (or document 0 = default)")
        run("--threads -2", ["--threads", "-2"], [("threads",)])
        run("--workers 0", ["--workers", "0"], [("workers",)])
        run("--seed -1", ["--seed", "-1"], [("seed",)])
        run("--device cuda on a CPU-only machine", ["--device", "cuda"], [("cuda",)])
        run("--head xyz", ["--head", "xyz"], [("head", "xyz")])
        self.add(
            K,
            "run without --manifest",
            ["run", "--out", self.o("o_nomanifest")] + RUN_OPTS,
            keys=[("--manifest",)],
            fresh=[self.o("o_nomanifest")],
        )
        afile = self.i("afile.txt")
        self.add(
            K,
            "--out is a file",
            ["run", "--manifest", self.abs_manifest, "--out", afile] + RUN_OPTS,
            keys=[("afile.txt", "file")],
            unchanged=[afile],
        )
        self.add(
            K,
            "--out under a file",
            ["run", "--manifest", self.abs_manifest, "--out", afile / "run"] + RUN_OPTS,
            keys=[("afile.txt", "file")],
            unchanged=[afile],
        )
        cfgd = self.i("configs")
        for name, text, keys in (
            ("--config missing", None, [("missing.yaml",)]),
            ("--config not YAML", "epochs: [1, 2\nlr: {\n", [("bad.yaml", "yaml")]),
            ("--config unknown key", "epochz: 3\n", [("epochz",)]),
            ("--config wrong type", "epochs: ten\n", [("epochs", "ten")]),
            ("--config a list", "- 1\n- 2\n", [("list.yaml", "mapping")]),
            ("--config folds 1", "folds: 1\n", [("folds",)]),
            ("--config weights with a bad init key", "weights: {tiny: {foo: x.pth}}\n", [("foo",)]),
            ("--config archs is a mapping", "archs: {tiny: 1}\n", [("archs",)]),
            ("--config lr as text", "lr: fast\n", [("lr", "fast")]),
            ("--config binary", b"\x00\x01\x02\xff\xfe", [("binary.yaml",)]),
        ):
            drop = {
                "--config wrong type": "--epochs",
                "--config folds 1": "--folds",
                "--config archs is a mapping": "--archs",
            }.get(name)
            opts = list(RUN_OPTS)
            if drop:  # the command line would override the config's value
                del opts[opts.index(drop) : opts.index(drop) + 2]
            if text is None:
                p = cfgd / "missing.yaml"
            else:
                fname = {
                    "--config not YAML": "bad.yaml",
                    "--config a list": "list.yaml",
                    "--config binary": "binary.yaml",
                }.get(name, re.sub(r"\W+", "_", name) + ".yaml")
                p = write_bytes(cfgd / fname, text if isinstance(text, bytes) else text.encode())
            out = self.o("o_" + re.sub(r"\W+", "_", name))
            self.add(
                K,
                name,
                ["run", "--manifest", self.abs_manifest, "--out", out, "--config", p] + opts,
                keys=keys,
                fresh=[out],
            )

    # ---- issue 26, defects 2, 8, 9, 11 (part): another cohort's segmentation, clear errors, covariates
    def cases_errors(self) -> None:
        K = "errors"

        def col(name, fn):
            def m(H, B):
                li = H.index("lge_percent")
                return H + [name], [r + [fn(i, r[li])] for i, r in enumerate(B)]

            return self.write_manifest("err_" + name, mutate=m)

        outc = ["outcomes", "--folds", "2", "--bootstrap", "100", "-q"]
        for name, fn, keys in (
            ("blank", lambda i, lge: "", [("blank", "no numeric value")]),
            ("site", lambda i, lge: "A" if i % 2 else "B", [("site", "no numeric value")]),
            ("burden_copy", lambda i, lge: lge, [("burden_copy", "leaks")]),
            ("burden_sq", lambda i, lge: f"{float(lge or 0) ** 2 + 1:.5f}", [("burden_sq", "rank-correlated")]),
        ):
            out = self.o("err_cov_" + name)
            self.add(
                K,
                f"outcomes --covariates age,{name} ({'blank' if name == 'blank' else 'text' if name == 'site' else 'a renamed lge_percent'})",
                outc + ["--manifest", col(name, fn), "--out", out, "--covariates", f"age,{name}", "--tasks", "lge"],
                keys=keys,
                fresh=[out],
                note="refuse: the column carries nothing, or leaks the lge label by its values",
            )
        out = self.o("err_folds1")
        self.add(
            K,
            "outcomes --folds 1",
            ["outcomes", "--manifest", self.abs_manifest, "--out", out, "--folds", "1"],
            keys=[("folds",)],
            fresh=[out],
        )
        out = self.o("err_typo")
        typo = self.write_manifest(
            "err_typo", mutate=lambda H, B: ([("lge_precent" if c == "lge_percent" else c) for c in H], B)
        )
        self.add(
            K,
            "run --tasks lge,event with a misspelled lge_percent column",
            ["run", "--manifest", typo, "--out", out, "--tasks", "event,lge"] + RUN_OPTS,
            keys=[("lge_percent", "lge_precent")],
            fresh=[out],
            note="refuse, naming the closest column: a task asked for is never dropped silently",
        )
        for name, rel, keys in (
            ("report: truncated oof_predictions.csv", "oof_predictions.csv", [("oof_predictions.csv", "incomplete")]),
            ("report: truncated metrics.json", "metrics.json", [("metrics.json",)]),
        ):
            rd = self.copy_run("err_" + re.sub(r"\W+", "_", rel))
            p = rd / rel
            p.write_bytes(p.read_bytes()[: max(1, p.stat().st_size // 3)])
            self.add(K, name, ["report", rd], keys=keys, note="refuse, naming the damaged file")
        rd = self.copy_run("err_outcomes_json")
        (rd / "outcomes").mkdir(exist_ok=True)
        write_text(rd / "outcomes" / "outcomes.json", '{"format": "lgenet-outcomes/1", "tasks": {"lg')
        self.add(
            K,
            "report: truncated outcomes.json",
            ["report", rd],
            keys=[("outcomes.json", "truncated"), ("outcomes.json", "cut short")],
            note="refuse, naming outcomes.json and `lgenet outcomes` to rewrite it",
        )
        elsewhere = self.i("elsewhere")
        elsewhere.mkdir(parents=True, exist_ok=True)
        rel_run = self.copy_run("err_relmanifest")
        cfg_p = rel_run / "config.yaml"
        cfg_p.write_text(
            "\n".join(
                ("manifest: cohort/manifest.csv" if ln.startswith("manifest:") else ln)
                for ln in cfg_p.read_text().splitlines()
            )
            + "\n"
        )
        self.add(
            K,
            "outcomes from another folder, manifest recorded relative (a 0.1.x run)",
            ["outcomes", rel_run, "--out", self.o("err_rel_out"), "-q"],
            keys=[("manifest", "--manifest")],
            fresh=[self.o("err_rel_out")],
            cwd=elsewhere,
        )

    # ---- predict and report
    def cases_predict_report(self) -> None:
        K = "predict/report"
        s1 = self.cohort / "dicom" / "SYN001"
        P = ["predict", "--run", self.run, "--task", "lge"]
        self.add(
            K, "predict --run missing", ["predict", "--run", self.i("norun"), "--task", "lge", s1], keys=[("norun",)]
        )
        self.add(
            K,
            "predict --run is a file",
            ["predict", "--run", self.i("afile.txt"), "--task", "lge", s1],
            keys=[("afile.txt",)],
        )
        self.add(
            K,
            "predict --run is a cohort, not a run",
            ["predict", "--run", self.cohort, "--task", "lge", s1],
            keys=[("cohort", "run")],
        )
        self.add(K, "predict without inputs", P, keys=[("input",), ("manifest",)])
        self.add(K, "predict input missing", P + [self.i("ghost.dcm")], keys=[("ghost.dcm",)])
        self.add(K, "predict --ids count mismatch", P + ["--ids", "a,b", s1], keys=[("--ids",)])
        self.add(
            K, "predict --model unknown", P + ["--model", "resnet50/radimagenet", s1], keys=[("resnet50/radimagenet",)]
        )
        self.add(
            K,
            "predict --model malformed",
            P + ["--model", "tiny", s1],
            keys=[("tiny", "ARCH/INIT"), ("'tiny'", "tiny/random")],
        )
        self.add(K, "predict --slice abc", P + ["--slice", "abc", s1], keys=[("slice", "abc")])
        self.add(K, "predict --slice 99 on a DICOM series", P + ["--slice", "99", s1], keys=[("SYN001", "99")])
        self.add(K, "predict --manifest and paths", P + ["--manifest", self.abs_manifest, s1], keys=[("manifest",)])
        self.add(K, "predict --task xyz", ["predict", "--run", self.run, "--task", "xyz", s1], keys=[("xyz",)])
        out_dir = self.i("predout_dir")
        out_dir.mkdir(parents=True, exist_ok=True)
        self.add(K, "predict -o is a directory", P + [s1, "-o", out_dir], keys=[("predout_dir", "folder")])
        self.add(K, "predict -o under a file", P + [s1, "-o", self.i("afile.txt") / "p.csv"], keys=[("afile.txt",)])
        xl = self.o("p_xlsx/predictions.xlsx")
        self.add(
            K,
            "predict -o predictions.xlsx",
            P + [s1, "-o", xl],
            keys=[("xlsx",)],
            fresh=[xl],
            note="refuse (or warn): the file is written as CSV under an .xlsx name, which Excel will not open",
        )
        self.add(K, "predict --cam is a file", P + [s1, "--cam", self.i("afile.txt")], keys=[("afile.txt",)])
        cam = self.o("p_camlayer")
        self.add(
            K,
            "predict --cam-layer unknown",
            P + [s1, "--cam", cam, "--cam-layer", "backbone.nope"],
            keys=[("backbone.nope",)],
            fresh=[cam],
        )
        self.add(K, "predict --nifti-slice-axis 5", P + ["--nifti-slice-axis", "5", s1], keys=[("nifti-slice-axis",)])
        camdir = self.o("p_ids_escape/cams")

        def no_escape(case, res):
            outside = [
                str(f)
                for f in self.o("p_ids_escape").rglob("*")
                if camdir not in f.parents and f != camdir and f.name != "p.csv"
            ]
            outside += [str(f) for d in (self.outs, self.work) for f in d.glob("escape*")]
            if outside:
                return "SILENT", "an --ids value with '../' wrote outside --cam: " + ", ".join(outside[:3])
            return None

        self.add(
            K,
            "predict --ids with '../' and --cam",
            P + [s1, "--ids", "../../escape", "--cam", camdir, "-o", self.o("p_ids_escape/p.csv")],
            expect="clean",
            check=no_escape,
            note="refuse the id, or keep every file inside --cam",
        )
        okcam = self.o("p_cam_ok")
        self.add(
            K,
            "predict with --cam and -o (valid)",
            P + [s1, self.cohort / "dicom" / "SYN002", "--cam", okcam, "-o", self.o("p_ok.csv"), "--ids", "A,B"],
            expect="ok",
            temps=[okcam],
        )
        self.add(
            K,
            "predict --manifest with bad rows",
            P
            + [
                "--manifest",
                self.write_manifest(
                    "pm_bad",
                    mutate=lambda H, B: (
                        H,
                        [r[:1] + [r[1] + "_nope"] + r[2:] if j == 1 else r for j, r in enumerate(B)],
                    ),
                ),
            ],
            keys=[("row 2", "_nope")],
        )
        # report
        self.add(K, "report on a missing folder", ["report", self.i("norun")], keys=[("norun",)])
        self.add(K, "report on a cohort folder", ["report", self.cohort], keys=[("cohort", "run")])
        self.add(
            K,
            "report --examples -1",
            ["report", self.copy_run("rep_examples"), "--examples", "-1"],
            keys=[("examples",)],
        )
        self.add(K, "report --max-rho abc", ["report", self.run, "--max-rho", "abc"], keys=[("max-rho",)])
        moved = self.copy_run("rep_manifest_missing")
        self.add(
            K,
            "report --manifest missing",
            ["report", moved, "--manifest", self.i("gone.csv")],
            keys=[("gone.csv",)],
            unchanged=[moved],
        )
        rep = self.copy_run("rep_ok")
        self.add(K, "report (valid, with CAMs)", ["report", rep], expect="ok", temps=[rep], timeout=240)

    # ---- weights
    def cases_weights(self) -> None:
        K = "weights"
        d = self.i("weights")
        marker = self.i("weights/PWNED")
        evil = write_bytes(d / "evil.pt", pickle.dumps(EvilPickle(str(marker))))

        def not_executed(case, res):
            if marker.exists():
                return "SILENT", f"the pickle's code RAN ({marker} was created)"
            return None

        for name, path, keys, extra in (
            ("weights inspect missing file", d / "nope.h5", [("nope.h5",)], {}),
            ("weights inspect 0-byte .pt", write_bytes(d / "zero.pt", b""), [("zero.pt",)], {}),
            ("weights inspect garbage .h5", write_bytes(d / "garbage.h5", os.urandom(4096)), [("garbage.h5",)], {}),
            ("weights inspect text .pth", write_text(d / "readme.pth", "download me\n"), [("readme.pth",)], {}),
            (
                "weights inspect truncated HDF5",
                write_bytes(d / "trunc.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 600),
                [("trunc.h5",)],
                {},
            ),
            ("weights inspect a folder", d, [("folder",), ("directory",), ("not a file",)], {}),
            ("weights inspect a malicious pickle", evil, [("evil.pt",)], {"check": not_executed}),
        ):
            self.add(K, name, ["weights", "inspect", path], keys=keys, **extra)
        fold_model = self.run / "fits/lge/tiny__random/fold0/model.pt"

        def not_radimagenet(case, res):
            if "radimagenet" in (res.stdout + res.stderr).lower() and "fold model" not in (res.stdout + res.stderr):
                return "WRONG-REASON", "an lgenet fold model (arch tiny) is described as a RadImageNet resnet50 file"
            return None

        self.add(
            K,
            "weights inspect an lgenet fold model",
            ["weights", "inspect", fold_model],
            expect="clean",
            ok_rcs=(0, 1, 2),
            check=not_radimagenet,
            note="say it is an lgenet fold model (tiny), not backbone weights; never a traceback",
        )
        self.add(
            K,
            "weights convert an lgenet fold model",
            ["weights", "convert", fold_model, "--arch", "resnet50", "--out", self.o("w_fold.safetensors")],
            keys=[("model.pt",), ("fold model",)],
            bad_keys=["RadImageNet"],
            fresh=[self.o("w_fold.safetensors")],
            note="name the file and say it is an lgenet fold model, not resnet50 weights",
        )
        try:
            import timm
            import torch

            torch.manual_seed(0)
            valid = d / "resnet50_random.pth"
            torch.save(timm.create_model("resnet50", pretrained=False).state_dict(), valid)
        except Exception as exc:  # noqa: BLE001
            print(f"no resnet50 weights file for the valid weights cases: {exc}", flush=True)
            valid = None
        if valid is not None:
            self.add(
                K,
                "weights inspect a torchvision-layout resnet50 file (valid)",
                ["weights", "inspect", valid],
                expect="ok",
            )
            outv = self.o("w_valid/resnet50.safetensors")
            self.add(
                K,
                "weights convert a resnet50 file (valid)",
                ["weights", "convert", valid, "--arch", "resnet50", "--init", "imagenet", "--out", outv],
                expect="ok",
                temps=[outv.parent],
                timeout=300,
            )
            self.add(
                K,
                "weights convert into an existing folder name",
                [
                    "weights",
                    "convert",
                    valid,
                    "--arch",
                    "resnet50",
                    "--init",
                    "imagenet",
                    "--out",
                    self.i("emptydir.safetensors"),
                ],
                keys=[("emptydir.safetensors",)],
                pre=lambda: (self.i("emptydir.safetensors").mkdir(exist_ok=True), None)[1],
            )
            if self.i("readonly") in self.immutable:
                self.add(
                    K,
                    "weights convert --out unwritable",
                    [
                        "weights",
                        "convert",
                        valid,
                        "--arch",
                        "resnet50",
                        "--init",
                        "imagenet",
                        "--out",
                        self.i("readonly") / "w.safetensors",
                    ],
                    keys=[("readonly",)],
                )
        out = self.o("w_garbage.safetensors")
        self.add(
            K,
            "weights convert garbage",
            ["weights", "convert", d / "garbage.h5", "--arch", "resnet50", "--out", out],
            keys=[("garbage.h5",)],
            fresh=[out],
        )
        out2 = self.o("w_suffix.bin")
        self.add(
            K,
            "weights convert --out not .safetensors",
            ["weights", "convert", d / "garbage.h5", "--arch", "resnet50", "--out", out2],
            keys=[("safetensors",), ("garbage.h5",)],
            fresh=[out2],
        )
        self.add(
            K,
            "weights convert --arch tiny",
            ["weights", "convert", d / "garbage.h5", "--arch", "tiny", "--out", self.o("w_tiny.safetensors")],
            keys=[("arch", "tiny")],
        )

    # ---- import and quantify
    def cases_import_dicom(self) -> None:
        """``lgenet import dicom`` (since 0.3.0): the baseline cohort's DICOM series as an archive of studies."""
        K = "import dicom"
        arch = self.cohort / "dicom"
        private = self.work / "private"  # what may hold identifiers by design (--id-map, --link copy): not scanned
        self.add(K, "archive of the cohort's studies (valid)", ["import", "dicom", arch, "--out", self.o("dcm_ok/c.csv")],
                 expect="ok", unchanged=[arch])  # fmt: skip
        self.add(K, "the same --out again: replaces its own series folder (valid)",
                 ["import", "dicom", arch, "--out", self.o("dcm_ok/c.csv")], expect="ok")  # fmt: skip
        self.add(K, "--id-map and --link copy outside the results (valid)",
                 ["import", "dicom", arch, "--out", private / "c.csv", "--id-map", private / "map.csv", "--link",
                  "copy"], expect="ok")  # fmt: skip
        afile = write_text(self.i("dcm_afile.txt"), "x\n")
        self.add(K, "STUDIES_DIR is a file", ["import", "dicom", afile, "--out", self.o("dcm_f.csv")],
                 keys=[("not a folder",)], fresh=[self.o("dcm_f.csv")])  # fmt: skip
        self.add(K, "STUDIES_DIR missing", ["import", "dicom", self.i("dcm_nothere"), "--out", self.o("dcm_m.csv")],
                 keys=[("not a folder",)], fresh=[self.o("dcm_m.csv")])  # fmt: skip
        empty = self.i("dcm_empty")
        empty.mkdir(parents=True, exist_ok=True)
        self.add(K, "empty folder", ["import", "dicom", empty, "--out", self.o("dcm_e.csv")],
                 keys=[("no MR image",)], fresh=[self.o("dcm_e.csv")])  # fmt: skip
        junk = self.i("dcm_junk")
        write_text(junk / "notes.txt", "hello\n")
        write_bytes(junk / "IM0001", b"\x08\x00" + os.urandom(300))
        nifti(junk / "a.nii.gz", smooth_image(self.nrng))
        self.add(K, "no DICOM among the files", ["import", "dicom", junk, "--out", self.o("dcm_j.csv")],
                 keys=[("no MR image",)], fresh=[self.o("dcm_j.csv")])  # fmt: skip
        self.add(K, "--out inside the archive", ["import", "dicom", arch, "--out", arch / "c.csv"],
                 keys=[("--out", "input")], unchanged=[arch], fresh=[arch / "c.csv"])  # fmt: skip
        self.add(K, "--id-map inside the archive",
                 ["import", "dicom", arch, "--out", self.o("dcm_i.csv"), "--id-map", arch / "map.csv"],
                 keys=[("--id-map",)], unchanged=[arch], fresh=[arch / "map.csv", self.o("dcm_i.csv")])  # fmt: skip
        self.add(K, "--out not a .csv", ["import", "dicom", arch, "--out", self.o("dcm_noext")],
                 keys=[(".csv",)], fresh=[self.o("dcm_noext")])  # fmt: skip
        foreign = self.o("dcm_foreign_series")
        write_text(foreign / "keep.txt", "user data\n")
        self.add(K, "a foreign <stem>_series folder beside --out",
                 ["import", "dicom", arch, "--out", self.o("dcm_foreign.csv")],
                 keys=[("not written by",)], unchanged=[foreign], fresh=[self.o("dcm_foreign.csv")])  # fmt: skip
        self.add(K, "--min-slices 0", ["import", "dicom", arch, "--out", self.o("dcm_s0.csv"), "--min-slices", "0"],
                 keys=[("--min-slices",)], fresh=[self.o("dcm_s0.csv")])  # fmt: skip
        self.add(K, "--min-slices 99: no study has a stack",
                 ["import", "dicom", arch, "--out", self.o("dcm_s99.csv"), "--min-slices", "99"],
                 keys=[("no study holds", "too few slices")], fresh=[self.o("dcm_s99.csv")])  # fmt: skip
        self.add(K, "--prefer bogus", ["import", "dicom", arch, "--out", self.o("dcm_pb.csv"), "--prefer", "bogus"],
                 keys=[("--prefer",)], fresh=[self.o("dcm_pb.csv")])  # fmt: skip
        messy = self.i("dcm_messy")
        shutil.copytree(arch, messy / "a")
        shutil.copytree(arch, messy / "copy_of_a")  # every image twice
        first = sorted((messy / "a").rglob("*.dcm"))[0]
        write_bytes(messy / "a" / "broken.dcm", first.read_bytes()[:700])  # truncated
        write_bytes(messy / "garbage.dcm", os.urandom(2000))

        def counted(case, res):
            ok = "copies of an image already read" in res.stdout and "unreadable" in res.stdout
            return None if ok else ("SILENT", "the duplicates and the broken files are not counted")

        self.add(K, "every series twice, a truncated and a garbage file (valid; counted)",
                 ["import", "dicom", messy, "--out", self.o("dcm_messy/c.csv")], expect="ok", check=counted)  # fmt: skip

    def cases_bundles_view_measure(self) -> None:
        """``lgenet model``, ``view`` and ``segment measure`` (since 0.3.0) on a 1-epoch segmentation run."""
        K = "bundle/view/measure"
        seg = self.seg_baseline()
        notrun = self.i("bvm_notrun")
        write_text(notrun / "notes.txt", "x\n")
        bundle = self.i("bvm_model.lgenet")  # made now: the cases below may run in any order
        must(cli(["model", "export", seg, "--out", bundle]), "lgenet model export (bundle baseline)")
        self.add(K, "model export (valid)", ["model", "export", seg, "--out", self.o("bvm/model.lgenet")], expect="ok",
                 unchanged=[seg])  # fmt: skip
        self.add(K, "model info (valid)", ["model", "info", bundle], expect="ok")
        self.add(K, "model export of a folder that is no run", ["model", "export", notrun, "--out", self.o("bvm_x.lgenet")],
                 keys=[("seg_config.yaml",), ("segmentation run",), ("not a",)], fresh=[self.o("bvm_x.lgenet")])  # fmt: skip
        self.add(K, "model export --out without .lgenet", ["model", "export", seg, "--out", self.o("bvm_x.zip")],
                 keys=[(".lgenet",)], fresh=[self.o("bvm_x.zip")])  # fmt: skip
        self.add(K, "model export --out inside the run", ["model", "export", seg, "--out", seg / "m.lgenet"],
                 keys=[("--out",)], unchanged=[seg], fresh=[seg / "m.lgenet"])  # fmt: skip
        junk = write_bytes(self.i("bvm_junk.lgenet"), os.urandom(3000))
        self.add(
            K, "model info of a non-bundle file", ["model", "info", junk], keys=[("not a readable lgenet bundle",)]
        )

        import zipfile

        tampered = self.i("bvm_tampered.lgenet")
        with zipfile.ZipFile(bundle) as z, zipfile.ZipFile(tampered, "w") as out:
            for n in z.namelist():
                b = z.read(n)
                out.writestr(n, b[:-1] + bytes([b[-1] ^ 1]) if n == "models/fold0.safetensors" else b)
        self.add(K, "model info of a tampered bundle", ["model", "info", tampered],
                 keys=[("altered", "fold0.safetensors")])  # fmt: skip
        self.add(K, "segment apply --model of a missing file",
                 ["segment", "apply", "--model", self.i("bvm_none.lgenet"), "--manifest", self.abs_manifest, "--out",
                  self.o("bvm_apply_none")], keys=[("no such bundle",)], fresh=[self.o("bvm_apply_none")])  # fmt: skip
        self.add(K, "segment apply with both --run and --model",
                 ["segment", "apply", "--run", seg, "--model", bundle, "--manifest", self.abs_manifest, "--out",
                  self.o("bvm_apply_both")], keys=[("not allowed with",)], fresh=[self.o("bvm_apply_both")])  # fmt: skip
        self.add(K, "view of a folder that holds no segmentation", ["view", notrun, "--static", self.o("bvm_view_x")],
                 keys=[("neither",)], fresh=[self.o("bvm_view_x")])  # fmt: skip
        self.add(K, "view --static into the run it reads", ["view", seg, "--static", seg / "v"],
                 keys=[("--static",)], unchanged=[seg])  # fmt: skip
        self.add(
            K, "view --static (valid)", ["view", seg, "--static", self.o("bvm_view")], expect="ok", unchanged=[seg]
        )
        self.add(K, "segment measure: --masks missing",
                 ["segment", "measure", "--manifest", self.abs_manifest, "--masks", self.i("bvm_nomasks"), "--out",
                  self.o("bvm_m1")], keys=[("not a folder",)], fresh=[self.o("bvm_m1")])  # fmt: skip
        part = self.i("bvm_part_masks")
        part.mkdir(parents=True, exist_ok=True)
        self.add(K, "segment measure: masks for no patient, no apply.json",
                 ["segment", "measure", "--manifest", self.abs_manifest, "--masks", part, "--out", self.o("bvm_m2")],
                 keys=[("--labels",), ("no corrected mask",)], fresh=[self.o("bvm_m2")])  # fmt: skip
        self.add(K, "segment measure: masks for no patient (--labels given)",
                 ["segment", "measure", "--manifest", self.abs_manifest, "--masks", part, "--out", self.o("bvm_m3"),
                  "--labels", "emidec"], keys=[("no corrected mask", "SYN")], fresh=[self.o("bvm_m3")])  # fmt: skip
        self.add(K, "segment measure --out = the masks folder",
                 ["segment", "measure", "--manifest", self.abs_manifest, "--masks", seg / "masks", "--out",
                  seg / "masks", "--labels", "emidec"], keys=[("--out",)], unchanged=[seg])  # fmt: skip

    def cases_classifier_bundles(self) -> None:
        """Classifier bundles (since 0.3.0): ``model export`` of the baseline ``lgenet run``, ``predict --model
        BUNDLE`` and ``model evaluate`` of a classifier bundle, and a bundle of either kind given where the other
        kind goes."""
        import zipfile

        K = "classifier bundle"
        img = self.cohort / "dicom" / "SYN001"
        clf = self.i("clf_model.lgenet")  # both tasks; made now: the cases below may run in any order
        must(cli(["model", "export", self.run, "--out", clf]), "lgenet model export (classifier bundle baseline)")
        one = self.i("clf_lge.lgenet")  # the lge task only
        must(cli(["model", "export", self.run, "--out", one, "--task", "lge"]), "lgenet model export --task lge")
        segb = self.i("bvm_model.lgenet")  # cases_bundles_view_measure's segmentation bundle, when it ran first
        if not segb.is_file():
            segb = self.i("clf_seg.lgenet")
            must(cli(["model", "export", self.seg_baseline(), "--out", segb]), "lgenet model export (segmentation)")
        ref = self.i("clf_ref.csv")  # the run's own fold ensemble on one stack, for the bundle's to equal
        must(cli(["predict", "--run", self.run, "--task", "lge", img, "-o", ref, "-q"]), "lgenet predict --run (ref)")
        ref_probs = [r["prob"] for r in csv.DictReader(open(ref, newline=""))]

        def no_local_path(case, res, out=self.o("clf_export/model.lgenet")):
            if not out.is_file():
                return "WRONG-REASON", f"exit 0 but no bundle at {out}"
            with zipfile.ZipFile(out) as z:
                names = z.namelist()
                texts = {n: z.read(n) for n in names if not n.endswith(".safetensors")}
                heads = {n: z.read(n)[:65536] for n in names if n.endswith(".safetensors")}  # header: spec + fit
            want = {f"models/{t}/fold{k}.safetensors" for t in ("lge", "event") for k in (0, 1)}
            if not want <= set(names):
                return "WRONG-REASON", f"bundle lacks {sorted(want - set(names))}"
            for n, b in (texts | heads).items():
                low = b.lower()
                for s in [str(self.work), str(self.work.resolve())] + self.identifiers:
                    v = re.escape(s.lower().encode())
                    if re.search(rb"(?<!\d)" + v + rb"(?!\d)" if s.isdigit() else v, low):  # dates: not inside a number
                        return "IDENTIFIER", f"{n} in the bundle holds {'a local path' if '/' in s else repr(s)}"
            return None

        def same_as_run(case, res, out=self.o("clf_predict.csv")):
            if not out.is_file():
                return "WRONG-REASON", f"exit 0 but no {out.name}"
            got = [r["prob"] for r in csv.DictReader(open(out, newline=""))]
            if got != ref_probs:
                return "WRONG-REASON", f"the bundle's probability {got} differs from the run's own {ref_probs}"
            return None

        # model export
        self.add(K, "model export of the baseline run (valid)",
                 ["model", "export", self.run, "--out", self.o("clf_export/model.lgenet")], expect="ok",
                 unchanged=[self.run], check=no_local_path,
                 note="both tasks' fold models; no local path or DICOM identifier in the bundle")  # fmt: skip
        self.add(K, "model export --task xyz", ["model", "export", self.run, "--out", self.o("clf_x1.lgenet"),
                 "--task", "xyz"], keys=[("xyz", "not trained")], unchanged=[self.run],
                 fresh=[self.o("clf_x1.lgenet")])  # fmt: skip
        self.add(K, "model export --model nope/none", ["model", "export", self.run, "--out", self.o("clf_x2.lgenet"),
                 "--model", "nope/none"], keys=[("nope/none", "not in run")], unchanged=[self.run],
                 fresh=[self.o("clf_x2.lgenet")])  # fmt: skip
        seg = self.seg_baseline()
        self.add(K, "model export --task of a segmentation run", ["model", "export", seg, "--out",
                 self.o("clf_x3.lgenet"), "--task", "lge"], keys=[("segmentation run", "--task", "classifier")],
                 unchanged=[seg], fresh=[self.o("clf_x3.lgenet")],
                 note="--task/--model choose a classifier; a segmentation bundle holds the whole ensemble")  # fmt: skip
        unf = self.copy_run("clf_unfinished")
        for f in ("metrics.json", "metrics.csv", "oof_predictions.csv", "run.json"):
            (unf / f).unlink()
        self.add(K, "model export --task of an unfinished lgenet run", ["model", "export", unf, "--out",
                 self.o("clf_x4.lgenet"), "--task", "lge"], keys=[("metrics.json", "not finished")],
                 bad_keys=["segmentation run", "seg_config"], unchanged=[unf], fresh=[self.o("clf_x4.lgenet")],
                 note="before 0.3.0's fix: called a segmentation run")  # fmt: skip
        # predict --model
        self.add(K, "predict --model BUNDLE (valid)", ["predict", "--model", clf, "--task", "lge", img, "-q", "-o",
                 self.o("clf_predict.csv")], expect="ok", check=same_as_run,
                 note="the probability equals predict --run's on the same stack")  # fmt: skip
        self.add(K, "predict --model of a two-task bundle without --task", ["predict", "--model", clf, img, "-q"],
                 keys=[("--task", "lge", "event")], bad_keys=["None"])  # fmt: skip
        self.add(K, "predict --model of a one-task bundle, --task of another", ["predict", "--model", one, "--task",
                 "event", img, "-q", "-o", self.o("clf_p1.csv")], keys=[("--task event", "lge")],
                 fresh=[self.o("clf_p1.csv")])  # fmt: skip
        self.add(K, "predict --model of a missing file", ["predict", "--model", self.i("clf_none.lgenet"), "--task",
                 "lge", img, "-q"], keys=[("no such bundle", "clf_none.lgenet")])  # fmt: skip
        self.add(K, "predict with both --run and --model BUNDLE", ["predict", "--run", self.run, "--model", clf,
                 "--task", "lge", img, "-q"], keys=[("--run", "not both")])  # fmt: skip
        self.add(K, "predict --model of a segmentation bundle", ["predict", "--model", segb, "--task", "lge", img, "-q",
                 "-o", self.o("clf_p2.csv")], keys=[("a segmentation bundle", "segment apply --model")],
                 fresh=[self.o("clf_p2.csv")])  # fmt: skip
        tampered = self.i("clf_tampered.lgenet")
        with zipfile.ZipFile(clf) as z, zipfile.ZipFile(tampered, "w") as out:
            for n in z.namelist():
                b = z.read(n)
                out.writestr(n, b[:-1] + bytes([b[-1] ^ 1]) if n == "models/lge/fold0.safetensors" else b)
        self.add(K, "predict --model of a tampered bundle", ["predict", "--model", tampered, "--task", "lge", img, "-q",
                 "-o", self.o("clf_p3.csv")], keys=[("altered", "models/lge/fold0.safetensors")],
                 fresh=[self.o("clf_p3.csv")])  # fmt: skip
        self.add(K, "segment apply --model of a classifier bundle", ["segment", "apply", "--model", clf, "--manifest",
                 self.abs_manifest, "--out", self.o("clf_apply"), "-q"],
                 keys=[("a classifier bundle", "predict --model")], fresh=[self.o("clf_apply")])  # fmt: skip
        # model evaluate of a classifier bundle

        def no_labels(H, B):
            li, ei = H.index("lge_percent"), H.index("event")
            for r in B:
                r[ei] = ""
            return [c for k, c in enumerate(H) if k != li], [[v for k, v in enumerate(r) if k != li] for r in B]

        nolab = self.write_manifest("clf_nolabels", mutate=no_labels)
        self.add(K, "model evaluate: lge_percent absent, event blank", ["model", "evaluate", clf, "--manifest", nolab,
                 "--out", self.o("clf_ev1.lgenet"), "--work", self.o("clf_ev1_work")],
                 keys=[("nothing to evaluate", "lge_percent", "lacks", "event", "blank")], unchanged=[clf],
                 fresh=[self.o("clf_ev1.lgenet"), self.o("clf_ev1_work")])  # fmt: skip
        self.add(K, "model evaluate --out = the input bundle", ["model", "evaluate", clf, "--manifest",
                 self.abs_manifest, "--out", clf], keys=[("is an input",)], unchanged=[clf])  # fmt: skip

    def cases_import_quantify(self) -> None:
        K = "import/quantify"
        rng = self.nrng
        ds = self.i("othercohort")  # another dataset as a new user would get it: Case01_LGE / Case01_gd
        for k in range(1, 7):
            img, lab = lge_pair(rng, lge=k % 2 == 0)
            nifti(ds / f"Case{k:02d}_LGE.nii.gz", img)
            nifti(ds / f"Case{k:02d}_gd.nii.gz", lab)
        out = self.o("imp_naive.csv")
        self.add(
            K,
            "nifti-masks: Case01_LGE/Case01_gd in one folder, no patterns",
            ["import", "nifti-masks", "--images", ds, "--masks", ds, "--out", out],
            keys=[("pattern",)],
            fresh=[out],
            note="refuse, and say that images and masks must be told apart (--image-pattern '{id}_LGE.nii.gz' "
            "--mask-pattern '{id}_gd.nii.gz')",
        )
        good = self.o("imp_ok/cohort.csv")
        self.add(
            K,
            "nifti-masks with patterns (valid)",
            [
                "import",
                "nifti-masks",
                "--images",
                ds,
                "--masks",
                ds,
                "--image-pattern",
                "{id}_LGE.nii.gz",
                "--mask-pattern",
                "{id}_gd.nii.gz",
                "--out",
                good,
            ],
            expect="ok",
            temps=[good.parent],
        )
        out = self.o("imp_glob.csv")
        self.add(
            K,
            "nifti-masks: globs, masks matching images too",
            [
                "import",
                "nifti-masks",
                "--images",
                str(ds / "*.nii.gz"),
                "--masks",
                str(ds / "*_gd.nii.gz"),
                "--out",
                out,
            ],
            keys=[("pattern",), ("mask",)],
            fresh=[out],
        )
        out = self.o("imp_nopat.csv")
        self.add(
            K,
            "nifti-masks --image-pattern without {id}",
            [
                "import",
                "nifti-masks",
                "--images",
                ds,
                "--masks",
                ds,
                "--image-pattern",
                "LGE.nii.gz",
                "--mask-pattern",
                "{id}_gd.nii.gz",
                "--out",
                out,
            ],
            keys=[("{id}",)],
            fresh=[out],
        )
        out = self.o("imp_none.csv")
        self.add(
            K,
            "nifti-masks glob matching nothing",
            ["import", "nifti-masks", "--images", str(ds / "*.mha"), "--masks", ds, "--out", out],
            keys=[("*.mha",)],
            fresh=[out],
        )
        lab_ds = self.i("othercohort_labels")  # masks use 0/1/2 (background/myocardium/scar): another convention
        for k in range(1, 4):
            img, lab = lge_pair(rng)
            lab = np.where(lab == 1, 0, np.where(lab == 2, 1, np.where(lab == 3, 2, 0))).astype(np.int16)
            nifti(lab_ds / f"Case{k:02d}_LGE.nii.gz", img)
            nifti(lab_ds / f"Case{k:02d}_gd.nii.gz", lab)
        out = self.o("imp_labels.csv")
        self.add(
            K,
            "nifti-masks with another label convention",
            [
                "import",
                "nifti-masks",
                "--images",
                lab_ds,
                "--masks",
                lab_ds,
                "--image-pattern",
                "{id}_LGE.nii.gz",
                "--mask-pattern",
                "{id}_gd.nii.gz",
                "--out",
                out,
            ],
            keys=[("label",)],
            fresh=[out],
        )
        grid = self.i("grid_mismatch")
        img, lab = lge_pair(rng)
        nifti(grid / "imgs/C1.nii.gz", img)
        nifti(grid / "masks/C1.nii.gz", lab[:40])
        out = self.o("imp_grid.csv")
        self.add(
            K,
            "nifti-masks mask grid differs",
            ["import", "nifti-masks", "--images", grid / "imgs", "--masks", grid / "masks", "--out", out],
            keys=[("grid",), ("shape",)],
            fresh=[out],
        )
        fl = self.i("float_mask")
        nifti(fl / "imgs/C1.nii.gz", img)
        nifti(fl / "masks/C1.nii.gz", lab.astype(np.float32) + 0.5)
        out = self.o("imp_float.csv")
        self.add(
            K,
            "nifti-masks non-integer mask",
            ["import", "nifti-masks", "--images", fl / "imgs", "--masks", fl / "masks", "--out", out],
            keys=[("integer",)],
            fresh=[out],
        )
        pairs = write_text(self.i("pairs/pairs.csv"), "case,img,msk\nC1,a.nii.gz,b.nii.gz\n")
        out = self.o("imp_pairs.csv")
        self.add(
            K,
            "nifti-masks --pairs with wrong columns",
            ["import", "nifti-masks", "--pairs", pairs, "--out", out],
            keys=[("case_id",)],
            fresh=[out],
        )
        pairs2 = write_text(self.i("pairs2/pairs.csv"), "case_id,image,mask\nC1,nope.nii.gz,nope2.nii.gz\n")
        self.add(
            K,
            "nifti-masks --pairs to missing files",
            ["import", "nifti-masks", "--pairs", pairs2, "--out", self.o("imp_pairs2.csv")],
            keys=[("nope.nii.gz",)],
            fresh=[self.o("imp_pairs2.csv")],
        )
        self.add(
            K,
            "nifti-masks --clinical missing",
            [
                "import",
                "nifti-masks",
                "--images",
                ds,
                "--masks",
                ds,
                "--image-pattern",
                "{id}_LGE.nii.gz",
                "--mask-pattern",
                "{id}_gd.nii.gz",
                "--clinical",
                self.i("noclin.csv"),
                "--out",
                self.o("imp_clin.csv"),
            ],
            keys=[("noclin.csv",)],
            fresh=[self.o("imp_clin.csv")],
        )
        self.add(
            K,
            "nifti-masks --out is a folder",
            [
                "import",
                "nifti-masks",
                "--images",
                ds,
                "--masks",
                ds,
                "--image-pattern",
                "{id}_LGE.nii.gz",
                "--mask-pattern",
                "{id}_gd.nii.gz",
                "--out",
                self.i("emptydir"),
            ],
            keys=[("emptydir",)],
        )
        # EMIDEC-like folders
        em = self.i("emidec")
        clin = [
            "case_id,group,sex,age,tobacco,overweight,hypertension,diabetes,familial_disease,ECG,troponin,"
            "killip,FEVG,NTP"
        ]
        for k in range(1, 5):
            img, lab = lge_pair(rng, lge=k % 2 == 0)
            nifti(em / f"Case_{k:03d}/Images/Case_{k:03d}.nii.gz", img)
            nifti(em / f"Case_{k:03d}/Contours/Case_{k:03d}.nii.gz", lab)
            clin.append(f"Case_{k:03d},{'P' if k % 2 == 0 else 'N'},0,60,0,0,1,0,0,1,10,{1 + k % 2},55,300")
        write_text(em / "clinical.csv", "\n".join(clin) + "\n")
        self.add(
            K,
            "import emidec (valid, 4 cases)",
            ["import", "emidec", em, "--out", self.o("em_ok/emidec.csv")],
            expect="ok",
            temps=[self.o("em_ok")],
        )
        self.add(
            K,
            "import emidec: missing folder",
            ["import", "emidec", self.i("noemidec"), "--out", self.o("em1.csv")],
            keys=[("noemidec",)],
            fresh=[self.o("em1.csv")],
        )
        self.add(
            K,
            "import emidec: no Case_* folder",
            ["import", "emidec", self.i("emptydir"), "--out", self.o("em2.csv")],
            keys=[("Case_",)],
            fresh=[self.o("em2.csv")],
        )
        em2 = self.i("emidec_twofiles")
        shutil.copytree(em, em2)
        shutil.copy(em2 / "Case_001/Images/Case_001.nii.gz", em2 / "Case_001/Images/Case_001_copy.nii.gz")
        self.add(
            K,
            "import emidec: two images in a case",
            ["import", "emidec", em2, "--out", self.o("em3.csv")],
            keys=[("Case_001",)],
            fresh=[self.o("em3.csv")],
        )
        em3 = self.i("emidec_noclin")
        shutil.copytree(em, em3)
        (em3 / "clinical.csv").unlink()
        self.add(
            K,
            "import emidec: no clinical.csv",
            ["import", "emidec", em3, "--out", self.o("em4.csv")],
            keys=[("clinical.csv",)],
            fresh=[self.o("em4.csv")],
        )
        em4 = self.i("emidec_badclin")
        shutil.copytree(em, em4)
        write_text(
            em4 / "clinical.csv",
            (em / "clinical.csv").read_text().replace(",60,", ",sixty,", 1).replace(",2,55,", ",II,55,", 1),
        )
        self.add(
            K,
            "import emidec: killip 'II' in clinical.csv",
            ["import", "emidec", em4, "--out", self.o("em5.csv")],
            keys=[("killip",)],
            fresh=[self.o("em5.csv")],
        )
        # quantify
        q_img, q_msk = ds / "Case02_LGE.nii.gz", ds / "Case02_gd.nii.gz"
        self.add(
            K,
            "quantify (valid)",
            ["quantify", q_img, q_msk, "--out", self.o("q_ok")],
            expect="ok",
            temps=[self.o("q_ok")],
        )
        self.add(
            K,
            "quantify 0-byte image",
            ["quantify", self.i("img/zero.nii.gz"), q_msk, "--out", self.o("q1")],
            keys=[("zero.nii.gz",)],
            fresh=[self.o("q1")],
        )
        self.add(
            K,
            "quantify mask grid differs",
            ["quantify", grid / "imgs/C1.nii.gz", grid / "masks/C1.nii.gz", "--out", self.o("q2")],
            keys=[("grid",), ("shape",)],
            fresh=[self.o("q2")],
        )
        self.add(
            K,
            "quantify mask = image",
            ["quantify", q_img, q_img, "--out", self.o("q3")],
            keys=[("label",), ("integer",)],
            fresh=[self.o("q3")],
        )
        self.add(
            K,
            "quantify --manifest without --label-method",
            ["quantify", "--manifest", good, "--out", self.o("q4")],
            keys=[("label-method",)],
            fresh=[self.o("q4")],
        )
        self.add(
            K,
            "quantify --method xyz",
            ["quantify", q_img, q_msk, "--out", self.o("q5"), "--method", "xyz"],
            keys=[("xyz",)],
            fresh=[self.o("q5")],
        )
        self.add(
            K,
            "quantify --n-sd abc",
            ["quantify", q_img, q_msk, "--out", self.o("q6"), "--n-sd", "abc"],
            keys=[("abc",)],
            fresh=[self.o("q6")],
        )
        self.add(
            K,
            "quantify --remote missing",
            ["quantify", q_img, q_msk, "--out", self.o("q7"), "--remote", self.i("noremote.nii.gz")],
            keys=[("noremote",)],
            fresh=[self.o("q7")],
        )
        self.add(
            K,
            "quantify --out is a file",
            ["quantify", q_img, q_msk, "--out", self.i("afile.txt")],
            keys=[("afile.txt",)],
        )
        self.add(
            K,
            "quantify DICOM cohort manifest",
            ["quantify", "--manifest", self.abs_manifest, "--label-method", "fwhm", "--out", self.o("q8")],
            keys=[("nifti",), ("myocardium",), ("label",)],
            fresh=[self.o("q8")],
            note="the synthetic cohort's images are DICOM series; a clear refusal naming the row is right",
        )

    # ---- damaged run directories
    def cases_rundir(self) -> None:
        K = "run dir"
        s1 = self.cohort / "dicom" / "SYN001"
        resume = ["run", "--manifest", self.abs_manifest] + RUN_OPTS

        def identical(case, res):
            out = Path(case.args[case.args.index("--out") + 1])
            for f, ref in (("oof_predictions.csv", self.ref_oof), ("metrics.csv", self.ref_metrics)):
                if not (out / f).is_file() or (out / f).read_bytes() != ref:
                    return "WRONG-REASON", f"accepted, but {f} differs from the uninterrupted run's"
            return None

        def damaged(name, damage, cmd, keys, expect="error", check=None, note="", unchanged=False):
            rd = self.copy_run("rd_" + re.sub(r"\W+", "_", name))
            damage(rd)
            args = [a if a != "RUN" else rd for a in cmd]
            if args[0] == "run":
                args = args[:1] + ["--out", rd] + args[1:]
            c = self.add(
                K,
                name,
                args,
                expect=expect,
                keys=keys,
                check=check,
                note=note,
                temps=[rd],
                unchanged=[rd] if unchanged else [],
            )
            return c

        def rm(rel):
            return lambda rd: (rd / rel).unlink()

        def garble(rel, data=b"\x00garbage{{[ \xff\n"):
            return lambda rd: (rd / rel).write_bytes(data)

        def truncate(rel, frac=0.5):
            return lambda rd: (rd / rel).write_bytes((rd / rel).read_bytes()[: int((rd / rel).stat().st_size * frac)])

        pred = ["predict", "--run", "RUN", "--task", "lge", s1]
        fold0 = "fits/lge/tiny__random/fold0"
        damaged(
            "config.yaml deleted, resume same settings",
            rm("config.yaml"),
            resume,
            [("config.yaml",)],
            note="refuse, naming config.yaml: without it the finished fits' settings cannot be checked against "
            "this run's (restore it or use a new --out)",
        )
        damaged(
            "config.yaml deleted, resume with --epochs 2",
            rm("config.yaml"),
            resume + ["--epochs", "2"],
            [("epochs",), ("config.yaml",)],
            note="refuse: the finished fits were made with epochs 1 (fit.json records it); mixing is wrong",
        )
        damaged(
            "config.yaml garbled, resume with --epochs 2",
            garble("config.yaml"),
            resume + ["--epochs", "2"],
            [("epochs",), ("config.yaml",)],
            note="refuse, naming config.yaml or the epochs difference",
        )
        damaged("config.yaml garbled, predict", garble("config.yaml"), pred, [("config.yaml",)])
        damaged("config.yaml deleted, predict", rm("config.yaml"), pred, [("config.yaml",)])
        c = damaged(
            "config.yaml edited (folds 2 -> 5), predict",
            lambda rd: (rd / "config.yaml").write_text(
                (rd / "config.yaml").read_text().replace("folds: 2", "folds: 5")
            ),
            pred,
            [("fold",)],
            note="say that config.yaml disagrees with the run's fits (2 folds), not that models were pruned",
        )
        c.bad_keys = ["--keep-models all"]
        damaged("metrics.json garbled, predict", garble("metrics.json"), pred, [("metrics.json",)])
        damaged(
            "metrics.json garbled, report", garble("metrics.json"), ["report", "RUN", "--no-cams"], [("metrics.json",)]
        )
        damaged("metrics.json garbled, resume", garble("metrics.json"), resume, [], expect="ok", check=identical)
        damaged(
            "oof_predictions.csv deleted, report",
            rm("oof_predictions.csv"),
            ["report", "RUN", "--no-cams"],
            [("oof_predictions.csv",)],
            expect="clean",
        )
        damaged(
            "oof_predictions.csv garbled, report",
            garble("oof_predictions.csv", b"task,arch\nlge\n\x00"),
            ["report", "RUN", "--no-cams"],
            [("oof_predictions.csv",)],
        )
        damaged("model.pt truncated, predict", truncate(f"{fold0}/model.pt"), pred, [("model.pt",)])
        damaged(
            "model.pt foreign (torch.save of a list), predict",
            lambda rd: __import__("torch").save([1, 2, 3], rd / fold0 / "model.pt"),
            pred,
            [("model.pt",)],
        )
        damaged("model.pt random bytes, predict", garble(f"{fold0}/model.pt", os.urandom(5000)), pred, [("model.pt",)])
        damaged("model.pt deleted, predict", rm(f"{fold0}/model.pt"), pred, [("model.pt",)])
        damaged(
            "model.pt truncated, resume",
            truncate(f"{fold0}/model.pt"),
            resume,
            [("model.pt",)],
            expect="clean",
            note="resume may skip the fit (fit.json exists); predict would then name the file",
        )

        def edit_folds(rd):
            t = (rd / "folds_lge.csv").read_text().splitlines()
            pid, fold, lab = t[1].split(",")
            t[1] = f"{pid},{1 - int(fold)},{lab}"
            (rd / "folds_lge.csv").write_text("\n".join(t) + "\n")

        c = damaged(
            "folds_lge.csv edited, resume",
            edit_folds,
            resume,
            [("folds_lge.csv",)],
            note="refuse, naming folds_lge.csv (the cohort did not change; the file did)",
        )
        c.bad_keys = ["manifest's patients or labels changed"]
        damaged("folds_lge.csv garbled, resume", garble("folds_lge.csv"), resume, [("folds_lge.csv",)])
        damaged(
            "folds_lge.csv deleted, resume",
            rm("folds_lge.csv"),
            resume,
            [("folds_lge.csv",)],
            expect="clean",
            check=lambda c, r: identical(c, r) if r.rc == 0 else None,
        )
        damaged(
            "fit.json garbled, resume",
            garble(f"{fold0}/fit.json"),
            resume,
            [("fit.json",)],
            expect="clean",
            check=lambda c, r: identical(c, r) if r.rc == 0 else None,
            note="either refit it (identical results) or name fit.json and how to fix it",
        )
        damaged("fit.json garbled, predict", garble(f"{fold0}/fit.json"), pred, [("fit.json",)], expect="clean")
        damaged(
            "fold predictions.csv garbled, resume",
            garble(f"{fold0}/predictions.csv"),
            resume,
            [("predictions.csv",)],
            expect="clean",
            check=lambda c, r: identical(c, r) if r.rc == 0 else None,
        )
        damaged(
            "inputs.json garbled, resume",
            garble("inputs.json"),
            resume,
            [("inputs.json",)],
            note="refuse, naming inputs.json: it is the only record of the pixels the fits were trained on, so "
            "the resume cannot be checked",
        )
        damaged(
            "cache garbled, resume",
            garble("cache/inputs_32.safetensors"),
            resume,
            [],
            expect="clean",
            check=lambda c, r: identical(c, r) if r.rc == 0 else None,
        )
        damaged(
            "temp file left by a killed writer, resume",
            lambda rd: write_text(rd / ".oof_predictions.csv.x1y2.tmp.csv", "task,ar"),
            resume,
            [],
            expect="ok",
            check=identical,
        )
        damaged("profile.json garbled, predict", garble("profile.json"), pred, [], expect="ok")
        # inputs changed, then resume
        changed = dicom_copy_series(self.cohort / "dicom" / "SYN001", self.i("changed/SYN001"))
        for f in dcm_files(changed):

            def brighten(ds):
                a = ds.pixel_array.astype(np.int32) + 7
                ds.PixelData = a.astype(ds.pixel_array.dtype).tobytes()

            edit_dicom(f, brighten)
        man_img = self.write_manifest(
            "rd_changed_image",
            mutate=lambda H, B: (H, [[r[0], str(changed)] + r[2:] if j == 0 else r for j, r in enumerate(B)]),
        )
        rd = self.copy_run("rd_changed_image")
        self.add(
            K,
            "image changed, resume",
            ["run", "--manifest", man_img, "--out", rd] + RUN_OPTS,
            keys=[("row 1", "changed"), ("SYN001", "changed")],
            unchanged=[rd],
        )
        L = self.manifest_rows()[0].index("lge_percent")
        man_lab = self.write_manifest(
            "rd_changed_label",
            mutate=lambda H, B: (H, [r[:L] + ["9.9"] + r[L + 1 :] if j == 0 else r for j, r in enumerate(B)]),
        )
        rd = self.copy_run("rd_changed_label")
        self.add(
            K,
            "label changed, resume",
            ["run", "--manifest", man_lab, "--out", rd] + RUN_OPTS,
            keys=[("manifest",)],
            unchanged=[rd],
        )
        rd = self.copy_run("rd_changed_image_inputs_garbled")
        (rd / "inputs.json").write_bytes(b"{not json")
        self.add(
            K,
            "image changed and inputs.json garbled, resume",
            ["run", "--manifest", man_img, "--out", rd] + RUN_OPTS,
            keys=[("changed",), ("inputs",)],
            unchanged=[rd],
            note="refuse: the fits were made on other pixels (inputs.json is damaged, but the "
            "fits' records or run.json still tell)",
        )
        # pixels changed in place (same manifest bytes): a cohort copy and run directories made "as if" run on it
        same_b = self.i("cohort_same")
        shutil.copytree(self.cohort, same_b)
        chg_b = self.i("cohort_changed")
        shutil.copytree(self.cohort, chg_b)

        def as_if_run_on(rd: Path, manifest: Path) -> Path:
            sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
            for f in ("inputs.json", "run.json"):
                d = json.loads((rd / f).read_text())
                d["manifest_sha256"] = sha
                (rd / f).write_text(json.dumps(d, indent=1))
            cfg = (rd / "config.yaml").read_text()
            (rd / "config.yaml").write_text(re.sub(r"(?m)^manifest: .*$", f"manifest: {manifest}", cfg))
            return rd

        rd = as_if_run_on(self.copy_run("rd_inplace_same"), same_b / "manifest.csv")
        self.add(
            K,
            "cohort copy, unchanged, resume (valid)",
            ["run", "--manifest", same_b / "manifest.csv", "--out", rd] + RUN_OPTS,
            expect="ok",
            check=identical,
            note="control for the two cases below",
        )
        for f in dcm_files(chg_b / "dicom" / "SYN001"):

            def brighten2(ds):
                a = ds.pixel_array.astype(np.int32) + 7
                ds.PixelData = a.astype(ds.pixel_array.dtype).tobytes()

            edit_dicom(f, brighten2)
        rd = as_if_run_on(self.copy_run("rd_inplace_changed"), chg_b / "manifest.csv")
        self.add(
            K,
            "image pixels changed in place, resume",
            ["run", "--manifest", chg_b / "manifest.csv", "--out", rd] + RUN_OPTS,
            keys=[("row 1", "changed"), ("SYN001", "changed")],
            unchanged=[rd],
        )
        rd = as_if_run_on(self.copy_run("rd_inplace_changed_inputs_garbled"), chg_b / "manifest.csv")
        (rd / "inputs.json").write_bytes(b"{not json")
        self.add(
            K,
            "image pixels changed in place and inputs.json garbled, resume",
            ["run", "--manifest", chg_b / "manifest.csv", "--out", rd] + RUN_OPTS,
            keys=[("changed",), ("inputs.json",)],
            unchanged=[rd],
            note="refuse: inputs.json (the only record of the pixels) is unreadable, so the resume cannot be "
            "checked; say so instead of resuming",
        )
        rd = self.copy_run("rd_changed_settings")
        self.add(
            K,
            "resume with another --lr",
            ["run", "--manifest", self.abs_manifest, "--out", rd] + RUN_OPTS + ["--lr", "0.01"],
            keys=[("lr",)],
            unchanged=[rd],
        )
        rd = self.copy_run("rd_changed_threads")
        opts2 = list(RUN_OPTS)
        opts2[opts2.index("--threads") + 1] = "2"
        self.add(
            K,
            "resume with --threads 2",
            ["run", "--manifest", self.abs_manifest, "--out", rd] + opts2,
            keys=[("thread",)],
            unchanged=[rd],
        )
        # a second driver on a locked directory
        rd = self.copy_run("rd_locked")

        def hold_lock(rd=rd):
            p = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "import fcntl,sys,time; f=open(sys.argv[1],'a+'); "
                    "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)",
                    str(rd / ".lock"),
                ],
                stdout=subprocess.PIPE,
            )
            p.stdout.readline()
            return lambda: (p.kill(), p.wait())

        self.add(
            K,
            "run directory locked by another process",
            ["run", "--manifest", self.abs_manifest, "--out", rd] + RUN_OPTS,
            keys=[("in use",)],
            unchanged=[rd],
            pre=hold_lock,
        )
        self.add(
            K,
            "predict on a run that never finished",
            ["predict", "--run", self.unfinished_run(), "--task", "lge", s1],
            keys=[("metrics.json",), ("finished",)],
        )

    # ---- segment (a new subcommand: a few refusals only, nothing is trained)
    def cases_segment(self) -> None:
        K = "segment"

        def help_ok(case, res):
            if "option_strings" in res.stdout:
                return (
                    "WRONG-REASON",
                    "help text garbled: an argparse dict is printed inside the 'train' help "
                    "(unescaped '%' in a help string)",
                )
            return None

        self.add(K, "segment --help", ["segment", "--help"], expect="ok", check=help_ok)
        small = ["--epochs", "1", "--loc-epochs", "1", "--folds", "2", "--threads", "1", "-q"]
        nomask = self.write_manifest(
            "seg_nomask",
            mutate=lambda H, B: ([c for c in H if c != "mask"], [[v for c, v in zip(H, r) if c != "mask"] for r in B]),
        )
        out = self.o("seg_nomask")
        self.add(
            K,
            "segment train: manifest without masks",
            ["segment", "train", "--manifest", nomask, "--out", out] + small,
            keys=[("mask",)],
            fresh=[out],
            timeout=240,
        )
        out = self.o("seg_epochs0")
        self.add(
            K,
            "segment train --epochs 0",
            [
                "segment",
                "train",
                "--manifest",
                self.abs_manifest,
                "--out",
                out,
                "--epochs",
                "0",
                "--loc-epochs",
                "1",
                "--folds",
                "2",
                "-q",
            ],
            keys=[("epochs",)],
            fresh=[out],
            timeout=240,
        )
        out = self.o("seg_labels")
        self.add(
            K,
            "segment train --labels garbage",
            ["segment", "train", "--manifest", self.abs_manifest, "--out", out, "--labels", "myo=two"] + small,
            keys=[("labels",), ("myo=two",), ("two",)],
            fresh=[out],
            timeout=240,
        )
        self.add(
            K,
            "segment train --out is a file",
            ["segment", "train", "--manifest", self.abs_manifest, "--out", self.i("afile.txt")] + small,
            keys=[("afile.txt",)],
            unchanged=[self.i("afile.txt")],
            timeout=240,
        )
        self.add(
            K,
            "segment apply --run is a classification run",
            ["segment", "apply", "--run", self.run, self.cohort / "dicom" / "SYN001", "-o", self.o("seg_apply.csv")],
            keys=[("segment",), ("baseline_run",)],
            fresh=[self.o("seg_apply.csv")],
        )
        self.add(
            K,
            "segment apply --run missing",
            [
                "segment",
                "apply",
                "--run",
                self.i("noseg"),
                self.cohort / "dicom" / "SYN001",
                "-o",
                self.o("seg_nr.csv"),
            ],
            keys=[("noseg",)],
            fresh=[self.o("seg_nr.csv")],
        )

    def unfinished_run(self) -> Path:
        rd = self.copy_run("rd_unfinished")
        for f in ("metrics.json", "metrics.csv", "oof_predictions.csv", "run.json"):
            (rd / f).unlink()
        shutil.rmtree(rd / "fits/event")
        return rd

    # ------------------------------------------------------------------ running
    def run_case(self, c: Case) -> None:
        for p in c.unchanged:
            c.snapshot[str(p)] = tree_digest(p)
        cleanup = c.pre() if c.pre else None
        try:
            if self.zygote is not None:
                c.result = self.zygote.run(c.args, cwd=c.cwd or self.work, timeout=c.timeout)
            else:
                c.result = cli(c.args, cwd=c.cwd or self.work, timeout=c.timeout)
        finally:
            if cleanup:
                cleanup()
        c.outcome, c.why = classify(c)

    def run_all(self) -> None:
        t0 = time.time()
        done = [0]

        def one(c):
            self.run_case(c)
            done[0] += 1
            r = c.result
            print(
                f"[{done[0]:3d}/{len(self.cases)}] {c.outcome:12s} rc={r.rc:<3d} {r.seconds:5.1f}s  {c.kind}: {c.name}",
                flush=True,
            )

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            list(pool.map(one, self.cases))
        print(f"{len(self.cases)} cases in {time.time() - t0:.0f} s", flush=True)

    def verify_fidelity(self, n: int) -> None:
        """Rerun a sample of refused cases in a fresh interpreter: same exit status and message as the fork server."""
        pool = [
            c
            for c in self.cases
            if c.result and c.result.rc == 2 and not c.unchanged and not c.pre and c.kind != "run dir"
        ]
        picks = pool[:: max(1, len(pool) // n)][:n]
        norm = lambda t: re.sub(r"\s+", " ", t).strip()  # noqa: E731
        for c in picks:
            r = cli(c.args, cwd=c.cwd or self.work, timeout=c.timeout)
            same = (
                r.rc == c.result.rc
                and norm(r.stderr) == norm(c.result.stderr)
                and norm(r.stdout) == norm(c.result.stdout)
            )
            self.fidelity.append(
                {
                    "case": f"{c.kind}: {c.name}",
                    "same": same,
                    "fork_rc": c.result.rc,
                    "rc": r.rc,
                    "fork_first_line": first_error_line(c.result),
                    "first_line": first_error_line(r),
                }
            )
        bad = [f for f in self.fidelity if not f["same"]]
        print(
            f"fidelity: {len(self.fidelity) - len(bad)}/{len(self.fidelity)} sampled cases give the same exit "
            "status, stdout and stderr in a fresh interpreter" + "".join(f"\n  DIFFERS: {f}" for f in bad),
            flush=True,
        )

    # ------------------------------------------------------------------ kill -9
    def kill_tests(self) -> None:
        K = "kill -9"
        base = ["run", "--manifest", self.abs_manifest] + RUN_OPTS
        t_run = self.run_seconds
        plans = [[self.rng.uniform(1.0, t_run + 0.5)] for _ in range(4)]
        plans.append([self.rng.uniform(2.5, t_run), self.rng.uniform(2.5, t_run)])  # killed twice in a row
        for n, moments in enumerate(plans, 1):
            rd = self.outs / f"kill_{n}"
            log = {"dir": str(rd), "kills": []}
            for t in moments:
                p = subprocess.Popen(
                    LGENET + [str(a) for a in base + ["--out", rd]],
                    cwd=self.work,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    env={**os.environ, "OMP_NUM_THREADS": "1"},
                )
                time.sleep(t)
                finished = p.poll() is not None
                if not finished:
                    os.killpg(p.pid, signal.SIGKILL)
                out, err = p.communicate()
                self.extra_channels.append(
                    (f"kill {n} killed run", out.decode("utf-8", "replace") + err.decode("utf-8", "replace"))
                )
                state = sorted(str(f.relative_to(rd)) for f in rd.rglob("*") if f.is_file()) if rd.exists() else []
                log["kills"].append(
                    {
                        "after_s": round(t, 2),
                        "finished_before_kill": finished,
                        "files": len(state),
                        "temps": temp_files(rd),
                    }
                )
            # the killed directory must give clear answers, then resume to identical results
            probe = Case(
                K,
                f"kill {n}: predict on the killed run dir (killed at "
                + ", ".join(f"{k['after_s']:.1f}" for k in log["kills"])
                + " s)",
                ["predict", "--run", rd, "--task", "lge", self.cohort / "dicom" / "SYN001"],
                expect="clean",
            )
            self.run_case(probe)
            self.cases.append(probe)

            def same(case, res, rd=rd):
                for f, ref in (("oof_predictions.csv", self.ref_oof), ("metrics.csv", self.ref_metrics)):
                    if not (rd / f).is_file() or (rd / f).read_bytes() != ref:
                        return "WRONG-REASON", f"{f} differs from the uninterrupted run's after resuming"
                return None

            c = Case(
                K,
                f"kill {n}: rerun after kill -9 at "
                + ", ".join(f"{k['after_s']:.1f}" for k in log["kills"])
                + " s"
                + (" (finished before the kill)" if all(k["finished_before_kill"] for k in log["kills"]) else ""),
                base + ["--out", rd],
                expect="ok",
                check=same,
                temps=[rd],
            )
            self.run_case(c)
            self.cases.append(c)
            self.kill_log.append(log)
            print(f"kill {n}: {c.outcome} {c.why} {log['kills']}", flush=True)
        # lgenet synth killed, then rerun with --overwrite: identical files
        sd = self.outs / "kill_synth"
        t = self.rng.uniform(3.0, 5.0)
        p = subprocess.Popen(
            LGENET + ["synth", "--out", str(sd), "--n-patients", "12", "--image-size", "48", "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        time.sleep(t)
        fin = p.poll() is not None
        if not fin:
            os.killpg(p.pid, signal.SIGKILL)
        p.communicate()

        def same_cohort(case, res):
            a = {k: v for k, v in tree_digest(sd).items()}
            b = {k: v for k, v in tree_digest(self.cohort).items()}
            if a != b:
                diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                return "WRONG-REASON", f"cohort differs from an uninterrupted synth: {', '.join(diff[:5])}"
            return None

        c = Case(
            K,
            f"synth killed at {t:.1f} s{' (had finished)' if fin else ''}, rerun with --overwrite",
            ["synth", "--out", sd, "--n-patients", "12", "--image-size", "48", "-q", "--overwrite"],
            expect="ok",
            check=same_cohort,
            temps=[sd],
        )
        self.run_case(c)
        self.cases.append(c)
        # move the synthetic DICOMs out of the scanned outputs
        shutil.move(str(sd), str(self.inp / "kill_synth_cohort"))
        # lgenet report killed while it writes figures and CAMs, then rerun
        rd = self.copy_run("kill_report")
        t = self.rng.uniform(4.0, 10.0)
        p = subprocess.Popen(
            LGENET + ["report", str(rd)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        time.sleep(t)
        fin = p.poll() is not None
        if not fin:
            os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        self.extra_channels.append(("killed report", (out + err).decode("utf-8", "replace")))
        left = temp_files(rd)

        def report_ok(case, res, rd=rd):
            if not (rd / "report.html").is_file():
                return "HALF-WRITTEN", "no report.html after the rerun"
            return None

        c = Case(
            K,
            f"report killed at {t:.1f} s{' (had finished)' if fin else ''} ({len(left)} temp file(s) left), rerun",
            ["report", rd],
            expect="ok",
            check=report_ok,
            temps=[rd],
            timeout=240,
        )
        self.run_case(c)
        self.cases.append(c)

    # ------------------------------------------------------------------ identifiers
    def scan_identifiers(self) -> list[dict]:
        idents = [(v, v.encode().lower()) for v in self.identifiers]
        hits = []
        big = 16 << 20

        def find(data: bytes) -> tuple[str, int, int] | None:
            low = data.lower()
            for v, b in idents:
                start = 0
                while True:
                    k = low.find(b, start)
                    if k < 0:
                        break
                    # all-digit identifiers (dates) only count when not part of a longer number
                    if not v.isdigit() or (
                        (k == 0 or not low[k - 1 : k].isdigit()) and not low[k + len(b) : k + len(b) + 1].isdigit()
                    ):
                        return v, k, k + len(b)
                    start = k + 1
            return None

        def scan(label: str, data: bytes, case: Case | None = None):
            if len(data) > big:  # weights files: their header and tail (tensor bytes cannot hold DICOM text)
                data = data[: big // 2] + b"\n" + data[-big // 2 :]
            got = find(data)
            if got:
                v, a, b = got
                ctx = data[max(0, a - 40) : b + 40].decode("utf-8", "replace")
                hits.append({"where": label, "identifier": v, "context": ctx})
                if case is not None and case.outcome == "OK":
                    case.outcome, case.why = "IDENTIFIER", f"identifier {v!r} on {label.split(': ')[-1]}"

        for c in self.cases:
            if c.result:
                scan(f"{c.kind}: {c.name}: stdout", c.result.stdout.encode(), c)
                scan(f"{c.kind}: {c.name}: stderr", c.result.stderr.encode(), c)
        for label, text in self.extra_channels:
            scan(label, text.encode())
        n = 0
        for f in sorted(self.outs.rglob("*")):
            if f.is_file() and not f.is_symlink():
                n += 1
                scan(f"file {f.relative_to(self.work)}", f.read_bytes())
        print(
            f"identifier scan: {len(self.identifiers)} strings, {n} output files, "
            f"{sum(1 for c in self.cases if c.result) * 2 + len(self.extra_channels)} stdout/stderr channels: "
            f"{len(hits)} hit(s)",
            flush=True,
        )
        return hits

    # ------------------------------------------------------------------ report
    def short(self, text: str) -> str:
        text = text.replace(str(self.work), "$TMP").replace(str(REPO), ".").replace(sys.executable, "python")
        return text

    def command(self, c: Case) -> str:
        return self.short(
            "lgenet " + " ".join(str(a) if re.fullmatch(r"[\w./$:,=+-]+", str(a)) else repr(str(a)) for a in c.args)
        )

    def table(self) -> str:
        rows = ["| # | kind | case | command | exit | outcome | message |", "|---|---|---|---|---|---|---|"]
        for n, c in enumerate(self.cases, 1):
            r = c.result
            msg = first_error_line(r)
            if c.why:
                msg = f"**{c.why}** — {msg}"
            msg = self.short(msg)
            if len(msg) > 230:
                msg = msg[:227] + "..."
            cmd = self.command(c)
            if len(cmd) > 160:
                cmd = cmd[:157] + "..."
            esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
            rows.append(f"| {n} | {c.kind} | {esc(c.name)} | `{esc(cmd)}` | {r.rc} | {c.outcome} | {esc(msg)} |")
        return "\n".join(rows)


#: the doc's section on ``cases_outputs`` (issue 26: 1, 3, 4, 7)
OUTPUTS_DOC = """## Outputs: never over an input, one file per patient, no stale outputs, checks first (since 0.2.0)

`cases_outputs` (kind `outputs`) trains a 1-epoch segmentation run on the baseline cohort and tries what
issue 26 found: `segment apply`/`segment train --out` equal to the cohort folder, `segment apply --out`
equal to (or inside) the segmentation run, `-o` or `import nifti-masks --out` pointing at an input file;
patient IDs that map to one file name (`SYN0é1`/`SYN0è1`, `SYN 01`/`SYN_01`, `Pat1`/`pat1`) and bad
`--ids` (repeated, empty, too few, colliding); `segment apply` into a folder holding another apply job or
other files, and the same job again (resumed); a bad row 5 or 9; `--executor ray` that cannot start;
`--families roi` with a fold model missing; `report` on a truncated `outcomes.json` or
`oof_predictions.csv`. Each must be refused with the reason before anything is written, its inputs
unchanged (`runs.paths.refuse_overwrite`, `conventions.names.check_unique_names`, the `apply.json` job
record of `segment apply`, `runs.executors.check_executor`).

"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for results.json and table.md")
    ap.add_argument("--quick", action="store_true", help="skip the kill -9 part")
    ap.add_argument("--jobs", type=int, default=2, help="cases run at a time (default 2)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random inputs and kill moments")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    ap.add_argument(
        "--exec",
        dest="exec_mode",
        choices=["fork", "subprocess"],
        default="fork",
        help="fork: each case is a child forked from one process that imported lgenet once (default); "
        "subprocess: each case is a fresh `python -m lgenet` (slower)",
    )
    ap.add_argument(
        "--verify",
        type=int,
        default=8,
        help="with --exec fork: rerun this many refused cases in a fresh interpreter and compare",
    )
    ap.add_argument("--doc", default=str(REPO / "docs" / "bad-inputs.md"), help="Markdown file to write the table to")
    ap.add_argument("--no-doc", action="store_true")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lgenet-bad-inputs-"))
    t0 = time.time()
    h = Harness(out, work, a.quick, a.jobs, a.seed, a.exec_mode)
    try:
        h.baseline()
        t1 = time.time()
        h.define()
        print(f"{len(h.cases)} cases defined in {time.time() - t1:.0f} s", flush=True)
        if a.exec_mode == "fork":
            h.zygote = Zygote(work / "io")
        h.run_all()
        if h.zygote is not None:
            h.zygote.close()
            h.zygote = None
            if a.verify:
                h.verify_fidelity(a.verify)
        if not a.quick:
            t1 = time.time()
            h.kill_tests()
            print(f"kill -9 part: {time.time() - t1:.0f} s", flush=True)
        t1 = time.time()
        hits = h.scan_identifiers()
        print(f"identifier scan: {time.time() - t1:.0f} s", flush=True)
    finally:
        if h.zygote is not None:
            h.zygote.close()
        h.release_immutable()
    counts = {k: sum(1 for c in h.cases if c.outcome == k) for k in OUTCOMES}
    table = h.table()
    total = time.time() - t0
    print()
    print(table)
    print()
    print("counts: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" (of {len(h.cases)}); {total:.0f} s")
    if hits:
        print("identifier hits:")
        for x in hits[:50]:
            print(f"  {x['identifier']!r} in {x['where']}: ...{x['context']!r}...")
    results = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "seconds": round(total),
        "quick": a.quick,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "counts": counts,
        "identifier_hits": hits,
        "kill": h.kill_log,
        "exec": a.exec_mode,
        "fidelity": h.fidelity,
        "cases": [
            {
                "kind": c.kind,
                "name": c.name,
                "command": h.command(c),
                "exit": c.result.rc,
                "outcome": c.outcome,
                "why": h.short(c.why),
                "first_error_line": h.short(first_error_line(c.result)),
                "note": c.note,
                "seconds": round(c.result.seconds, 1),
                "stdout": h.short(c.result.stdout)[-4000:],
                "stderr": h.short(c.result.stderr)[-4000:],
            }
            for c in h.cases
        ],
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    (out / "table.md").write_text(table + "\n")
    if not a.no_doc:
        date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
        summary = ", ".join(f"{k} {v}" for k, v in counts.items())
        doc = f"""# Bad inputs: what the CLI does with them

`bench/bad_inputs.py` builds {len(h.cases)} broken, degenerate or hostile inputs (corrupt and non-image
files, broken manifests, bad options, unwritable outputs, damaged run directories, another dataset's
file layout, kill -9 at random moments) in a temporary folder from a tiny valid baseline (`lgenet synth`
12 patients at 48 px; a 2-fold `tiny` run at 32 px, 1 epoch, `--threads 1`), runs each through the real
CLI in its own process, and classifies the outcome (OK, TRACEBACK, SILENT, WRONG-REASON, HALF-WRITTEN,
IDENTIFIER; definitions in the script's docstring). The kill -9 part kills `lgenet run` at random moments
and requires the rerun's `oof_predictions.csv` and `metrics.csv` to be byte-identical to the
uninterrupted run's (and a killed `lgenet synth` rerun with `--overwrite` to give identical files).
Finally stdout, stderr, run.log and every file written are scanned for the fake identifiers
`lgenet synth` plants in the DICOM headers.

    python bench/bad_inputs.py --out /tmp/badinputs            # everything, ~{max(1, round(total / 60))} min
    python bench/bad_inputs.py --out /tmp/badinputs --quick    # without the kill -9 part
    python bench/bad_inputs.py --out /tmp/badinputs --exec subprocess   # a fresh `python -m lgenet` per case

Execution: {
            "each case in a fresh `python -m lgenet`"
            if a.exec_mode == "subprocess"
            else "each case in its own child process forked from a server that imported lgenet once (what `python -m "
            "lgenet` runs, without the ~4 s start-up); "
            + str(sum(f["same"] for f in h.fidelity))
            + "/"
            + str(len(h.fidelity))
            + " sampled refusals gave the same exit status, stdout and stderr in a fresh "
            "`python -m lgenet`; the baseline and kill -9 parts always use `python -m lgenet`"
        }.

*Date:* {date}. *Machine:* {os.cpu_count()} CPU cores ({platform.machine()}, Python {platform.python_version()}),
no GPU. *Mode:* {"--quick (no kill -9)" if a.quick else "full (with kill -9)"}; {total:.0f} s in all.

**Counts:** {summary} (of {len(h.cases)} cases). Identifier hits: {len(hits)}.

{OUTPUTS_DOC}## Since 0.2.0: another cohort's segmentation, clear errors, covariates that carry nothing (`errors`)

The `errors` cases (issue 26, defects 2, 8, 9 and part of 11): `outcomes --covariates` with an all-blank, a text,
a renamed copy of `lge_percent` or a monotone transform of it (refused, naming the column: compared by value,
not only by name; a default covariate that carries nothing is dropped with a note in `outcomes.json` and the
log); `outcomes --folds 1`; `run --tasks event,lge` with a misspelled `lge_precent` column (refused, naming
the closest column; at the default task list the task is skipped with a warning); `report` on a truncated
`oof_predictions.csv`, `metrics.json` or `outcomes.json` (refused, naming the file); `outcomes` run from
another folder on a run whose `config.yaml` records the manifest relative (refused, suggesting `--manifest`;
runs since 0.2.0 record it resolved). A segmentation run whose `inputs.json` records other image content
(`image_sha256`: the hash of each patient's image file or series folder) for the same patient IDs is refused
by `run --families burden` and `outcomes --segmentation-run`, naming the rows (tests/test_hardening_errors.py).

## Geometry, labels and degenerate inputs (`cases_geometry`, since 0.2.0)

- A NIfTI voxel size (pixdim) of 0, negative or NaN is refused naming the file (nibabel reads it as 1 mm);
  for an in-plane size, `segment train`/`apply` take `--pixel-spacing MM` instead (noted per patient).
- A mask whose voxel grid lies elsewhere in space than its image's (shifted, mirrored, rotated, another voxel
  size; tolerance 1e-3 of a voxel) is refused by `import nifti-masks` and `segment train`, naming both files
  and the difference.
- A DICOM series with a missing slice (a step > 1.5x the median step) is read with a warning naming the
  series; `segment apply` writes it in the `notes` column. A one-slice stack is noted the same way (its
  whole-LV measures come from that slice).
- The import sidecar records the LV cavity (`cavity_labels`: the other labels inside the myocardium's outline),
  so `--other-labels 0,200` keeps a cavity class in `segment train`; `segment apply` takes `--labels` (a
  convention name or a `cavity=..` spec) and reads the sidecar as `train` does.
- `import` refuses an image with any NaN/inf voxel; an ICC CI of fewer than 10 patients is reported as not
  estimable; `segment apply` where no LV is found writes `status` "no LV found", empty measures and says so.

## Bundles, the viewer and the correction round trip (`model`, `view`, `segment measure`, since 0.3.0)

On a 1-epoch segmentation run: `model export` (valid; of a folder that is no run; `--out` without `.lgenet` or
inside the run), `model info` (valid; of a random file; of a bundle with one flipped byte), `segment apply
--model` of a missing file and with both `--run` and `--model`, `view` (valid; of a folder without a
segmentation; `--static` into the run it reads), and `segment measure` with a missing masks folder, masks for
no patient (with and without `--labels`) and `--out` equal to the masks folder.

## Classifier bundles (`model export` of an `lgenet run`, `predict --model`, `model evaluate`, since 0.3.0)

`cases_classifier_bundles` (kind `classifier bundle`), on the baseline classifier run: `model export` (valid, with
no local path or DICOM identifier in the bundle; `--task xyz`; `--model nope/none`; `--task` for a segmentation run
and for an unfinished run), `predict --model` (valid, its probability equal to `predict --run`'s; a two-task bundle
without `--task`; a one-task bundle with the other task; a missing file; with `--run` too; a segmentation bundle; a
bundle with one flipped byte in `models/lge/fold0.safetensors`), `segment apply --model` of a classifier bundle, and
`model evaluate` on a manifest without `lge_percent` and with `event` blank, and with `--out` equal to its input.

## Study intake (`import dicom`, since 0.3.0)

The `import dicom` cases take the baseline cohort's DICOM series as an archive of studies: valid runs (again into
the same `--out`, which replaces its own series folder; with `--id-map` and `--link copy`, written outside the
scanned outputs because they hold identifiers by design); a file or a missing folder as STUDIES_DIR; an empty
folder and one without DICOM; `--out` or `--id-map` inside the archive; `--out` without `.csv`; a
`<stem>_series` folder that another program wrote; `--min-slices 0` and 99; `--prefer bogus`; and an archive with
every series twice, a truncated and a garbage file (imported, with the copies and the broken files counted).

Paths: `$TMP` is the temporary workspace. `message` is the first error line (or the reason of the
classification in bold, then that line).

{table}
"""
        Path(a.doc).parent.mkdir(parents=True, exist_ok=True)
        Path(a.doc).write_text(doc)
        print(f"table written to {a.doc}")
    if a.keep:
        print(f"workspace kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if counts["OK"] == len(h.cases) and not hits else 1


if __name__ == "__main__":
    sys.exit(main())
