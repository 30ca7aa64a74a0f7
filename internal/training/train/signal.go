package train

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// SignalError is the cause (context.Cause) of a context SignalContext
// cancelled: the signal that arrived.
type SignalError struct{ Signal os.Signal }

func (e *SignalError) Error() string { return SignalName(e.Signal) + " received" }

// SignalContext is signal.NotifyContext with a cause that names the signal
// (a *SignalError), so that a session it stops can say which signal
// stopped it (see StopSignal). Signals after the first are ignored until
// stop is called, so that a second one (a terminal's SIGINT after a
// parent's SIGTERM) cannot kill the process while it saves its checkpoint.
func SignalContext(parent context.Context, sigs ...os.Signal) (ctx context.Context, stop context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case s := <-ch:
			cancel(&SignalError{Signal: s})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
	}
}

// StopSignal names the signal that cancelled ctx ("SIGTERM"), or "" when
// it was not cancelled by SignalContext.
func StopSignal(ctx context.Context) string {
	var se *SignalError
	if errors.As(context.Cause(ctx), &se) {
		return SignalName(se.Signal)
	}
	return ""
}

// SignalName is a signal's conventional name, e.g. "SIGTERM".
func SignalName(s os.Signal) string {
	switch s {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGUSR1:
		return "SIGUSR1"
	case syscall.SIGUSR2:
		return "SIGUSR2"
	}
	return s.String()
}

// stopReason words why a session stopped early, as the log, the registry
// and notifications say it.
func stopReason(stopped, sig string) string {
	switch {
	case stopped == "budget":
		return "time-budget"
	case stopped == "":
		return ""
	case sig != "":
		return sig
	}
	return "cancelled" // the caller's context, without a signal
}

// PanicError is a panic inside a training session, recovered so that the
// session ends as a failure that the registry and notifications report,
// with the stack where it happened, instead of a crash that leaves the run
// looking merely interrupted.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v\n\n%s", e.Value, e.Stack) }

// Unwrap returns the panic's value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// recoverPanic turns a panic of the calling function into *err; it must be
// deferred directly (defer recoverPanic(&err)).
func recoverPanic(err *error) {
	if p := recover(); p != nil {
		*err = &PanicError{Value: p, Stack: debug.Stack()}
	}
}
