"""The worker programs of ``transfer.py``, each run as ``python -c CODE args...`` in a fresh
interpreter, so that every figure includes start-up as a CLI call's would.

The registry workers count the files they hash and the obstore calls they make (wrapping
obstore's functions: negligible cost, no botocore import) and print one ``STATS {json}`` line,
so the report can prove what a step really did. The boto3 workers count their calls through
botocore's event hook (botocore is imported there anyway). Requests and bytes on the wire are
counted by the server (``server_traffic``); the client's counts name the calls (and tell the
server's GETs from HEADs, which it counts as GETs).
"""
_REG_PRELUDE = r'''
import json, os, sys
_calls, _hashed = [], []  # list.append is atomic under the GIL: no lock, no contention
def _stats():
    requests = {}
    for name in _calls:
        requests[name] = requests.get(name, 0) + 1
    return {"hashed_files": len(_hashed), "hashed_bytes": sum(_hashed), "requests": requests}
if os.environ.get("BENCH_NO_COUNT"):
    import registry
else:
    import importlib.util
    if importlib.util.find_spec("backends.s3_obstore") is None or os.environ.get("REGISTRY_S3_ENGINE") == "botocore":
        # older code, or the botocore engine: count through botocore's hook (importing botocore
        # here costs the worker ~0.15 s of start-up, so it is done only when botocore is in use)
        import backends.s3 as _s3
        _maker = "make_client" if hasattr(_s3, "make_client") else "_make_client"  # newer / older code
        _make = getattr(_s3, _maker)
        def _count(model, **kw):
            _calls.append(model.name)
        def _make_counted():
            client = _make()
            client.meta.events.register("before-call.s3", _count)
            return client
        setattr(_s3, _maker, _make_counted)
    try:  # the obstore engine: count its calls (a multipart upload counts once, as "MultipartUpload")
        import obstore as _ob
        def _counted(fn, label):
            def call(*a, **k):
                _calls.append("MultipartUpload" if label == "PutObject" and k.get("use_multipart") else label)
                return fn(*a, **k)
            return call
        for _fn, _label in (("get", "GetObject"), ("get_range", "GetObject(range)"), ("head", "HeadObject"),
                            ("put", "PutObject"), ("delete", "DeleteObject"), ("list", "ListObjectsV2"),
                            ("list_with_delimiter", "ListObjectsV2"), ("get_ranges", "GetObject(ranges)"),
                            ("get_async", "GetObject"), ("get_range_async", "GetObject(range)"),
                            ("get_ranges_async", "GetObject(ranges)"), ("head_async", "HeadObject"),
                            ("put_async", "PutObject")):
            if hasattr(_ob, _fn):
                setattr(_ob, _fn, _counted(getattr(_ob, _fn), _label))
    except ImportError:
        pass
    import importlib
    import registry, registry.hashing as _h
    _sha_file = _h.sha256_file
    def _counted_sha(path):
        _hashed.append(os.path.getsize(path))
        return _sha_file(path)
    for _name in ("registry.hashing", "registry.blobs", "registry.cache", "registry.download_root"):
        try:
            _module = importlib.import_module(_name)
        except ImportError:
            continue
        if hasattr(_module, "sha256_file"):
            _module.sha256_file = _counted_sha
    import registry.chunking as _chunking  # a large file cut while hashed (format 2) is hashed too
    _chunk_file = _chunking.chunk_file
    def _counted_chunk_file(path, **kw):
        _hashed.append(os.path.getsize(path))
        return _chunk_file(path, **kw)
    _chunking.chunk_file = _counted_chunk_file
STATS = {}
'''

REG_LOG = _REG_PRELUDE + r'''
src, name = sys.argv[1], sys.argv[2]
with registry.init(project="bench", job_type="bench") as run:
    art = registry.Artifact(name, type="dataset")
    art.add_dir(src)
    run.log_artifact(art)
    STATS["version"] = art.version
    STATS["created"] = art.created
    STATS["schema"] = getattr(getattr(art, "record", None), "schema_version", None)
print("STATS " + json.dumps({**_stats(), **STATS}))
'''

REG_DOWNLOAD = _REG_PRELUDE + r'''
name, dest = sys.argv[1], sys.argv[2]
art = registry.Api().artifact(f"bench/{name}:latest")
if hasattr(art, "pull"):  # the download report (older code kept it in art.last_download)
    report = art.pull(dest)
else:
    art.download(dest)
    report = art.last_download
STATS["version"] = art.version
STATS["schema"] = getattr(getattr(art, "record", None), "schema_version", None)
STATS["placed"] = len(report.placed)
STATS["unchanged"] = len(report.unchanged)
print("STATS " + json.dumps({**_stats(), **STATS}))
'''

REG_CLI = _REG_PRELUDE + r'''
from registry.cli.group import main
try:
    main(sys.argv[1:])  # exits through SystemExit, as the console script does
finally:
    print("STATS " + json.dumps(_stats()), flush=True)
'''

_BOTO_PRELUDE = r'''
import json, os, sys
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config
SMALL = 8 * 1024 * 1024
s3 = boto3.client("s3", config=Config(max_pool_connections=16))
_calls = []
s3.meta.events.register("before-call.s3", lambda model, **kw: _calls.append(model.name))
def _stats(files):
    requests = {}
    for name in _calls:
        requests[name] = requests.get(name, 0) + 1
    return "STATS " + json.dumps({"files": files, "requests": requests})
'''

BOTO_UP = _BOTO_PRELUDE + r'''
bucket, prefix, root = sys.argv[1], sys.argv[2], sys.argv[3]
files = []
for d, _, names in os.walk(root):
    for n in names:
        p = os.path.join(d, n)
        files.append((p, prefix + "/" + os.path.relpath(p, root).replace(os.sep, "/")))
def one(item):
    path, key = item
    if os.path.getsize(path) < SMALL:
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=key, Body=f)
    else:
        s3.upload_file(path, bucket, key)
with ThreadPoolExecutor(16) as pool:
    list(pool.map(one, files))
print(_stats(len(files)))
'''

BOTO_DOWN = _BOTO_PRELUDE + r'''
bucket, prefix, dest = sys.argv[1], sys.argv[2], sys.argv[3]
objects = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
    objects += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
def one(item):
    key, size = item
    path = os.path.join(dest, key[len(prefix) + 1:])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if size < SMALL:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with open(path, "wb") as f:
            for chunk in body.iter_chunks(1 << 20):
                f.write(chunk)
    else:
        s3.download_file(bucket, key, path)
with ThreadPoolExecutor(16) as pool:
    list(pool.map(one, objects))
print(_stats(len(objects)))
'''
