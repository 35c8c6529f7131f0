"""Results and checkpoints on disk, keyed by what made them: the config and the code.

Why: every chapter shares pre-trained bases and many experiments share stage-1 models; a second
request for the same thing must train nothing, a run killed half-way must not leave a file that a
later run would trust, and a result made by older code must not be reused after the code changed.

- **Keys follow the code.** An entry's folder is a hash of its config, the library version and a
  fingerprint of the library source its computation depends on (:func:`code_fingerprint`: the
  modules of ``elasticity_lab`` that the computing module imports, transitively, found with
  :mod:`ast`; comments and docstrings do not count). Editing :mod:`elasticity_lab.lm.training` makes
  new keys for pre-training and every experiment; editing a plot module changes none.
- **Writes are atomic.** Every file goes to a temporary name in the same folder, then
  ``os.replace``: a reader sees the old file or the new one, never half of one.
- **Reads are verified.** Every file of an entry has a SHA-256 beside it (``<name>.sha256``); a
  file that is missing, truncated or changed is reported in one line (:class:`CacheDamage`:
  path and what is wrong) and its result is computed again.
- **One process computes an entry.** A second process asking for an entry that another one is
  computing waits for its lock (``.lock`` in the entry, an ``flock`` that the system releases if
  the holder dies, so a lock is never stale) and then reads the result.
- **Under a launcher only the main rank touches the cache** (:func:`_cached_on_ranks`): it reads, locks and
  writes; the other ranks compute alongside it and receive its decisions and results.

The cache lives in ``~/.cache/elasticity_lab`` unless ``$ELASTICITY_CACHE`` names another folder;
``python -m elasticity_lab cache info`` describes it and ``cache clear`` empties it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from elasticity_lab import __version__
from elasticity_lab.core import ranks
from elasticity_lab.core.fingerprint import caller_module, code_fingerprint, module_of

CACHE_ENV_VAR = "ELASTICITY_CACHE"
CHECKSUM_SUFFIX = ".sha256"
LOCK_NAME = ".lock"
CONFIG_NAME = "config.json"


def cache_dir() -> Path:
    """The cache root (created on first use): ``$ELASTICITY_CACHE`` or ``~/.cache/elasticity_lab``."""
    root = os.environ.get(CACHE_ENV_VAR, "").strip()
    path = Path(root).expanduser() if root else Path.home() / ".cache" / "elasticity_lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- keys


def _canonical(obj: Any) -> Any:
    """Make tuples, dataclass dicts and numpy scalars JSON-stable for hashing."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return obj.item()
    return obj


def config_hash(config: dict[str, Any], *, length: int = 16) -> str:
    """A hex digest of ``config`` plus the library version (not the code): the name of a shipped base's folder."""
    payload = json.dumps({"config": _canonical(config), "version": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def entry_hash(config: dict[str, Any], module: str, *, length: int = 16) -> str:
    """A hex digest of ``config``, the library version and the code of ``module``: a cache entry's folder name."""
    payload = json.dumps({"config": _canonical(config), "version": __version__, "code": code_fingerprint(module)},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def entry_dir(namespace: str, config: dict[str, Any], *, code: str | None = None) -> Path:
    """The folder of one cache entry, ``<cache>/<namespace>/<hash>``, with its config written beside.

    ``code``: the module whose computation fills the entry (default: the caller's module); the
    key includes :func:`code_fingerprint` of it.
    """
    module = code or caller_module()
    path = cache_dir() / namespace / entry_hash(config, module)
    path.mkdir(parents=True, exist_ok=True)
    cfg = path / CONFIG_NAME
    if not cfg.exists():
        record = {"config": _canonical(config), "version": __version__,
                  "code": {"module": module, "fingerprint": code_fingerprint(module)}}
        atomic_write_text(cfg, json.dumps(record, indent=2, sort_keys=True, default=str))
    return path


# --------------------------------------------------------------------------- damage


class CacheDamage(Exception):
    """A cache file that is missing, truncated, changed or unreadable: ``str()`` is one line, path and problem."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"{self.path}: {problem}")


def report_damage(err: CacheDamage, action: str = "computing it again") -> None:
    """Print one line to stderr: which file is damaged, how, and what happens now."""
    print(f"elasticity_lab cache: damaged entry {err}; {action}.", file=sys.stderr, flush=True)


def checksum_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_checksum(path: Path, digest: str, size: int) -> None:
    atomic_write_text(checksum_path(path), f"{digest} {size}\n")


def read_verified(path: str | os.PathLike[str], sha256: str | None = None) -> bytes:
    """The bytes of ``path`` after checking them against ``sha256`` (default: its ``.sha256`` file).

    Raises :class:`CacheDamage` (one line: path and problem) if the file or its checksum is
    missing, or the bytes differ (truncated: fewer bytes than recorded; otherwise changed).
    """
    path = Path(path)
    size: int | None = None
    if sha256 is None:
        side = checksum_path(path)
        if not side.exists():
            if not path.exists():
                raise CacheDamage(path, "missing")
            raise CacheDamage(path, f"no checksum beside it ({side.name} is missing)")
        try:
            digest_text, size_text = side.read_text("utf-8").split()
            sha256, size = digest_text, int(size_text)
            if len(sha256) != 64:
                raise ValueError
        except (ValueError, UnicodeDecodeError):
            raise CacheDamage(path, f"its checksum file {side.name} is unreadable") from None
    if not path.exists():
        raise CacheDamage(path, "missing (its checksum is there)")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        if size is not None and len(data) < size:
            raise CacheDamage(path, f"truncated: {len(data)} of {size} bytes")
        if size is not None and len(data) > size:
            raise CacheDamage(path, f"{len(data) - size} bytes longer than when it was written")
        raise CacheDamage(path, f"content changed: SHA-256 {digest[:12]}… instead of {sha256[:12]}…")
    return data


def _read(path: str | os.PathLike[str], verify: bool, sha256: str | None = None) -> bytes:
    if verify or sha256 is not None:
        return read_verified(path, sha256)
    if not Path(path).exists():
        raise CacheDamage(path, "missing")
    return Path(path).read_bytes()


def discard(*paths: str | os.PathLike[str]) -> None:
    """Remove files and their checksums (a damaged entry's files, so that the next write starts clean)."""
    for p in paths:
        for q in (Path(p), checksum_path(p)):
            q.unlink(missing_ok=True)


# --------------------------------------------------------------------------- atomic writes


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, checksum: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (flushed to disk first)."""

    def save(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_save_file(path, save, checksum=checksum)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, checksum: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), checksum=checksum)


def atomic_save_file(path: str | os.PathLike[str], save: Callable[[str], None], *, checksum: bool = False) -> Path:
    """Let ``save(tmp_path)`` write a file (e.g. ``safetensors.torch.save_file``), then move it into place.

    ``checksum=True`` also writes ``<name>.sha256`` (digest and size of what was written), which
    :func:`read_verified` checks.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save(tmp)
        if checksum:
            digest, size = sha256_file(tmp), os.path.getsize(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if checksum:
        _write_checksum(path, digest, size)
    return path


# --------------------------------------------------------------------------- typed files


def save_tensors(path: str | os.PathLike[str], tensors: dict[str, Any], metadata: dict[str, str] | None = None,
                 *, checksum: bool = True) -> Path:
    """Save a flat dict of tensors as safetensors, atomically (contiguous copies, shared storage split)."""
    from safetensors.torch import save_file

    flat = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    return atomic_save_file(path, lambda tmp: save_file(flat, tmp, metadata=metadata), checksum=checksum)


def load_tensors(path: str | os.PathLike[str], *, verify: bool = True, sha256: str | None = None) -> dict[str, Any]:
    """Load a safetensors file onto the CPU (no pickle is ever executed), checked against its checksum.

    ``verify=False`` reads a file without a ``.sha256`` beside it; ``sha256`` checks against a known
    digest (a shipped file's, from its manifest). Damage raises :class:`CacheDamage`.
    """
    from safetensors.torch import load

    data = _read(path, verify, sha256)
    try:
        return load(data)
    except Exception as err:  # noqa: BLE001 (safetensors raises its own SafetensorError, not an OSError)
        raise CacheDamage(path, f"not a readable safetensors file ({_first_line(err)})") from None


def save_torch_state(path: str | os.PathLike[str], state: Any, *, checksum: bool = True) -> Path:
    """Save an optimizer/resume state with ``torch.save`` atomically; read it back with :func:`load_torch_state`."""
    import torch

    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(path, buf.getvalue(), checksum=checksum)


def load_torch_state(path: str | os.PathLike[str], *, verify: bool = True) -> Any:
    """``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary pickles."""
    import torch

    data = _read(path, verify)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (unpickling errors come in many types)
        raise CacheDamage(path, f"not a readable torch state ({_first_line(err)})") from None


def save_json(path: str | os.PathLike[str], obj: Any, *, checksum: bool = True) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=float), checksum=checksum)


def load_json(path: str | os.PathLike[str], *, verify: bool = True) -> Any:
    data = _read(path, verify)
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CacheDamage(path, f"not valid JSON ({_first_line(err)})") from None


def save_table(path: str | os.PathLike[str], table: pd.DataFrame, *, checksum: bool = True) -> Path:
    """A DataFrame as JSON (orient ``split``: columns, index and values survive a round trip)."""
    return atomic_write_text(path, table.to_json(orient="split", double_precision=15), checksum=checksum)


def load_table(path: str | os.PathLike[str], *, verify: bool = True) -> pd.DataFrame:
    data = _read(path, verify)
    try:
        return pd.read_json(io.StringIO(data.decode("utf-8")), orient="split")
    except (ValueError, UnicodeDecodeError) as err:
        raise CacheDamage(path, f"not a readable table ({_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:160] if text else type(err).__name__


# --------------------------------------------------------------------------- locks


_held: dict[tuple[str, int], int] = {}
_held_guard = threading.Lock()


@contextlib.contextmanager
def entry_lock(folder: str | os.PathLike[str], *, poll_s: float = 0.2) -> Iterator[None]:
    """Hold ``<folder>/.lock`` while computing an entry; another process asking for it waits here.

    An ``flock`` (``msvcrt.locking`` on Windows) belongs to the open file: the system releases it
    when the holder exits or is killed, so a lock left by a dead process never blocks anyone.
    Re-entrant within one thread.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    me = (str(folder.resolve()), threading.get_ident())
    with _held_guard:
        if me in _held:
            _held[me] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                _held[me] -= 1
        return
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_lock(fd):
            holder = _lock_holder(fd)
            print(f"elasticity_lab cache: {folder} is being computed by another process{holder}; waiting for it.",
                  file=sys.stderr, flush=True)
            while not _try_lock(fd):
                time.sleep(poll_s)
        if hasattr(os, "pwrite"):  # who holds it, for the message of a process that waits
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        with _held_guard:
            _held[me] = 1
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(me, None)
    finally:
        os.close(fd)  # releases the lock


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _lock_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip() if hasattr(os, "pread") else ""
    except OSError:
        pid = ""
    return f" (pid {pid})" if pid.isdigit() else ""


# --------------------------------------------------------------------------- cached results

_MISSING = object()


def _try_load(path: Path, load: Callable[[Path], Any]) -> Any:
    """The stored result, or ``_MISSING`` if there is none; damage is reported in one line and the files removed."""
    if not path.exists() and not checksum_path(path).exists():
        return _MISSING
    try:
        return load(path)
    except CacheDamage as err:
        report_damage(err)
        discard(path)
        return _MISSING


def _cached(namespace: str, config: dict[str, Any], compute: Callable[[], Any], name: str,
            save: Callable[[Path, Any], Any], load: Callable[[Path], Any], refresh: bool, code: str) -> Any:
    if ranks.distributed():
        return _cached_on_ranks(namespace, config, compute, name, save, load, refresh, code)
    folder = entry_dir(namespace, config, code=code)
    path = folder / name
    if not refresh and (hit := _try_load(path, load)) is not _MISSING:
        return hit
    with entry_lock(folder):
        if not refresh and (hit := _try_load(path, load)) is not _MISSING:  # made by another process while we waited
            return hit
        result = compute()
        save(path, result)
    return result


def _cached_on_ranks(namespace: str, config: dict[str, Any], compute: Callable[[], Any], name: str,
                     save: Callable[[Path, Any], Any], load: Callable[[Path], Any], refresh: bool, code: str) -> Any:
    """:func:`_cached` for one rank of several (``accelerate launch``): the main rank decides, everyone computes.

    1. The main rank alone looks for the entry and, on a miss, takes its lock (waiting, as a lone process would, if
       another job is computing it) and looks again. Then it broadcasts what it found: a stored result, or "compute".
    2. On "compute" every rank calls ``compute()`` (its training all-reduces gradients, so all must), the main rank
       still holding the lock; the main rank saves, releases the lock, and broadcasts its result, so every rank
       continues with the very same numbers (and the same cache hits later on).

    Why this cannot deadlock. Only the main rank ever takes a lock; the other ranks hold none and never touch the
    cache's files (they need not even see its folder). A deadlock needs a cycle of processes each holding something
    the next waits for. The main rank, while it holds a lock, waits only for collectives with ranks that hold
    nothing; the other ranks wait only for the main rank (in a broadcast or a gradient all-reduce), never for a lock.
    So the only wait on a lock is the main rank's, before the first broadcast, for a lock held by another job; that
    job does not wait on this one, finishes, and the main rank then finds its result (a hit, broadcast as such).
    Nested entries (``compute`` asking for another cached result) follow the same steps inside, all ranks in step.
    The one limit: while the main rank waits for another job, the others wait in the broadcast, which gives up
    after the process group's timeout (30 minutes by default); a first run does not share its cache with a second.

    Why the decision is broadcast rather than each rank looking for itself: a rank that saw the file (written a
    moment ago by the main rank or another job) would skip a computation its peers run, and their collectives
    would wait for it for ever.
    """
    main = ranks.is_main()
    hit: Any = _MISSING
    lock = contextlib.ExitStack()
    path: Path | None = None
    if main:
        folder = entry_dir(namespace, config, code=code)
        path = folder / name
        if not refresh:
            hit = _try_load(path, load)
        if hit is _MISSING:
            lock.enter_context(entry_lock(folder))
            if not refresh and (hit := _try_load(path, load)) is not _MISSING:
                lock.close()
    found, stored = ranks.broadcast((hit is not _MISSING, None if hit is _MISSING else hit))
    if found:
        return stored
    with lock:
        result = compute()
        if main and path is not None:
            save(path, result)
    return ranks.broadcast(result)


def cached_table(namespace: str, config: dict[str, Any], compute: Callable[[], pd.DataFrame], *, refresh: bool = False,
                 code: str | None = None) -> pd.DataFrame:
    """``compute()`` once per config and code; later calls (and other chapters and processes) read the stored table.

    ``code``: the module whose source the result depends on (default: ``compute``'s module).
    """
    return _cached(namespace, config, compute, "table.json", save_table, load_table, refresh,
                   code or module_of(compute) or caller_module())


def cached_json(namespace: str, config: dict[str, Any], compute: Callable[[], Any], *, refresh: bool = False,
                code: str | None = None) -> Any:
    """Like :func:`cached_table` for any JSON-able result (summaries, fitted slopes)."""
    return _cached(namespace, config, compute, "result.json", save_json, load_json, refresh,
                   code or module_of(compute) or caller_module())


def is_cached(namespace: str, config: dict[str, Any], name: str = "result.json", *, code: str | None = None) -> bool:
    """Whether a sound stored result exists (a damaged one is reported, removed, and counts as absent)."""
    code = code or caller_module()
    if ranks.distributed():  # the main rank looks; every rank gets its answer (the same branch everywhere)
        return bool(ranks.broadcast(ranks.is_main() and _is_stored(namespace, config, name, code)))
    return _is_stored(namespace, config, name, code)


def _is_stored(namespace: str, config: dict[str, Any], name: str, code: str) -> bool:
    path = entry_dir(namespace, config, code=code) / name
    return _try_load(path, lambda p: read_verified(p)) is not _MISSING


# --------------------------------------------------------------------------- info and clear


def _entries(root: Path) -> Iterator[tuple[str, Path]]:
    """``(namespace, folder)`` of every entry: ``<root>/<namespace>/<hash>`` with a ``config.json``."""
    for ns in sorted(p for p in root.iterdir() if p.is_dir()):
        for entry in sorted(p for p in ns.iterdir() if p.is_dir()):
            if (entry / CONFIG_NAME).is_file():
                yield ns.name, entry


def _size(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def cache_info() -> dict[str, Any]:
    """Where the cache is, its size, and its entries per kind (namespace), with how many the current code would not use."""
    root = cache_dir()
    kinds: dict[str, dict[str, Any]] = {}
    for ns, entry in _entries(root):
        k = kinds.setdefault(ns, {"entries": 0, "stale": 0, "bytes": 0})
        k["entries"] += 1
        k["bytes"] += _size(entry)[1]
        try:
            record = json.loads((entry / CONFIG_NAME).read_text("utf-8"))
            code = record.get("code") or {}
            stale = code.get("fingerprint") != code_fingerprint(code["module"]) or record.get("version") != __version__
        except (ValueError, KeyError, OSError, SyntaxError):
            stale = True
        k["stale"] += int(stale)
    n_files, n_bytes = _size(root)
    return {"path": str(root), "from": CACHE_ENV_VAR if os.environ.get(CACHE_ENV_VAR, "").strip() else "default",
            "files": n_files, "bytes": n_bytes, "entries": sum(k["entries"] for k in kinds.values()), "kinds": kinds}


def clear_cache(kinds: list[str] | None = None) -> dict[str, Any]:
    """Remove every entry (or those of ``kinds``); files that are not cache entries are left alone."""
    root = cache_dir()
    removed: dict[str, int] = {}
    n_bytes = 0
    for ns, entry in list(_entries(root)):
        if kinds and ns not in kinds:
            continue
        n_bytes += _size(entry)[1]
        shutil.rmtree(entry, ignore_errors=True)
        removed[ns] = removed.get(ns, 0) + 1
        with contextlib.suppress(OSError):
            entry.parent.rmdir()  # only if now empty
    return {"path": str(root), "removed": removed, "bytes": n_bytes, "files_left": _size(root)[0]}


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
