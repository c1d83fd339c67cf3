// A gRPC server on google.golang.org/grpc, for the gRPC fixtures
// (ebpf-core/tests/fixtures/http2) and kernel tests. The service is declared
// by hand (no protoc): messages are google.protobuf.StringValue.
//
//	demo.Greeter/SayHello         unary: "hello <name>"; name "missing" fails
//	                              NOT_FOUND, "deny" PERMISSION_DENIED
//	demo.Greeter/StreamGreetings  server streaming: name "N" gives N messages
//	demo.Greeter/Collect          client streaming: one reply counting them
//
// It prints "listening on ADDR" once ready.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type greeter struct{}

func (greeter) sayHello(_ context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	switch in.Value {
	case "missing":
		return nil, status.Error(codes.NotFound, "no such user")
	case "deny":
		return nil, status.Error(codes.PermissionDenied, "not allowed")
	}
	return wrapperspb.String("hello " + in.Value), nil
}

func (greeter) streamGreetings(in *wrapperspb.StringValue, stream grpc.ServerStream) error {
	n, err := strconv.Atoi(in.Value)
	if err != nil {
		return status.Error(codes.InvalidArgument, "want a count")
	}
	for i := range n {
		if err := stream.SendMsg(wrapperspb.String(fmt.Sprintf("greeting %d", i))); err != nil {
			return err
		}
	}
	return nil
}

func (greeter) collect(stream grpc.ServerStream) error {
	n := 0
	for {
		var in wrapperspb.StringValue
		if err := stream.RecvMsg(&in); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		n++
	}
	return stream.SendMsg(wrapperspb.String(fmt.Sprintf("collected %d", n)))
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "demo.Greeter",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "SayHello",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return srv.(greeter).sayHello(ctx, in)
		},
	}},
	Streams: []grpc.StreamDesc{
		{
			StreamName:    "StreamGreetings",
			ServerStreams: true,
			Handler: func(srv any, stream grpc.ServerStream) error {
				in := new(wrapperspb.StringValue)
				if err := stream.RecvMsg(in); err != nil {
					return err
				}
				return srv.(greeter).streamGreetings(in, stream)
			},
		},
		{
			StreamName:    "Collect",
			ClientStreams: true,
			Handler:       func(srv any, stream grpc.ServerStream) error { return srv.(greeter).collect(stream) },
		},
	},
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	s.RegisterService(&serviceDesc, greeter{})
	fmt.Printf("listening on %s\n", ln.Addr())
	log.Fatal(s.Serve(ln))
}
