"""ObjectStore: the store side of ``--store``, on moto's S3 server and on a local folder."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from s3server import BUCKET, S3

from batchgen.api.objectstore import ObjectStore
from batchgen.errors import DiskError

DATA = b"\x00\x00\x00\x08ftyp" * 1000
DIGEST = hashlib.sha256(DATA).hexdigest()


def upload(store: ObjectStore, name: str, data: bytes = DATA) -> None:
    video = store.upload(name)
    video.write(data)
    video.commit(hashlib.sha256(data).hexdigest(), len(data))


def test_a_committed_video_is_stored_with_its_size_and_hash(s3: S3) -> None:
    """After commit the key holds the bytes with their sha256; an abandoned upload leaves
    nothing; a name never written is None."""
    store = ObjectStore.open(s3.url("p"))
    upload(store, "videos/a.mp4")
    dropped = store.upload("videos/b.mp4")
    dropped.write(DATA)
    dropped.abandon()
    assert store.stored("videos/a.mp4") == (len(DATA), DIGEST)
    assert store.stored("videos/b.mp4") is None
    assert s3.keys() == ["p/videos/a.mp4"]
    assert store.verified({"videos/a.mp4": (len(DATA), DIGEST), "videos/b.mp4": (1, "x")}) == {
        "videos/a.mp4"
    }


def test_stale_temporary_keys_go_and_fresh_ones_stay(s3: S3) -> None:
    """remove_stale deletes the temporary keys older than the limit, never videos."""
    store = ObjectStore.open(s3.url("p"))
    upload(store, "videos/a.mp4")
    s3.client.put_object(Bucket=BUCKET, Key="p/videos/.b.mp4.0123abcd.part", Body=b"half")
    now = time.time()
    assert store.remove_stale("videos", older_than=60, now=now + 10) == 0
    assert store.remove_stale("videos", older_than=60, now=now + 120) == 1
    assert s3.keys() == ["p/videos/a.mp4"]


def test_a_local_store_writes_whole_files_and_sidecars(tmp_path: Path) -> None:
    """On a file:// store, text files and videos appear whole (no temporary file left) and
    each video has its sha256 sidecar; a store path that cannot be written is a DiskError."""
    root = tmp_path / "store"
    store = ObjectStore.open(root.as_uri())
    store.probe()
    store.write("run.json", b"{}\n")
    upload(store, "videos/a.mp4")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "run.json",
        "videos",
        "videos/a.mp4",
        "videos/a.mp4.sha256",
    ]
    assert store.stored("videos/a.mp4") == (len(DATA), DIGEST)
    (root / "videos" / "b.mp4").mkdir()
    with pytest.raises(DiskError, match=r"cannot write file://.*/videos/b\.mp4"):
        upload(store, "videos/b.mp4")
