// A gRPC client on google.golang.org/grpc for grpc-server (and the Python
// server in tests/grpc/), for fixtures and kernel tests. All calls share one
// connection and run one after the other:
//
//	grpc-client -addr HOST:PORT CALL...
//
// where CALL is unary:NAME, stream:N (server streaming, N replies),
// collect:N (client streaming, N requests) or nomethod:NAME (a unary call
// of demo.Greeter/NAME, a method the server lacks). Prints "CALL CODE" per
// call, CODE as the gRPC status names it (NOT_FOUND: what
// rpc.response.status_code holds).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func main() {
	addr := flag.String("addr", "", "server address")
	flag.Parse()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	for _, call := range flag.Args() {
		kind, arg, _ := strings.Cut(call, ":")
		var err error
		switch kind {
		case "unary":
			out := new(wrapperspb.StringValue)
			err = conn.Invoke(ctx, "/demo.Greeter/SayHello", wrapperspb.String(arg), out)
		case "stream":
			err = serverStream(ctx, conn, arg)
		case "collect":
			err = clientStream(ctx, conn, arg)
		case "nomethod":
			err = conn.Invoke(ctx, "/demo.Greeter/"+arg, wrapperspb.String(arg), new(wrapperspb.StringValue))
		default:
			log.Fatalf("unknown call %q", call)
		}
		fmt.Printf("%s %s\n", call, codeName(status.Code(err)))
	}
}

// codeName is the status code's name in the gRPC spec (statuscodes.md);
// codes.Code's String is Go's CamelCase instead.
func codeName(c codes.Code) string {
	names := [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
	if int(c) < len(names) {
		return names[c]
	}
	return strconv.Itoa(int(c))
}

func serverStream(ctx context.Context, conn *grpc.ClientConn, arg string) error {
	desc := &grpc.StreamDesc{StreamName: "StreamGreetings", ServerStreams: true}
	s, err := conn.NewStream(ctx, desc, "/demo.Greeter/StreamGreetings")
	if err != nil {
		return err
	}
	if err := s.SendMsg(wrapperspb.String(arg)); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	for {
		out := new(wrapperspb.StringValue)
		if err := s.RecvMsg(out); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func clientStream(ctx context.Context, conn *grpc.ClientConn, arg string) error {
	n, err := strconv.Atoi(arg)
	if err != nil {
		return err
	}
	desc := &grpc.StreamDesc{StreamName: "Collect", ClientStreams: true}
	s, err := conn.NewStream(ctx, desc, "/demo.Greeter/Collect")
	if err != nil {
		return err
	}
	for i := range n {
		if err := s.SendMsg(wrapperspb.String(fmt.Sprintf("item %d", i))); err != nil {
			return err
		}
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	return s.RecvMsg(new(wrapperspb.StringValue))
}
