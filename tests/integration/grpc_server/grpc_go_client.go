// SPDX-License-Identifier: Apache-2.0

// grpc-go-interop-client: the grpc-go client (Debian golang-google-grpc-dev, its own HTTP/2
// stack) running interop cases against lg-grpc-testserver. No generated code: messages are
// encoded with protowire (field numbers of grpc/testing/messages.proto) and sent through a
// raw-bytes codec. Usage: grpc-go-interop-client HOST:PORT. Prints one line per case; exits
// 0 only when every case passed.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

const svc = "/grpc.testing.TestService/"

// rawCodec passes message bytes through unchanged (registered as "proto" for this process,
// so the content-type stays application/grpc+proto... and messages stay our bytes).
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// payload encodes grpc.testing.Payload{body}.
func payload(n int) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), make([]byte, n))
}

// simpleRequest encodes SimpleRequest{response_size, payload, response_status, compressed flags}.
func simpleRequest(respSize, reqSize int, code int, msg string, respCompressed, expectCompressed bool) []byte {
	var b []byte
	if respSize > 0 {
		b = protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), uint64(respSize))
	}
	if reqSize > 0 {
		b = protowire.AppendBytes(protowire.AppendTag(b, 3, protowire.BytesType), payload(reqSize))
	}
	boolValue := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1)
	if respCompressed {
		b = protowire.AppendBytes(protowire.AppendTag(b, 6, protowire.BytesType), boolValue)
	}
	if code != 0 {
		st := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), uint64(code))
		st = protowire.AppendString(protowire.AppendTag(st, 2, protowire.BytesType), msg)
		b = protowire.AppendBytes(protowire.AppendTag(b, 7, protowire.BytesType), st)
	}
	if expectCompressed {
		b = protowire.AppendBytes(protowire.AppendTag(b, 8, protowire.BytesType), boolValue)
	}
	return b
}

// streamingRequest encodes StreamingOutputCallRequest{response_parameters[{size, interval_us}]}.
func streamingRequest(sizes []int, intervalUs int) []byte {
	var b []byte
	for _, s := range sizes {
		p := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), uint64(s))
		if intervalUs > 0 {
			p = protowire.AppendVarint(protowire.AppendTag(p, 2, protowire.VarintType), uint64(intervalUs))
		}
		b = protowire.AppendBytes(protowire.AppendTag(b, 2, protowire.BytesType), p)
	}
	return b
}

// bodyLen returns the length of payload.body in a (Simple|StreamingOutputCall)Response.
func bodyLen(msg []byte) int {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return -1
		}
		msg = msg[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, msg)
			msg = msg[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(msg)
		msg = msg[n:]
		if num == 1 { // payload
			for len(v) > 0 {
				pn, pt, k := protowire.ConsumeTag(v)
				v = v[k:]
				if pt == protowire.BytesType {
					body, k2 := protowire.ConsumeBytes(v)
					v = v[k2:]
					if pn == 2 {
						return len(body)
					}
				} else {
					v = v[protowire.ConsumeFieldValue(pn, pt, v):]
				}
			}
			return 0
		}
	}
	return 0
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func unary(cc *grpc.ClientConn, c context.Context, method string, req []byte, opts ...grpc.CallOption) ([]byte, error) {
	var resp []byte
	err := cc.Invoke(c, svc+method, &req, &resp, opts...)
	return resp, err
}

var serverStreamDesc = &grpc.StreamDesc{ServerStreams: true}
var bidiStreamDesc = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

func serverStreaming(cc *grpc.ClientConn) error {
	c, cancel := ctx()
	defer cancel()
	sizes := []int{31415, 9, 2653, 58979}
	s, err := cc.NewStream(c, serverStreamDesc, svc+"StreamingOutputCall")
	if err != nil {
		return err
	}
	req := streamingRequest(sizes, 0)
	if err := s.SendMsg(&req); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	var got []int
	for {
		var m []byte
		err := s.RecvMsg(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		got = append(got, bodyLen(m))
	}
	if fmt.Sprint(got) != fmt.Sprint(sizes) {
		return fmt.Errorf("sizes %v", got)
	}
	return nil
}

func cases(cc *grpc.ClientConn) []struct {
	name string
	fn   func() error
} {
	return []struct {
		name string
		fn   func() error
	}{
		{"empty_unary", func() error {
			c, cancel := ctx()
			defer cancel()
			r, err := unary(cc, c, "EmptyCall", nil)
			if err == nil && len(r) != 0 {
				return fmt.Errorf("non-empty reply")
			}
			return err
		}},
		{"large_unary", func() error {
			c, cancel := ctx()
			defer cancel()
			r, err := unary(cc, c, "UnaryCall", simpleRequest(314159, 271828, 0, "", false, false))
			if err == nil && bodyLen(r) != 314159 {
				return fmt.Errorf("body %d", bodyLen(r))
			}
			return err
		}},
		{"server_streaming", func() error { return serverStreaming(cc) }},
		{"special_status_message", func() error {
			c, cancel := ctx()
			defer cancel()
			msg := "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
			_, err := unary(cc, c, "UnaryCall", simpleRequest(0, 0, 2, msg, false, false))
			st, _ := status.FromError(err)
			if st.Code() != codes.Unknown || st.Message() != msg {
				return fmt.Errorf("got %v %q", st.Code(), st.Message())
			}
			return nil
		}},
		{"custom_metadata", func() error {
			c, cancel := ctx()
			defer cancel()
			c = metadata.AppendToOutgoingContext(c, "x-grpc-test-echo-initial", "test_initial_metadata_value",
				"x-grpc-test-echo-trailing-bin", "\xab\xab\xab")
			var hdr, trl metadata.MD
			r, err := unary(cc, c, "UnaryCall", simpleRequest(314159, 0, 0, "", false, false),
				grpc.Header(&hdr), grpc.Trailer(&trl))
			if err != nil {
				return err
			}
			if bodyLen(r) != 314159 || fmt.Sprint(hdr.Get("x-grpc-test-echo-initial")) != "[test_initial_metadata_value]" ||
				len(trl.Get("x-grpc-test-echo-trailing-bin")) != 1 ||
				!bytes.Equal([]byte(trl.Get("x-grpc-test-echo-trailing-bin")[0]), []byte("\xab\xab\xab")) {
				return fmt.Errorf("metadata %v %v", hdr, trl)
			}
			return nil
		}},
		{"unimplemented_method", func() error {
			c, cancel := ctx()
			defer cancel()
			_, err := unary(cc, c, "UnimplementedCall", nil)
			if status.Code(err) != codes.Unimplemented {
				return fmt.Errorf("got %v", err)
			}
			return nil
		}},
		{"deadline_exceeded", func() error {
			c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			s, err := cc.NewStream(c, serverStreamDesc, svc+"StreamingOutputCall")
			if err != nil {
				return err
			}
			req := streamingRequest([]int{1}, 5000000)
			s.SendMsg(&req)
			s.CloseSend()
			var m []byte
			err = s.RecvMsg(&m)
			if status.Code(err) != codes.DeadlineExceeded {
				return fmt.Errorf("got %v", err)
			}
			return nil
		}},
		{"cancel_after_first_response", func() error {
			c, cancel := context.WithCancel(context.Background())
			s, err := cc.NewStream(c, bidiStreamDesc, svc+"FullDuplexCall")
			if err != nil {
				cancel()
				return err
			}
			req := streamingRequest([]int{31415}, 0)
			if err := s.SendMsg(&req); err != nil {
				cancel()
				return err
			}
			var m []byte
			if err := s.RecvMsg(&m); err != nil || bodyLen(m) != 31415 {
				cancel()
				return fmt.Errorf("first: %v", err)
			}
			cancel()
			err = s.RecvMsg(&m)
			if status.Code(err) != codes.Canceled {
				return fmt.Errorf("got %v", err)
			}
			return nil
		}},
		{"gzip_both_ways", func() error {
			c, cancel := ctx()
			defer cancel()
			r, err := unary(cc, c, "UnaryCall", simpleRequest(314159, 271828, 0, "", true, true),
				grpc.UseCompressor(gzip.Name))
			if err == nil && bodyLen(r) != 314159 {
				return fmt.Errorf("body %d", bodyLen(r))
			}
			return err
		}},
		{"100_concurrent_streams", func() error {
			var wg sync.WaitGroup
			errs := make(chan error, 100)
			for i := 0; i < 100; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- serverStreaming(cc)
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				if e != nil {
					return e
				}
			}
			return nil
		}},
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: %s HOST:PORT\n", os.Args[0])
		os.Exit(2)
	}
	encoding.RegisterCodec(rawCodec{})
	cc, err := grpc.Dial(os.Args[1], grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithTimeout(10*time.Second))
	if err != nil {
		fmt.Println("dial failed:", err)
		os.Exit(1)
	}
	defer cc.Close()
	failed := 0
	for _, tc := range cases(cc) {
		err := tc.fn()
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Printf("%-28s FAILED %v\n", tc.name, err)
			failed++
		} else {
			fmt.Printf("%-28s ok\n", tc.name)
		}
	}
	if failed > 0 {
		os.Exit(1)
	}
}
