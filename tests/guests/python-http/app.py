"""A wasi:http/proxy hello in Python, built into a component by componentize-py."""

from wit_world import exports
from wit_world.imports.types import Fields, OutgoingBody, OutgoingResponse, ResponseOutparam
from componentize_py_types import Ok

BODY = b"Hello from a Python component!\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request, response_out):
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(BODY)
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)
