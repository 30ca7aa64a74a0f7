// Command imet trains, evaluates and ships multi-label image classifiers
// trained on noisy labels, in the iMet Collection layout.
//
// Each subcommand lives in its own cmd_<name>.go file and registers itself
// with register from an init function, so that adding a command never
// touches this file. The logic behind a command lives in internal/<concept>
// packages, which know nothing of the command line.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"

	"imet/internal/base/procenv"
	"imet/internal/base/redact"
)

// Globals are the flags every command accepts.
type Globals struct {
	Quiet bool `help:"Print only errors." short:"q"`
	// Stdout and Stderr let integration tests capture a command's output
	// without touching the process's file descriptors.
	Stdout io.Writer `kong:"-"`
	Stderr io.Writer `kong:"-"`
}

// cli is the root of the command tree. Commands are added with register.
type cli struct {
	Globals
}

type command struct {
	name, help, group string
	cmd               any
}

var commands []command

// register adds a top-level command. cmd must be a pointer to a struct with a
// Run(*Globals) error method, or a struct of subcommands.
func register(name, help, group string, cmd any) {
	commands = append(commands, command{name, help, group, cmd})
}

func main() {
	procenv.Ensure()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and executes the chosen command, returning the exit code.
// It is the entry point for integration tests as well as for main.
//
// Everything written to stderr (the log, warnings, the final error) passes
// through package redact, so that no token a notification or an error
// quotes reaches a terminal or a log file (cv's fold children write their
// train.log through their own). Stdout carries results, not logs.
func run(args []string, stdout, stderr io.Writer) (code int) {
	rw := redact.NewWriter(stderr)
	defer rw.Flush()
	stderr = rw
	var root cli
	root.Stdout, root.Stderr = stdout, stderr
	opts := []kong.Option{
		kong.Name("imet"),
		kong.Description("Train, evaluate and ship multi-label image classifiers on noisy labels."),
		kong.UsageOnError(),
		kong.Writers(stdout, stderr),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
		kong.Exit(func(c int) { panic(exitCode(c)) }),
		kong.Bind(&root.Globals),
		nameVars(),
	}
	for _, c := range commands {
		opts = append(opts, kong.DynamicCommand(c.name, c.help, c.group, c.cmd))
	}
	defer func() {
		if r := recover(); r != nil {
			if c, ok := r.(exitCode); ok {
				code = int(c)
				return
			}
			panic(r)
		}
	}()
	parser, err := kong.New(&root, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "imet:", err)
		return 2
	}
	ctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "imet:", err)
		return 2
	}
	if err := ctx.Run(&root.Globals); err != nil {
		var st *statusError
		if errors.As(err, &st) {
			if st.Err != nil {
				fmt.Fprintln(stderr, "imet:", st.Err)
			}
			return st.Code
		}
		fmt.Fprintln(stderr, "imet:", err)
		return 1
	}
	return 0
}

// statusError ends a command with an exit status of its own (a fold task
// that stopped before the end exits 75, so its scheduler runs it again);
// Err, when set, is printed as any error is.
type statusError struct {
	Code int
	Err  error
}

func (e *statusError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *statusError) Unwrap() error { return e.Err }

// exitCode carries kong's requested exit code out through a panic, so that
// --help inside tests does not end the test binary.
type exitCode int
