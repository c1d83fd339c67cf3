#!/usr/bin/env python3
"""A gRPC server and client on Python grpcio for the demo.Greeter service of
tests/go/grpc-server (same methods and behaviour), for the gRPC fixtures
(ebpf-core/tests/fixtures/http2) and kernel tests. No generated code: messages
are google.protobuf.StringValue encoded by hand (field 1, a string).

  greeter.py serve [PORT]          prints "listening on 127.0.0.1:PORT"
  greeter.py call HOST:PORT CALL...  CALL: unary:NAME | stream:N | collect:N;
                                   one channel (connection), calls in turn,
                                   prints "CALL CODE" per call
"""
import sys
from concurrent import futures

import grpc

SERVICE = 'demo.Greeter'


def encode(text):
    data = text.encode()
    out = bytearray(b'\x0a')
    n = len(data)
    while n >= 0x80:
        out.append(n & 0x7f | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out + data)


def decode(msg):
    # field 1, length-delimited: tag, varint length, bytes
    if not msg:
        return ''
    i, n, shift = 1, 0, 0
    while True:
        b = msg[i]
        i += 1
        n |= (b & 0x7f) << shift
        shift += 7
        if b < 0x80:
            break
    return msg[i:i + n].decode()


def say_hello(request, context):
    name = decode(request)
    if name == 'missing':
        context.abort(grpc.StatusCode.NOT_FOUND, 'no such user')
    if name == 'deny':
        context.abort(grpc.StatusCode.PERMISSION_DENIED, 'not allowed')
    return encode('hello ' + name)


def stream_greetings(request, context):
    try:
        n = int(decode(request))
    except ValueError:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, 'want a count')
    for i in range(n):
        yield encode('greeting %d' % i)


def collect(request_iterator, context):
    return encode('collected %d' % sum(1 for _ in request_iterator))


def serve(port):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers = {
        'SayHello': grpc.unary_unary_rpc_method_handler(say_hello),
        'StreamGreetings': grpc.unary_stream_rpc_method_handler(stream_greetings),
        'Collect': grpc.stream_unary_rpc_method_handler(collect),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port('127.0.0.1:%d' % port)
    server.start()
    print('listening on 127.0.0.1:%d' % port, flush=True)
    server.wait_for_termination()


def call(target, calls):
    with grpc.insecure_channel(target) as channel:
        for c in calls:
            kind, _, arg = c.partition(':')
            code = grpc.StatusCode.OK
            try:
                if kind == 'unary':
                    channel.unary_unary('/%s/SayHello' % SERVICE)(encode(arg))
                elif kind == 'stream':
                    for _ in channel.unary_stream('/%s/StreamGreetings' % SERVICE)(encode(arg)):
                        pass
                elif kind == 'collect':
                    channel.stream_unary('/%s/Collect' % SERVICE)(
                        iter([encode('item %d' % i) for i in range(int(arg))]))
                else:
                    sys.exit('unknown call %r' % c)
            except grpc.RpcError as e:
                code = e.code()
            print(c, code.name, flush=True)


if __name__ == '__main__':
    if len(sys.argv) >= 2 and sys.argv[1] == 'serve':
        serve(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    elif len(sys.argv) >= 3 and sys.argv[1] == 'call':
        call(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
