// Package cli implements the cliq command line: one file per command group,
// one flag.FlagSet per subcommand.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Version is the version of the cliq binary, set at build time with
// -ldflags "-X cliq/cli.Version=...".
var Version = "dev"

// Exit codes shared by every command. Run outcomes have their own codes,
// listed in pipeline.ExitCode.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Env is the input, output and working directory of a command.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Dir is the working directory that relative paths start from.
	Dir string
}

// command is one subcommand: its name, a one-line summary, and its body.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *Env, args []string) error
}

// commands returns the top-level commands in the order the usage lists them.
func commands() []command {
	return []command{
		{"init", "create .cliq/ in a project and register it", runInit},
		{"assemble", "copy a team into the project", runAssemble},
		{"req", "set the requirement and the team's inputs", runReq},
		{"run", "run the pipeline in the foreground", runRun},
		{"status", "show the state of the current or last run", runStatus},
		{"clean", "remove the registry entry and the run state", runClean},
		{"version", "print the version", runVersion},
	}
}

// Run executes the command line args and returns the process exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	dir, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "cliq: %v\n", err)
		return ExitFailure
	}
	env := &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Dir: dir}
	if len(args) == 0 || isHelp(args[0]) {
		printUsage(stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	for _, c := range append(commands(), extraCommands...) {
		if c.name == args[0] {
			return exitCode(stderr, c.run(ctx, env, args[1:]))
		}
	}
	fmt.Fprintf(stderr, "cliq: unknown command %q\nRun 'cliq help' for the list of commands.\n", args[0])
	return ExitUsage
}

// extraCommands holds command groups registered by other files of this
// package (server, job, team, ...), so that this file need not list them.
var extraCommands []command

func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "--help" || arg == "-help"
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "cliq runs AI-agent pipelines and serves them over HTTP and WebSocket.\n\n")
	fmt.Fprint(w, "Usage:\n  cliq <command> [flags] [arguments]\n\nCommands:\n")
	for _, c := range append(commands(), extraCommands...) {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'cliq <command> -h' for the flags of a command.\n")
}

// exitError ends a command with a specific exit code and an optional
// message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// usageError is a mistake in the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode prints err, if any, and maps it to an exit code.
func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintf(stderr, "cliq: %s\n", ee.msg)
		}
		return ee.code
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "cliq: %s\n", ue.msg)
		return ExitUsage
	}
	fmt.Fprintf(stderr, "cliq: %v\n", err)
	return ExitFailure
}

// newFlagSet returns a FlagSet whose usage prints the given text followed by
// the flags.
func newFlagSet(env *Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package's own error line is dropped: parseFlags returns the
	// error and exitCode prints it once, after the usage text.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprint(env.Stderr, strings.TrimLeft(usage, "\n"))
		if hasFlags(fs) {
			fmt.Fprint(env.Stderr, "\nFlags:\n")
			fs.SetOutput(env.Stderr)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args, turning a flag error into a usage error. Flags may
// follow positional arguments ("cliq assemble TEAM --force").
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{msg: err.Error()}
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseNoArgs parses the flags of a command that takes no positional
// arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("%s takes no arguments, got %q; see 'cliq %s -h'", fs.Name(), pos[0], fs.Name())
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runVersion(_ context.Context, env *Env, args []string) error {
	fmt.Fprintf(env.Stdout, "cliq %s\n", Version)
	return nil
}
