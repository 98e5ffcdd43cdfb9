package plugins

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pipehost/connector"
)

// sentinels is the one table between the contract's sentinel errors and
// gRPC codes. The plugin half turns an error wrapping a sentinel into its
// code (toStatus); the host half turns the code back into an error that
// wraps the same sentinel (fromStatus), so errors.Is works the same on both
// sides of the process boundary. Each code appears once, and the server
// answers no other error with these codes: a code alone names its sentinel,
// with no matching on message text.
var sentinels = []struct {
	err  error
	code codes.Code
}{
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{connector.ErrUnknownStream, codes.NotFound},
	{connector.ErrNotConfigured, codes.FailedPrecondition},
	// Not Unavailable: that code means the plugin's own connection broke.
	{connector.ErrServiceUnreachable, codes.Aborted},
}

// toStatus turns a connector error into a gRPC status whose message is the
// error's text (so the host shows it unchanged) and whose code names the
// contract's sentinel the error wraps, if any (codes.Unknown otherwise).
// A status error passes through.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return status.Error(s.code, err.Error())
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// remoteError is a plugin's error on the host's side: the plugin's text,
// wrapping the sentinel its code names (nil for none).
type remoteError struct {
	msg      string
	sentinel error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// sentinelStatus turns a gRPC status into the plugin's error: its text,
// wrapping the sentinel the table gives for its code. It returns nil, false
// for errors that are not statuses and for io.EOF (passed through).
func sentinelStatus(err error) (*remoteError, *status.Status) {
	if err == nil || errors.Is(err, io.EOF) {
		return nil, nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return nil, nil
	}
	re := &remoteError{msg: st.Message()}
	for _, s := range sentinels {
		if s.code == st.Code() {
			re.sentinel = s.err
			break
		}
	}
	return re, st
}

// ExitedError is a plugin process that exited in the middle of a call (it
// crashed, or was killed). Its message names the connector and the binary.
type ExitedError struct {
	Connector string // the connector block's name
	Binary    string // "nuorder (bin/nuorder-plugin)"
}

func (e *ExitedError) Error() string {
	return "connector plugin " + e.Binary + " exited unexpectedly (its last log lines are above)"
}
