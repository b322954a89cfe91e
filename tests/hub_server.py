"""A real HTTP server on 127.0.0.1 that serves files the way the Hugging Face Hub does, with faults.

huggingface_hub's metadata call (HEAD /{repo}/resolve/{revision}/{file}) needs X-Repo-Commit, an
ETag (X-Linked-Etag for LFS files: the sha256) and a size (X-Linked-Size); an LFS file answers
302 with a Location on a CDN. Here the CDN is /cdn/{sha256} on the same server, which honours
Range and can misbehave on demand: drop the connection mid-file, truncate (half or empty body), send wrong bytes,
stall past the client's timeout, or answer 503. Every request is recorded for assertions.

Also here: tiny real model files the server can serve (a GGUF, an ONNX classifier folder).
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Blob:
    data: bytes
    sha256: str


class HubServer:
    """Start with `with HubServer() as hub:`; `hub.url` is what HF_ENDPOINT should be."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, str]] = {}  # repo -> filename -> sha256
        self.blobs: dict[str, Blob] = {}
        self.tokens: dict[str, str] = {}  # gated repo -> the token it accepts
        self.faults: dict[str, list[str]] = {}  # sha256 -> faults, one used per GET of that blob
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.chunk_delay = 0.0
        self.stall_s = 3.0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        # LFS files redirect to a CDN on another host name, as on the Hub (so no token travels there)
        self.cdn_url = f"http://localhost:{self._httpd.server_address[1]}"

    def add(self, repo: str, filename: str, data: bytes, token: str | None = None) -> str:
        sha = hashlib.sha256(data).hexdigest()
        self.repos.setdefault(repo, {})[filename] = sha
        self.blobs[sha] = Blob(data, sha)
        if token:
            self.tokens[repo] = token
        return sha

    def fault(self, sha: str, *kinds: str) -> None:
        self.faults.setdefault(sha, []).extend(kinds)

    def gets(self, sha: str) -> list[dict[str, str]]:
        """Headers of every GET of the blob (to see Range requests)."""
        return [h for m, p, h in self.requests if m == "GET" and p == f"/cdn/{sha}"]

    def _next_fault(self, sha: str) -> str | None:
        with self._lock:
            queue = self.faults.get(sha) or []
            return queue.pop(0) if queue else None

    def __enter__(self) -> "HubServer":
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _handler(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet test output
            pass

        def _record(self) -> None:
            with hub._lock:
                hub.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))

        def _reply(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._record()
            self._route()

        def do_GET(self) -> None:
            self._record()
            self._route()

        def _route(self) -> None:
            parts = self.path.split("?")[0].lstrip("/").split("/")
            if len(parts) == 2 and parts[0] == "cdn":
                return self._blob(parts[1])
            if len(parts) >= 4 and parts[:2] == ["api", "models"]:
                return self._model_info(f"{parts[2]}/{parts[3]}", unquote(parts[5]) if len(parts) > 5 else "main")
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(f"{parts[0]}/{parts[1]}", unquote(parts[3]), unquote("/".join(parts[4:])))
            self._reply(404, {"X-Error-Code": "RepoNotFound"})

        def _resolve(self, repo: str, revision: str, filename: str) -> None:
            if repo not in hub.repos:
                return self._reply(401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            token = hub.tokens.get(repo)
            if token and self.headers.get("Authorization") != f"Bearer {token}":
                return self._reply(401, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to this model is restricted"})
            if revision not in (COMMIT, "main"):
                return self._reply(404, {"X-Error-Code": "RevisionNotFound"})
            sha = hub.repos[repo].get(filename)
            if sha is None:
                return self._reply(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
            self._reply(302, {
                "Location": f"{hub.cdn_url}/cdn/{sha}", "X-Repo-Commit": COMMIT, "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(len(hub.blobs[sha].data)), "ETag": f'"{sha[:40]}"',
            })

        def _model_info(self, repo: str, revision: str) -> None:
            """GET /api/models/{repo}[/revision/{rev}]: the commit and file list (HfApi.model_info)."""
            if repo not in hub.repos:
                return self._reply(401, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            if revision not in (COMMIT, "main"):
                return self._reply(404, {"X-Error-Code": "RevisionNotFound"})
            body = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": f} for f in sorted(hub.repos[repo])]}
            self._reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode())

        def _blob(self, sha: str) -> None:
            blob = hub.blobs.get(sha)
            if blob is None:
                return self._reply(404, {})
            fault = hub._next_fault(sha) if self.command == "GET" else None
            if fault == "503":
                return self._reply(503, {"Retry-After": "0"})
            start = 0
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[len("bytes="):-1])
                if start >= len(blob.data):
                    return self._reply(416, {"Content-Range": f"bytes */{len(blob.data)}"})
            body = blob.data[start:]
            if fault == "wrong":
                body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
            sent_len = {"truncate": len(body) // 2, "empty": 0}.get(fault or "", len(body))
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(blob.data) - 1}/{len(blob.data)}")
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(sent_len))
            self.send_header("ETag", f'"{sha}"')
            self.end_headers()
            if self.command == "HEAD":
                return
            try:
                if fault == "stall":
                    time.sleep(hub.stall_s)
                if fault == "drop":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                for i in range(0, sent_len, 65536):
                    self.wfile.write(body[i : min(i + 65536, sent_len)])
                    if hub.chunk_delay:
                        time.sleep(hub.chunk_delay)
            except OSError:  # the client gave up (timeout test)
                self.close_connection = True

    return Handler


# ---- tiny real model files ----------------------------------------------------------------------


def _gguf_str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def tiny_gguf(n_floats: int = 300_000, name: str = "tiny-guard", arch: str = "llama") -> bytes:
    """A valid GGUF v3 file: general.architecture/name and one F32 tensor of n_floats values."""
    kv = [("general.architecture", arch), ("general.name", name)]
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, 1, len(kv)))
    for k, v in kv:
        out += _gguf_str(k) + struct.pack("<I", 8) + _gguf_str(v)
    out += _gguf_str("weights") + struct.pack("<I", 1) + struct.pack("<Q", n_floats) + struct.pack("<IQ", 0, 0)
    out += b"\0" * (-len(out) % 32)
    out += struct.pack(f"<{n_floats}f", *(float(i % 251) / 251.0 for i in range(n_floats)))
    return bytes(out)


VOCAB = ["[UNK]", "hello", "world", "weather", "nice", "ignore", "previous", "instructions", "jailbreak", "reveal"]


def tiny_classifier_files() -> dict[str, bytes]:
    """model.onnx + tokenizer.json of a real (tiny) 2-label classifier: attack words push 'malicious' up."""
    import onnx
    from onnx import TensorProto, helper
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # logits = mean(one-hot(ids) @ W): words 5..9 vote malicious, the rest benign
    weights = [[2.0, -2.0] if i < 5 else [-3.0, 3.0] for i in range(len(VOCAB))]
    nodes = [
        helper.make_node("Gather", ["W", "input_ids"], ["emb"]),                # [b, s, 2]
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),           # [b, s, 1]
        helper.make_node("Mul", ["emb", "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),  # [b, 2]
        helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),    # [b, 1]
        helper.make_node("Div", ["summed", "count"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny-guard",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 2])],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, [len(VOCAB), 2], [x for r in weights for x in r]),
                     helper.make_tensor("axis1", TensorProto.INT64, [1], [1]),
                     helper.make_tensor("axis2", TensorProto.INT64, [1], [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return {"model.onnx": model.SerializeToString(), "tokenizer.json": tok.to_str().encode()}


CLASSIFIER_SECTION = {"labels": ["benign", "malicious"], "activation": "softmax", "max_length": 64,
                      "category_map": {"malicious": "jailbreak"}, "unsafe": "malicious"}


def write_classifier_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in tiny_classifier_files().items():
        (folder / name).write_bytes(data)
    (folder / "prism.json").write_text(json.dumps({"name": "tiny-guard", "version": "1", **CLASSIFIER_SECTION}))
    return folder
