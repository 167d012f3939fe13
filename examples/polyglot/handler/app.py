"""The polyglot example's handler: a wasi:http 0.3 service in Python (componentize-py).

Routes:
  GET  /               200 "hello from Python\n"
  POST /render         the request body (Markdown) rendered to HTML by the markdown component
  GET  /headers        the names of the request's headers, one per line
  GET  /read?path=P    the file's text, or 403 "error: read P: ..." (the handler has no files)
  anything else        404
"""

from urllib.parse import parse_qs, urlsplit

import componentize_py_async_support
import wit_world
from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports import render
from wit_world.imports.wasi_http_types import Fields, Method_Get, Method_Post, Request, Response


class Handler(exports.Handler):
    async def handle(self, request: Request) -> Response:
        method = request.get_method()
        url = urlsplit(request.get_path_with_query() or "/")
        if isinstance(method, Method_Get) and url.path == "/":
            return respond(200, "hello from Python\n")
        if isinstance(method, Method_Post) and url.path == "/render":
            markdown = (await read_body(request)).decode("utf-8", errors="replace")
            return respond(200, render.html(markdown), "text/html")
        if isinstance(method, Method_Get) and url.path == "/headers":
            names = sorted({name for name, _ in request.get_headers().copy_all()})
            return respond(200, "".join(f"{name}\n" for name in names))
        if isinstance(method, Method_Get) and url.path == "/read":
            path = parse_qs(url.query).get("path", [""])[0]
            try:
                with open(path) as file:
                    return respond(200, file.read())
            except OSError as error:
                return respond(403, f"error: read {path}: {error.strerror or error}\n")
        return respond(404, "not found\n")


async def read_body(request: Request) -> bytes:
    body, _trailers = Request.consume_body(request, unit_future())
    chunks = []
    with body:
        while not body.writer_dropped:
            chunks.append(await body.read(16 * 1024))
    return b"".join(chunks)


def respond(status: int, text: str, content_type: str = "text/plain") -> Response:
    body = text.encode("utf-8")
    headers = Fields.from_list(
        [("content-type", content_type.encode()), ("content-length", str(len(body)).encode())]
    )
    tx, rx = wit_world.byte_stream()
    componentize_py_async_support.spawn(write_all(tx, body))
    response, _sent = Response.new(headers, rx, trailers_future())
    response.set_status_code(status)
    return response


async def write_all(tx, body: bytes) -> None:
    with tx:
        await tx.write_all(body)


def trailers_future():
    return wit_world.result_option_wasi_http_types_fields_wasi_http_types_error_code_future(lambda: Ok(None))[1]


def unit_future():
    return wit_world.result_unit_wasi_http_types_error_code_future(lambda: Ok(None))[1]
